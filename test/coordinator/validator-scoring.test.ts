// The validator's bookkeeping without a GPU (src/coordinator/scoring.ts): the round's sample,
// copies, and how trials, penalties and previous averages make scores, averages and shares.
import { describe, expect, it } from 'vitest';
import { findCopies, indexOverlap, sampleForRound, samplingOptions, scoreRound, type RoundInput, type Trial } from '../../src/coordinator/scoring.ts';

const key = new Uint8Array(32).fill(7);
const senders = Array.from({ length: 40 }, (_, i) => `peer-${String(i).padStart(2, '0')}`);

describe('sampleForRound', () => {
  const o = samplingOptions({ scoreAllUpTo: 8, sampleSize: 5, key });

  it('takes everyone while the round is small', () => {
    expect([...sampleForRound(senders.slice(0, 8), 3, o)].sort()).toEqual(senders.slice(0, 8));
  });

  it('takes sampleSize of a large round: the same for the same key and round in any order, another next round', () => {
    const a = sampleForRound(senders, 3, o);
    expect(a.size).toBe(5);
    for (const s of a) expect(senders).toContain(s);
    expect([...sampleForRound([...senders].reverse(), 3, o)].sort()).toEqual([...a].sort());
    expect([...sampleForRound(senders, 4, o)].sort()).not.toEqual([...a].sort());
    // Another key (another validator, or the same run's public seed) gives another sample.
    expect([...sampleForRound(senders, 3, samplingOptions({ scoreAllUpTo: 8, sampleSize: 5, key: new Uint8Array(32).fill(8) }))].sort()).not.toEqual([...a].sort());
  });

  it('covers every sender about equally over many rounds', () => {
    const counts = new Map(senders.map((s) => [s, 0]));
    const rounds = 800;
    for (let r = 0; r < rounds; r++) for (const s of sampleForRound(senders, r, o)) counts.set(s, counts.get(s)! + 1);
    // Expected 800·5/40 = 100 each; binomial sd = √(800·⅛·⅞) ≈ 9.4, so 100 ± 47 is a 5-sd band.
    for (const c of counts.values()) expect(Math.abs(c - 100)).toBeLessThan(47);
  });

  it('refuses nonsense settings', () => {
    expect(() => samplingOptions({ sampleSize: 0 })).toThrow(/sampleSize/);
    expect(() => samplingOptions({ scoreAllUpTo: 1.5 })).toThrow(/scoreAllUpTo/);
    expect(() => samplingOptions({ key: new Uint8Array(4) })).toThrow(/key/);
    expect(samplingOptions().key.length).toBe(32);
    // Flags not given arrive as undefined: the defaults stand.
    expect(samplingOptions({ scoreAllUpTo: undefined, sampleSize: undefined, key })).toMatchObject({ scoreAllUpTo: 16, sampleSize: 16 });
  });
});

describe('copies', () => {
  const idx = (...tensors: number[][]) => tensors.map((t) => Uint32Array.from(t).sort());

  it('measures overlap against the smaller set, over all tensors', () => {
    expect(indexOverlap(idx([1, 2, 3], [10]), idx([2, 3, 4], [10]))).toBe(3 / 4);
    expect(indexOverlap(idx([1, 2]), idx([3, 4]))).toBe(0);
  });

  it('marks the later of two overlapping deliveries, both when simultaneous', () => {
    const honest = { sender: 'honest', indices: idx([1, 2, 3, 4, 5]), at: 10 };
    const copier = { sender: 'copier', indices: idx([1, 2, 3, 4, 9]), at: 11 };
    const other = { sender: 'other', indices: idx([6, 7, 8, 9, 10]), at: 5 };
    expect(findCopies([honest, copier, other])).toEqual(new Set(['copier']));
    expect(findCopies([honest, { ...copier, at: 10 }])).toEqual(new Set(['honest', 'copier']));
  });
});

describe('scoreRound', () => {
  const trial = (gradient: number, assignedWins = true): Trial => ({ gradient, assigned: assignedWins ? 0.02 : 0.005, control: 0.01 });
  const input = (o: Partial<RoundInput>): RoundInput => ({
    members: ['a', 'b', 'c'], delivered: new Set(['a', 'b', 'c']), trials: new Map(), copied: new Set(), invalid: {},
    synced: () => true, previous: () => ({ ema: 0, assignedEma: 0 }), emission: 10, ...o,
  });
  const byAddress = (rows: ReturnType<typeof scoreRound>) => Object.fromEntries(rows.map((r) => [r.address, r]));

  it('scores evaluated updates: gradient × assigned-data average, into a 0.9 moving average and shares', () => {
    const rows = byAddress(scoreRound(input({
      trials: new Map([['a', trial(0.1)], ['b', trial(0.1, false)], ['c', trial(0.1)]]),
      previous: (x) => ({ ema: 0.05, assignedEma: x === 'c' ? 0.5 : 0 }),
    })));
    // a: assigned avg 0.8·0 + 0.2·1 = 0.2, score 0.1·0.2 = 0.02, ema 0.9·0.05 + 0.1·0.02 = 0.047.
    expect(rows.a.assignedEma).toBeCloseTo(0.2, 12);
    expect(rows.a.score).toBeCloseTo(0.02, 12);
    expect(rows.a.ema).toBeCloseTo(0.047, 12);
    // b lost its assigned-data check: avg −0.2, gated to 0.
    expect(rows.b.assignedEma).toBeCloseTo(-0.2, 12);
    expect(rows.b.score).toBe(0);
    // c: avg 0.8·0.5 + 0.2 = 0.6, score 0.06, ema 0.051.
    expect(rows.c.ema).toBeCloseTo(0.051, 12);
    const total = 0.047 + 0.045 + 0.051;
    expect(rows.c.share).toBeCloseTo(0.051 / total, 12);
    expect(rows.c.reward).toBeCloseTo((10 * 0.051) / total, 12);
  });

  it("holds an unsampled member's averages: not paid for unchecked work, not penalised for being unchecked", () => {
    const rows = byAddress(scoreRound(input({
      trials: new Map([['a', trial(0.1)]]),
      previous: (x) => (x === 'b' ? { ema: 0.03, assignedEma: 0.7 } : { ema: 0.01, assignedEma: 0.5 }),
    })));
    expect(rows.b).toMatchObject({ sampled: false, score: 0.03, ema: 0.03, assignedEma: 0.7, missing: false });
    expect(rows.a.sampled).toBe(true);
    expect(rows.b.share).toBeGreaterThan(0);
  });

  it('penalises missing, invalid, copied and unsynced members whether sampled or not', () => {
    const prev = () => ({ ema: 0.05, assignedEma: 1 });
    const rows = byAddress(scoreRound(input({
      members: ['gone', 'bad', 'copy', 'stale', 'fine'],
      delivered: new Set(['bad', 'copy', 'stale', 'fine']),
      trials: new Map([['fine', trial(0.1)]]),
      copied: new Set(['copy']),
      invalid: { bad: 1 },
      synced: (x) => x !== 'stale',
      previous: prev,
    })));
    for (const x of ['gone', 'bad', 'copy', 'stale']) {
      expect(rows[x].score).toBe(0);
      expect(rows[x].ema).toBeCloseTo(0.045, 12);
    }
    expect(rows.gone.missing).toBe(true);
    expect(rows.fine.score).toBeCloseTo(0.1, 12);
  });

  it('gives nothing under a tenth of the median positive gradient (noise)', () => {
    const rows = byAddress(scoreRound(input({
      trials: new Map([['a', trial(0.1)], ['b', trial(0.12)], ['c', trial(0.009)]]),
      previous: () => ({ ema: 0, assignedEma: 1 }),
    })));
    // Median of 0.009, 0.1, 0.12 is 0.1: the floor is 0.01.
    expect(rows.c.score).toBe(0);
    expect(rows.a.score).toBeGreaterThan(0);
  });
});
