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

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const NATS: NatKind[] = ['cone', 'cone', 'symmetric', 'symmetric'];
/** A test secret; coturn and the coordinator read it from files, never from a command line. */
const SECRET = 'tessera-test-turn-secret-0123456789';
const TURN_URL = `turn:${PUBLIC_ADDR}:3478?transport=udp`;
const LINKS_TIMEOUT_MS = 90_000;

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

  it('cone peers link directly via STUN, pairs with a symmetric NAT link through TURN (credentials from the coordinator)', async () => {
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ run: 'nat-links', neighbours: 3 }));
    const coordinator = spawn('ip', ['netns', 'exec', PUBLIC_NS, process.execPath, BIN, 'coordinator', '--no-validate', '--host', PUBLIC_ADDR, '--port', '0', '--run', join(dir, 'run.json'), '--state', join(dir, 'coord'), '--turn', TURN_URL, '--turn-secret-file', secretFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    coordinator.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    coordinator.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const peers: RemotePeer[] = [];
    try {
      await waitFor('the coordinator', () => /--coordinator (ws:\S+)/.test(log), 60_000);
      const url = /--coordinator (ws:\S+)/.exec(log)![1];
      expect(log).not.toContain(SECRET);
      for (let k = 0; k < NATS.length; k++) peers.push(new RemotePeer(url, 1 << 20, { netns: hostNs(k) }));
      const grants: { username?: string }[][] = peers.map(() => []);
      peers.forEach((p, k) => p.onServer((m) => m.type === 'ice' && grants[k].push(...m.servers)));
      await Promise.all(peers.map((p) => p.joined));
      const pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
      await waitFor('every pair linked', () => pairs.every(([a, b]) => peers[a].routes.has(peers[b].key.address) && peers[b].routes.has(peers[a].key.address)), LINKS_TIMEOUT_MS);
      // Each member got its own credentials, bound to its address (TURN REST: expiry:address).
      peers.forEach((p, k) => expect(grants[k].some((s) => s.username?.endsWith(`:${p.key.address}`))).toBe(true));
      const path = (a: number, b: number) => peers[a].routes.get(peers[b].key.address)!;
      const table = pairs.map(([a, b]) => `${NATS[a]}#${a}–${NATS[b]}#${b}: ${path(a, b).path} (${path(a, b).route})`);
      console.log(table.join('\n'));
      expect(path(0, 1).path).toBe('direct');
      expect(path(0, 1).route).toMatch(/srflx|prflx/); // not host: the peers sit behind different NATs
      expect(path(2, 3).path).toBe('relayed');
      for (const [a, b] of [[0, 2], [0, 3], [1, 2], [1, 3]]) expect(path(a, b).path).toBe('relayed');
    } finally {
      await Promise.all(peers.map((p) => p.close()));
      coordinator.kill('SIGINT');
      await new Promise((r) => coordinator.once('exit', r));
    }
  }, 180_000);

  it('with coturn stopped, the symmetric pair cannot link: a real swarm round still closes, its updates from the store, counted as such', () => {
    coturn?.kill('SIGKILL');
    coturn = null;
    const out = join(dir, 'swarm');
    const args = [BIN, 'swarm', '--peers', '2', '--rounds', '1', '--inner-steps', '1', '--batch', '2', '--seq', '16', '--no-validate', '--json', '--out', out,
      '--host', PUBLIC_ADDR, '--peer-netns', `${hostNs(2)},${hostNs(3)}`, '--turn', TURN_URL, '--turn-secret-file', secretFile];
    const r = spawnSync('ip', ['netns', 'exec', PUBLIC_NS, process.execPath, ...args], { encoding: 'utf8', timeout: 300_000 });
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
  }, 320_000);
});
