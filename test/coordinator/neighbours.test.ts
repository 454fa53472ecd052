// The neighbour graph: bounded degree, everyone linked enough, one component, after a storm
// of joins and many random leaves; and only the peers whose set changed are named.
import { describe, expect, it } from 'vitest';
import { NeighbourGraph } from '../../src/coordinator/neighbours.ts';
import { rng } from '../helpers/rng.ts';

const name = (i: number) => `peer-${String(i).padStart(4, '0')}`;

/** Peers reachable from the first one. */
function component(g: NeighbourGraph, peers: string[]): number {
  const seen = new Set([peers[0]]);
  const stack = [peers[0]];
  while (stack.length) {
    for (const n of g.neighboursOf(stack.pop()!)) {
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(n);
    }
  }
  return seen.size;
}

function check(g: NeighbourGraph, peers: string[], degree: number): void {
  for (const p of peers) {
    const ns = g.neighboursOf(p);
    expect(ns.length, p).toBeLessThanOrEqual(degree);
    expect(ns.length, p).toBeGreaterThanOrEqual(Math.min(Math.floor(degree / 2), peers.length - 1));
    for (const n of ns) expect(g.areLinked(n, p), `${n}–${p} is symmetric`).toBe(true);
    expect(ns).not.toContain(p);
  }
  expect(component(g, peers)).toBe(peers.length);
}

describe('NeighbourGraph', () => {
  it('1,000 joins then 300 random leaves: degree ≤ D, each peer ≥ D/2 links, one component', () => {
    const D = 8;
    const g = new NeighbourGraph(D, 7);
    const live: string[] = [];
    for (let i = 0; i < 1000; i++) {
      g.add(name(i));
      live.push(name(i));
    }
    check(g, live, D);
    // A fresh D-regular graph: nearly everyone is full.
    expect(live.filter((p) => g.degreeOf(p) === D).length).toBeGreaterThan(990);
    const u = rng(3);
    for (let i = 0; i < 300; i++) {
      const [gone] = live.splice(Math.floor(u() * live.length), 1);
      g.remove(gone);
      expect(g.has(gone)).toBe(false);
    }
    check(g, live, D);
    // Interleaved joins and leaves, the way a real swarm churns.
    for (let i = 1000; i < 1300; i++) {
      g.add(name(i));
      live.push(name(i));
      if (i % 2 === 0) g.remove(live.splice(Math.floor(u() * live.length), 1)[0]);
    }
    check(g, live, D);
    expect(g.size).toBe(live.length);
  });

  it('a small swarm links everyone to everyone while it has fewer than D + 1 peers', () => {
    const g = new NeighbourGraph(8, 1);
    const peers = [0, 1, 2, 3, 4].map(name);
    for (const p of peers) g.add(p);
    for (const p of peers) expect(g.degreeOf(p)).toBe(4);
    g.remove(peers[0]);
    for (const p of peers.slice(1)) expect(g.degreeOf(p)).toBe(3);
  });

  it('names only the peers whose set changed: the newcomer and those it linked with', () => {
    const D = 8;
    const g = new NeighbourGraph(D, 5);
    for (let i = 0; i < 200; i++) g.add(name(i));
    const before = new Map(Array.from({ length: 200 }, (_, i) => [name(i), g.neighboursOf(name(i)).join()]));
    const changed = g.add('newcomer');
    expect(changed.has('newcomer')).toBe(true);
    expect(changed.size).toBeLessThanOrEqual(2 * D + 1);
    for (const [p, was] of before) expect(changed.has(p), p).toBe(g.neighboursOf(p).join() !== was);
    const left = g.neighboursOf(name(10));
    const after = new Map(Array.from({ length: 200 }, (_, i) => [name(i), g.neighboursOf(name(i)).join()]));
    const dropped = g.remove(name(10));
    for (const n of left) expect(dropped.has(n)).toBe(true);
    for (const [p, was] of after) if (p !== name(10)) expect(dropped.has(p), p).toBe(g.neighboursOf(p).join() !== was);
  });

  it('is deterministic for a seed', () => {
    const build = (seed: number) => {
      const g = new NeighbourGraph(6, seed);
      for (let i = 0; i < 100; i++) g.add(name(i));
      for (let i = 0; i < 100; i += 7) g.remove(name(i));
      return Array.from({ length: 100 }, (_, i) => g.neighboursOf(name(i)).join()).join('|');
    };
    expect(build(11)).toBe(build(11));
    expect(build(11)).not.toBe(build(12));
  });

  it('a pipelined run links everyone (degree Infinity)', () => {
    const g = new NeighbourGraph(Infinity, 1);
    for (let i = 0; i < 20; i++) g.add(name(i));
    for (let i = 0; i < 20; i++) expect(g.degreeOf(name(i))).toBe(19);
    expect(g.remove(name(0)).size).toBe(19);
  });
});
