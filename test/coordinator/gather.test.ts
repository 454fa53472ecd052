// Gather-K: all when few, mostly the best standing plus seeded exploration (newcomers first),
// sorted by sender, the same for the same inputs.
import { describe, expect, it } from 'vitest';
import { EXPLORE_FRACTION, gatherK } from '../../src/coordinator/gather.ts';
import type { CommitEntry } from '../../src/protocol/messages.ts';

const entry = (i: number, stage = 0): CommitEntry => ({ sender: `s${String(i).padStart(4, '0')}`, hash: `h${i}`, stage });
const senders = (es: CommitEntry[]) => es.map((e) => e.sender);

describe('gatherK', () => {
  it('takes every update, sorted by sender, when at most K were delivered', () => {
    const delivered = [3, 1, 2].map((i) => entry(i));
    expect(senders(gatherK({ delivered, k: 3, standing: () => undefined, seed: 1, round: 0 }))).toEqual(['s0001', 's0002', 's0003']);
  });

  it('takes the best standing for K − explore slots and explores the rest, newcomers first', () => {
    const delivered = Array.from({ length: 100 }, (_, i) => entry(i));
    // s0000..s0089 have a standing equal to their number; s0090..s0099 are newcomers.
    const standing = (s: string) => (Number(s.slice(1)) < 90 ? Number(s.slice(1)) : undefined);
    const k = 20;
    const explore = Math.ceil(k * EXPLORE_FRACTION);
    const got = gatherK({ delivered, k, standing, seed: 7, round: 3 });
    expect(got).toHaveLength(k);
    expect(senders(got)).toEqual([...senders(got)].sort());
    const best = Array.from({ length: k - explore }, (_, i) => `s${String(89 - i).padStart(4, '0')}`);
    for (const b of best) expect(senders(got)).toContain(b);
    const explored = senders(got).filter((s) => !best.includes(s));
    expect(explored).toHaveLength(explore);
    for (const s of explored) expect(standing(s), `${s} is a newcomer`).toBeUndefined();
  });

  it('explores among the known once there are no newcomers, differently per round, the same per (seed, round)', () => {
    const delivered = Array.from({ length: 60 }, (_, i) => entry(i));
    const standing = (s: string) => Number(s.slice(1));
    const pick = (round: number, seed = 1) => senders(gatherK({ delivered, k: 8, standing, seed, round }));
    expect(pick(5)).toEqual(pick(5));
    const rounds = new Set(Array.from({ length: 10 }, (_, r) => pick(r).join()));
    expect(rounds.size).toBeGreaterThan(1);
    expect(pick(5, 1).join()).not.toBe(pick(5, 2).join());
    // The best six always, whatever the round.
    for (let r = 0; r < 10; r++) for (let i = 54; i < 60; i++) expect(pick(r)).toContain(`s${String(i).padStart(4, '0')}`);
  });

  it('does not depend on the order updates arrived in', () => {
    const delivered = Array.from({ length: 50 }, (_, i) => entry(i));
    const standing = (s: string) => (Number(s.slice(1)) % 3 === 0 ? undefined : Number(s.slice(1)) % 7);
    const a = gatherK({ delivered, k: 10, standing, seed: 9, round: 1 });
    const b = gatherK({ delivered: [...delivered].reverse(), k: 10, standing, seed: 9, round: 1 });
    expect(a).toEqual(b);
  });

  it('a pipelined run gathers K per stage', () => {
    const delivered = [...Array.from({ length: 10 }, (_, i) => entry(i, 0)), ...Array.from({ length: 10 }, (_, i) => entry(100 + i, 1))];
    const got = gatherK({ delivered, k: 4, standing: () => undefined, seed: 1, round: 0 });
    expect(got.filter((e) => e.stage === 0)).toHaveLength(4);
    expect(got.filter((e) => e.stage === 1)).toHaveLength(4);
    expect(senders(got)).toEqual([...senders(got)].sort());
  });

  it('never takes a barred sender, however few were delivered or however high its standing (issue 19)', () => {
    const delivered = [1, 2, 3].map((i) => entry(i));
    const barred = (s: string) => s === 's0002';
    expect(senders(gatherK({ delivered, k: 3, standing: () => undefined, barred, seed: 1, round: 0 }))).toEqual(['s0001', 's0003']);
    const many = Array.from({ length: 40 }, (_, i) => entry(i));
    const got = senders(gatherK({ delivered: many, k: 8, standing: (s) => Number(s.slice(1)), barred: (s) => s === 's0039', seed: 1, round: 0 }));
    expect(got).toHaveLength(8);
    expect(got).not.toContain('s0039');
    expect(gatherK({ delivered, k: 3, standing: () => undefined, barred: () => true, seed: 1, round: 0 })).toEqual([]);
  });
});
