// NAT traversal with a real coturn, in network namespaces this test makes (nat-net.ts): a
// coordinator (`tessera coordinator --turn`) and coturn in a "public" namespace, each peer
// behind its own NAT — two endpoint-independent ("cone") and two symmetric ones. Peers behind
// the cone NATs link directly (STUN's answer works for them); any pair with a symmetric NAT
// links through the TURN relay; with coturn stopped, the symmetric pair cannot link at all and
// a whole `tessera swarm` round still closes, its updates coming from the store. The path of
// each link is read from WebRTC's stats (the selected candidate pair). Needs root (namespaces,
// iptables) and coturn's `turnserver`; skipped, saying why, without them.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_ADDR, PUBLIC_NS, coturnConfig, coturnReady, createNatNet, hostNs, natNetUnavailable, observedPorts, removeNatNet, startCoturn, type NatKind } from './nat-net.ts';
import { RemotePeer } from './remote-peer.ts';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, CHROMIUM_PATH, browserSkipReason, bundleForBrowser } from '../e2e/harness.ts';
import type { NatPageState } from '../e2e/pages/nat-page.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const NATS: NatKind[] = ['cone', 'cone', 'symmetric', 'symmetric'];
/** A test secret; coturn and the coordinator read it from files, never from a command line. */
const SECRET = 'tessera-test-turn-secret-0123456789';
const TURN_URL = `turn:${PUBLIC_ADDR}:3478?transport=udp`;
const LINKS_TIMEOUT_MS = 90_000;
/** Where the NAT page seems to come from (playwright answers; nothing listens there). */
const PAGE_ORIGIN = `http://${PUBLIC_ADDR}:8999`;

const noBrowser = browserSkipReason([CHROMIUM_PATH]);
const unavailable = natNetUnavailable() ?? (spawnSync('which', ['turnserver']).status === 0 ? null : "coturn's turnserver is not installed (apt-get install coturn)");

function waitFor(what: string, ok: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => (ok() ? resolve() : Date.now() > until ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(poll, 200));
    poll();
  });
}

describe.skipIf(unavailable !== null)(`NAT traversal through coturn${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-nat-'));
  const secretFile = join(dir, 'turn-secret');
  let coturn: ChildProcess | null = null;

  beforeAll(async () => {
    createNatNet(NATS);
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'turnserver.conf'), coturnConfig(SECRET, join(dir, 'turnserver.pid')), { mode: 0o600 });
    coturn = startCoturn(join(dir, 'turnserver.conf'));
    await coturnReady(coturn);
  });

  afterAll(() => {
    coturn?.kill('SIGKILL');
    removeNatNet();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the NATs behave as claimed: a cone NAT keeps one public port for every destination, a symmetric one picks a new port per destination', async () => {
    const [c1, c2] = await observedPorts(0);
    const [s1, s2] = await observedPorts(2);
    console.log(`public ports of one socket at two destinations: cone ${c1}, ${c2}; symmetric ${s1}, ${s2}`);
    expect(c1).toBe(c2);
    expect(s1).not.toBe(s2);
  });

  /** `tessera coordinator --turn` in the public namespace; its URL once it listens. */
  async function startCoordinatorInPublic(run: string): Promise<{ url: string; log: () => string; stop: () => Promise<void> }> {
    writeFileSync(join(dir, `${run}.json`), JSON.stringify({ run, neighbours: 3 }));
    const args = [BIN, 'coordinator', '--no-validate', '--host', PUBLIC_ADDR, '--port', '0', '--run', join(dir, `${run}.json`), '--state', join(dir, run), '--turn', TURN_URL, '--turn-secret-file', secretFile];
    const child = spawn('ip', ['netns', 'exec', PUBLIC_NS, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    const stop = async () => {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGKILL');
    };
    try {
      await waitFor('the coordinator', () => /--coordinator (ws:[^\s;]+)/.test(log) || child.exitCode !== null, 60_000);
    } catch (e) {
      await stop();
      throw e;
    }
    if (child.exitCode !== null) throw new Error(`the coordinator exited: ${log}`);
    return { url: /--coordinator (ws:[^\s;]+)/.exec(log)![1], log: () => log, stop };
  }

  it('cone peers link directly via STUN, pairs with a symmetric NAT link through TURN (credentials from the coordinator)', async () => {
    const coordinator = await startCoordinatorInPublic('nat-links');
    const peers: RemotePeer[] = [];
    try {
      for (let k = 0; k < NATS.length; k++) peers.push(new RemotePeer(coordinator.url, 1 << 20, { netns: hostNs(k) }));
      const grants: { username?: string }[][] = peers.map(() => []);
      peers.forEach((p, k) => p.onServer((m) => m.type === 'ice' && grants[k].push(...m.servers)));
      await Promise.all(peers.map((p) => p.joined));
      const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
      await waitFor('every pair linked', () => pairs.every(([a, b]) => peers[a].routes.has(peers[b].key.address) && peers[b].routes.has(peers[a].key.address)), LINKS_TIMEOUT_MS);
      // Each member got its own credentials, bound to its address (TURN REST: expiry:address).
      peers.forEach((p, k) => expect(grants[k].some((s) => s.username?.endsWith(`:${p.key.address}`))).toBe(true));
      expect(coordinator.log()).not.toContain(SECRET);
      const path = (a: number, b: number) => peers[a].routes.get(peers[b].key.address)!;
      console.log(pairs.map(([a, b]) => `${NATS[a]}#${a}–${NATS[b]}#${b}: ${path(a, b).path} (${path(a, b).route})`).join('\n'));
      expect(path(0, 1).path).toBe('direct');
      expect(path(0, 1).route).toMatch(/srflx|prflx/); // not host: the peers sit behind different NATs
      expect(path(2, 3).path).toBe('relayed');
      for (const [a, b] of [[0, 2], [0, 3], [1, 2], [1, 3]]) expect(path(a, b).path).toBe('relayed');
      // Bytes cross the relayed link.
      expect(await peers[2].sendToPeer(peers[3].key.address, new Uint8Array(200_000).fill(7))).toBe(true);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
      await coordinator.stop();
    }
  }, 180_000);

  it.skipIf(noBrowser !== null)('a Chromium page behind the symmetric NAT links through TURN with a Node peer behind the other', async () => {
    const coordinator = await startCoordinatorInPublic('nat-browser');
    // Chromium itself runs in the NAT's namespace: playwright talks to it over pipes, which
    // `ip netns exec` passes on; the page is served from the test through playwright's routing.
    // This little internet uses private addresses (10.77.0.x) as its "public" ones, which
    // Chromium's local-network-access checks keep a page from reaching: they are turned off
    // here (on the real internet the coordinator's address is public and serves the page).
    const wrapper = join(dir, 'chromium-behind-nat.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${hostNs(2)} ${CHROMIUM_PATH} "$@"\n`, { mode: 0o755 });
    const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: [...CHROMIUM_FLAGS, '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessRespectPreflightResults'] });
    const node = new RemotePeer(coordinator.url, 1 << 20, { netns: hostNs(3) });
    try {
      const script = await bundleForBrowser('test/e2e/pages/nat-page.ts');
      const context = await browser.newContext();
      await context.route(`${PAGE_ORIGIN}/**`, (route) => {
        const path = new URL(route.request().url()).pathname;
        if (path === '/page.js') return route.fulfill({ body: script, contentType: 'text/javascript' });
        return route.fulfill({ body: '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>', contentType: 'text/html' });
      });
      const page = await context.newPage();
      page.on('console', (m) => console.log(`[nat page] ${m.text()}`));
      await page.goto(`${PAGE_ORIGIN}/?coordinator=${encodeURIComponent(coordinator.url)}`);
      await node.joined;
      const read = () => page.evaluate(() => (globalThis as unknown as { __nat: NatPageState }).__nat);
      let s = await read();
      const until = Date.now() + LINKS_TIMEOUT_MS;
      while (!(s.error || (s.links.some((l) => l.up) && node.routes.size > 0)) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        s = await read();
      }
      expect(s.error).toBeNull();
      const up = s.links.find((l) => l.up && l.peer === node.key.address);
      console.log(`browser link: ${JSON.stringify(up)}; node side: ${JSON.stringify(node.routes.get(s.address))}`);
      expect(s.grants.some((u) => u.endsWith(`:${s.address}`))).toBe(true);
      expect(up?.path).toBe('relayed');
      expect(node.routes.get(s.address)?.path).toBe('relayed');
      expect(await node.sendToPeer(s.address, new Uint8Array(100_000).fill(9))).toBe(true);
      const got = await page.waitForFunction(() => (globalThis as unknown as { __nat: NatPageState }).__nat.received.length > 0, undefined, { timeout: 30_000 }).then(read);
      expect(got.received[0]).toEqual({ from: node.key.address, bytes: 100_000, first: 9 });
    } finally {
      await node.close();
      await browser.close();
      await coordinator.stop();
    }
  }, 180_000);

  it('with coturn stopped, the symmetric pair cannot link: a real swarm round still closes, its updates from the store, counted as such', () => {
    coturn?.kill('SIGKILL');
    coturn = null;
    const out = join(dir, 'swarm');
    const args = [BIN, 'swarm', '--force', '--peers', '2', '--rounds', '1', '--inner-steps', '1', '--batch', '2', '--seq', '16', '--no-validate', '--json', '--out', out,
      '--host', PUBLIC_ADDR, '--peer-netns', `${hostNs(2)},${hostNs(3)}`, '--turn', TURN_URL, '--turn-secret-file', secretFile];
    const r = spawnSync('ip', ['netns', 'exec', PUBLIC_NS, process.execPath, ...args], { encoding: 'utf8', timeout: 540_000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{') && l.includes('"summary"'));
    if (!line) throw new Error(`no summary (exit ${r.status}): ${r.stderr.slice(-2000)}`);
    const s = JSON.parse(line) as { lossPerRound: { included: number }[]; links: { direct: number; relayed: number; store: number }; peersDetail: { gathered: { fromStore: number; fromPeers: number } }[] };
    console.log(`links without coturn: ${JSON.stringify(s.links)}`);
    expect(r.status).toBe(0);
    expect(s.lossPerRound).toHaveLength(1);
    expect(s.lossPerRound[0].included).toBe(2);
    expect(s.links).toMatchObject({ direct: 0, relayed: 0, store: 1 });
    for (const p of s.peersDetail) expect(p.gathered).toMatchObject({ fromPeers: 0, fromStore: 1 });
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
  }, 560_000);
});
