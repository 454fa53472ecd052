// The control plane of protocol 2: bounded neighbour sets told only to the peers they concern,
// signaling only between neighbours, the swarm's counts coalesced, and control bytes per join
// that do not grow with the swarm (a storm of 1,000 joins in one tick, measured).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Hotkey } from '../../src/wallet/keys.ts';
import { SWARM_MIN_INTERVAL_MS } from '../../src/coordinator/control-plane.ts';
import { Peer, devKeys, joinAll, makeCoordinator, removeTempDirs, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

/** `n` distinct hotkeys from fixed seeds. */
function hotkeys(n: number, from = 0): Hotkey[] {
  return Array.from({ length: n }, (_, i) => {
    const seed = new Uint8Array(32);
    new DataView(seed.buffer).setUint32(0, from + i + 1);
    return Hotkey.fromSeed(seed);
  });
}

const bytesSent = (h: ReturnType<typeof makeCoordinator>) => Object.values(h.coordinator.status().controlBytes).reduce((a, b) => a + b, 0);

describe('coordinator: neighbours and signaling', () => {
  it('gives each peer at most `neighbours` links and relays signals only between neighbours', () => {
    const h = makeCoordinator(testConfig({ neighbours: 2 }));
    const peers = hotkeys(8).map((key) => new Peer(h.coordinator, key));
    for (const p of peers) p.join();
    for (const p of peers) {
      const ns = p.last('neighbours')!.neighbours;
      expect(ns.length).toBeGreaterThanOrEqual(1);
      expect(ns.length).toBeLessThanOrEqual(2);
      // Symmetric: each neighbour's latest set names this peer back.
      for (const n of ns) expect(peers.find((q) => q.address === n)!.last('neighbours')!.neighbours).toContain(p.address);
    }
    const a = peers[0];
    const linked = a.last('neighbours')!.neighbours;
    const stranger = peers.find((p) => p !== a && !linked.includes(p.address))!;
    const friend = peers.find((p) => p.address === linked[0])!;
    const offer = { type: 'offer', sdp: 'v=0\r\n' };
    a.text({ type: 'signal', to: friend.address, data: offer });
    expect(friend.last('signal')).toEqual({ type: 'signal', from: a.address, data: offer });
    a.text({ type: 'signal', to: stranger.address, data: offer });
    expect(stranger.all('signal')).toEqual([]);
    expect(a.last('rejected')?.what).toBe('signal-not-neighbour');
    expect(h.coordinator.status().rejected).toEqual({ 'signal-not-neighbour': 1 });
  });

  it('tells a leaver\'s neighbours their new sets, and nobody else', () => {
    const h = makeCoordinator(testConfig({ neighbours: 3 }));
    const peers = hotkeys(12).map((key) => new Peer(h.coordinator, key));
    for (const p of peers) p.join();
    const leaver = peers[5];
    const its = leaver.last('neighbours')!.neighbours;
    const counts = new Map(peers.map((p) => [p.address, p.all('neighbours').length]));
    leaver.disconnect();
    for (const p of peers) {
      if (p === leaver) continue;
      const told = p.all('neighbours').length > counts.get(p.address)!;
      if (its.includes(p.address)) expect(told, p.address).toBe(true);
      if (told) expect(p.last('neighbours')!.neighbours).not.toContain(leaver.address);
    }
    const toldCount = peers.filter((p) => p !== leaver && p.all('neighbours').length > counts.get(p.address)!).length;
    expect(toldCount).toBeLessThanOrEqual(2 * 3 + 3);
  });
});

describe('coordinator: the swarm\'s counts', () => {
  it('are sent while waiting, at most once per second per peer, with the latest counts', () => {
    const h = makeCoordinator(testConfig({ minMembers: 5 }));
    const peers = hotkeys(4).map((key) => new Peer(h.coordinator, key));
    for (const p of peers) p.join(); // same instant
    // The first join was sent at once; the rest wait for the second to pass.
    expect(peers[0].all('swarm')).toEqual([{ type: 'swarm', peers: 1, ready: 0, need: 5 }]);
    for (const p of peers.slice(1)) expect(p.all('swarm')).toEqual([]);
    peers[0].synced(0);
    h.clock.advance(SWARM_MIN_INTERVAL_MS - 1);
    h.coordinator.tick();
    expect(peers[3].all('swarm')).toEqual([]);
    h.clock.advance(1);
    h.coordinator.tick();
    for (const p of peers) expect(p.last('swarm')).toEqual({ type: 'swarm', peers: 4, ready: 1, need: 5 });
    // Nothing changed: nothing sent.
    h.clock.advance(5000);
    h.coordinator.tick();
    expect(peers[3].all('swarm')).toHaveLength(1);
  });

  it('are not sent while a round runs', () => {
    const h = makeCoordinator(testConfig({ minMembers: 1 }), { syncGraceMs: 0 });
    const [a] = joinAll(h.coordinator, [k.alice]);
    expect(h.coordinator.status().phase).toBe('training');
    const before = a.all('swarm').length;
    for (const key of [k.bob, k.carol]) new Peer(h.coordinator, key).join();
    h.clock.advance(10_000);
    a.text({ type: 'heartbeat' });
    h.coordinator.tick();
    expect(a.all('swarm')).toHaveLength(before);
  });
});

describe('coordinator: control bytes per join', () => {
  /** Joins `n` peers at once (one tick), then lets the coalesced counts go out; bytes per join and time per join. */
  function storm(keys: Hotkey[]): { perJoin: number; msPerJoin: number; heapMiB: number } {
    const h = makeCoordinator(testConfig({ minMembers: 10_000 }));
    const heap = process.memoryUsage().heapUsed;
    const started = performance.now();
    const peers = keys.map((key) => new Peer(h.coordinator, key));
    for (const p of peers) p.join();
    const ms = performance.now() - started;
    const heapMiB = (process.memoryUsage().heapUsed - heap) / 2 ** 20;
    h.clock.advance(60_000);
    for (const p of peers) p.text({ type: 'heartbeat' });
    h.coordinator.tick();
    return { perJoin: bytesSent(h) / keys.length, msPerJoin: ms / keys.length, heapMiB };
  }

  it('stay constant from 100 to 1,000 joins (within 1.5×), and a storm of 1,000 joins in one tick is bounded', () => {
    const keys = hotkeys(1000);
    const results = [100, 300, 1000].map((n) => ({ n, ...storm(keys.slice(0, n)) }));
    console.log(results.map((r) => `N=${r.n}: ${r.perJoin.toFixed(0)} control bytes per join, ${r.msPerJoin.toFixed(2)} ms per join, heap +${r.heapMiB.toFixed(1)} MiB`).join('\n'));
    const perJoin = results.map((r) => r.perJoin);
    expect(Math.max(...perJoin) / Math.min(...perJoin)).toBeLessThan(1.5);
    // A join costs a signature check and a few small messages, not a pass over the swarm.
    expect(results[2].msPerJoin).toBeLessThan(25);
  });
});
