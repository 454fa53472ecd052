// Acceptance test of the network: a browser tab joins a run as a contributor beside Node
// contributors and completes rounds with them. In-process coordinator; two
// `tessera contribute` processes (Dawn on SwiftShader, simple-peer on @roamhq/wrtc); one
// headless Chromium page (WebGPU on SwiftShader, the page's own RTCPeerConnection) running
// src/net/contributor.ts on its main thread (pages/contributor-page.ts). Every replica must
// end each round with the same weights, and the page must have exchanged updates with the
// Node peers over WebRTC — browser WebRTC against @roamhq/wrtc — not only through the
// coordinator's copies.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vulkanEnvFix } from '../../bin/vulkan-env.mjs';
import type { ContributorEvent } from '../../src/contributor/contributor.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { REPO_ROOT, browserSkipReason, launchChromium, openPage, servePage, type Browser, type BridgeMessage, type StaticServer, type TestPage } from './harness.ts';

const skip = browserSkipReason();
if (skip) console.warn(skip);

const BIN = join(REPO_ROOT, 'bin/tessera.mjs');
/** Rounds every contributor must train and commit. */
const ROUNDS = [0, 1];
/** For the whole run: SwiftShader on 2 CPU cores trains the tiny model slowly, but not this slowly. */
const RUN_TIMEOUT_MS = 150_000;

type Commit = Extract<ContributorEvent, { event: 'commit' }>;
type Sent = Extract<ContributorEvent, { event: 'sent' }>;

interface Member {
  name: string;
  address?: string;
  events: ContributorEvent[];
}

interface NodeMember extends Member {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: string;
}

const commitsOf = (m: Member): Commit[] => m.events.filter((e): e is Commit => e.event === 'commit');
const commitOf = (m: Member, round: number): Commit | undefined => commitsOf(m).find((c) => c.round === round && c.trained);

describe.skipIf(skip !== null)('a browser contributor beside Node contributors', () => {
  let work: string;
  let started: StartedCoordinator;
  let server: StaticServer;
  let browser: Browser;
  let tab: TestPage;
  const page: Member = { name: 'page', events: [] };
  const nodes: NodeMember[] = [];
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  // Wakes whoever waits on events (a commit, an exit).
  let wake: () => void = () => {};

  const spawnNode = (name: string): NodeMember => {
    const { key, mnemonic } = Hotkey.generate();
    const keyFile = join(work, `${name}.key`);
    writeFileSync(keyFile, mnemonic, { mode: 0o600 });
    const argv = [BIN, 'contribute', '--coordinator', started.server.url, '--key', keyFile, '--state', join(work, name), '--json', '--software'];
    // With the Vulkan loader's path already in the environment (vitest.config.ts puts it
    // there) bin/tessera.mjs runs in this child itself rather than re-executing, so the
    // SIGINT below reaches the contributor.
    const child = spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(vulkanEnvFix() ?? {}) } });
    const m: NodeMember = { name, address: key.address, events: [], child, stderr: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('{')) {
          if (line.trim()) console.log(`[${name}] ${line}`);
          continue;
        }
        record(m, JSON.parse(line) as ContributorEvent);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (m.stderr += d.toString()));
    child.on('exit', (code, signal) => {
      console.log(`[${name}] exited (${code ?? signal}) at ${elapsed()}${code ? `: ${m.stderr.trim().split('\n').slice(-5).join(' / ')}` : ''}`);
      wake();
    });
    return m;
  };

  const record = (m: Member, e: ContributorEvent) => {
    m.events.push(e);
    if (e.event === 'commit') {
      console.log(
        `[${m.name}] ${elapsed()} commit ${e.round}: trained ${e.trained}, loss ${e.loss?.toFixed(4) ?? '-'}, included ${e.included}, ` +
          `from peers ${e.fromPeers}, from the store ${e.fetched}, served ${e.served ?? 0}, links ${e.peers}, up ${e.bytesUp} B, down ${e.bytesDown} B, weights ${e.weightsHash}`,
      );
    } else if (e.event === 'sent') {
      console.log(`[${m.name}] ${elapsed()} round ${e.round}: ${e.bytes} B stored by the coordinator, offered to ${e.delivered} neighbour(s)`);
    } else if (e.event === 'joined' || e.event === 'synced' || e.event === 'round' || e.event === 'link') {
      console.log(`[${m.name}] ${elapsed()} ${JSON.stringify(e)}`);
    } else if (e.event === 'warning' || e.event === 'rejected') {
      console.warn(`[${m.name}] ${e.event}: ${JSON.stringify(e)}`);
    }
    wake();
  };

  /** Resolves once `done()` holds; rejects if a Node contributor exits, the page fails, or at the timeout. */
  const until = (done: () => boolean, what: string, timeoutMs: number): Promise<void> =>
    tab.guard(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          const gone = nodes.find((n) => n.child.exitCode !== null || n.child.signalCode !== null);
          if (gone) reject(new Error(`${gone.name} exited before ${what}: ${gone.stderr.trim().split('\n').slice(-5).join(' / ')}`));
          else if (done()) resolve();
        };
        wake = check;
        check();
      }),
      what,
      timeoutMs,
    );

  beforeAll(async () => {
    await cryptoReady();
    work = mkdtempSync(join(tmpdir(), 'tessera-e2e-contributor-'));
    const config = readRunFile(undefined, { run: 'e2e', innerSteps: 2, batch: 2, seq: 32, plannedRounds: 4, roundSeconds: 240, minMembers: 3 });
    [started, server, browser] = await Promise.all([
      startCoordinator(config, { port: 0, stateDir: join(work, 'coordinator'), validate: false, log: (l) => console.log(`[coordinator] ${elapsed()} ${l}`) }),
      servePage({ page: 'test/e2e/pages/contributor-page.ts', title: 'Tessera contributor' }),
      launchChromium(),
    ]);
    tab = await openPage(browser, `${server.url}/`, { prefix: '[page]', timeoutMs: RUN_TIMEOUT_MS });
    tab.bridge.on('contributor-event', (m) => record(page, m.e as ContributorEvent));
    await tab.bridge.next('ready');
    console.log(`coordinator at ${started.server.url}, page at ${server.url}, ready at ${elapsed()}`);
  });

  afterAll(async () => {
    // The page first (its contributor leaves the run), then the Node contributors (SIGINT:
    // they finish the step, save and exit), then the coordinator, so Vitest can exit.
    if (tab && tab.errors.length === 0) {
      await tab.bridge.send({ type: 'stop', mode: 'now' }).catch(() => {});
      await tab.bridge.next('stop:done', 30_000).catch((e: unknown) => console.warn(`page stop: ${(e as Error).message}`));
    }
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGINT');
    await Promise.all(nodes.map((n) => Promise.race([n.exited, new Promise((r) => setTimeout(r, 20_000))])));
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    await tab?.close();
    await browser?.close();
    await started?.stop();
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
    console.log(`stopped at ${elapsed()}`);
  });

  it('trains rounds with two Node contributors over WebRTC, ending each round with the same weights', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
    await tab.bridge.send({ type: 'start', coordinator: started.server.url });
    const info = await tab.bridge.next<BridgeMessage & { address: string; adapter: string; isSoftware: boolean }>('start:done');
    page.address = info.address;
    console.log(`page contributor ${info.address} on ${info.adapter} (software: ${info.isSoftware})`);
    nodes.push(spawnNode('node-0'), spawnNode('node-1'));

    const members: Member[] = [page, ...nodes];
    await until(() => members.every((m) => ROUNDS.every((r) => commitOf(m, r))), `trained commits of rounds ${ROUNDS.join(', ')} from every contributor`, RUN_TIMEOUT_MS);
    console.log(`rounds ${ROUNDS.join(', ')} committed by all three at ${elapsed()}`);

    // Every round: the page applied all three updates and holds the Node replicas' weights.
    for (const r of ROUNDS) {
      const mine = commitOf(page, r)!;
      expect(mine.included, `round ${r}: updates in the page's commit`).toBe(3);
      for (const n of nodes) expect(commitOf(n, r)!.weightsHash, `round ${r}: ${n.name}'s weights vs the page's`).toBe(mine.weightsHash);
      expect(mine.loss).toBeGreaterThan(0);
    }
    expect(new Set(ROUNDS.map((r) => commitOf(page, r)!.weightsHash)).size, 'weights change from round to round').toBe(ROUNDS.length);

    // WebRTC, Node → browser: fromPeers counts committed updates gathered from neighbours (its
    // own is held, not fetched), so ≥ 1 means a Node peer's update reached the page over the
    // mesh, intact (hash as committed).
    const pageCommits = ROUNDS.map((r) => commitOf(page, r)!);
    expect(Math.max(...pageCommits.map((c) => c.fromPeers)), 'updates the page got from Node peers over WebRTC').toBeGreaterThanOrEqual(1);
    expect(Math.max(...pageCommits.map((c) => c.peers)), 'open WebRTC links of the page').toBeGreaterThanOrEqual(1);
    // Browser → Node: the page offered its update to at least one Node neighbour (have), and
    // the Node peers gathered the page's update over the mesh rather than from the store.
    const pageSent = page.events.filter((e): e is Sent => e.event === 'sent' && ROUNDS.includes(e.round));
    expect(Math.max(...pageSent.map((e) => e.delivered)), 'Node neighbours the page offered its update to').toBeGreaterThanOrEqual(1);
    expect(Math.max(...nodes.flatMap((n) => commitsOf(n).map((c) => c.fromPeers))), 'updates a Node peer gathered over WebRTC').toBeGreaterThanOrEqual(1);
    // Nothing anyone received was refused.
    for (const m of members) for (const c of commitsOf(m)) expect(Object.values(c.rejected).reduce((a, b) => a + b, 0), `${m.name}: rejected in round ${c.round}`).toBe(0);

    // The coordinator: no rejections; rounds 0 and 1 closed with all three members' updates.
    const status = started.coordinator.status();
    expect(status.rejected).toEqual({});
    for (const r of ROUNDS) {
      const c = status.commits.find((x) => x.round === r)!;
      expect(c.members).toBe(3);
      expect(c.missing).toEqual([]);
      expect([...c.included].sort()).toEqual([page.address!, ...nodes.map((n) => n.address!)].sort());
    }
  });
});
