// The validator's bookkeeping without a GPU (src/coordinator/scoring.ts): the round's sample,
// copies, and how trials, penalties and previous averages make scores, averages and shares.
import { describe, expect, it } from 'vitest';
import { ASSIGNED_FULL, ASSIGNED_PRIOR, OVERSIZE_FACTOR, UNDERSIZE_FACTOR, assignedFactor, barredAfter, findCopies, harmfulTrial, normReference, oversizedUpdates, undersizedUpdates, indexOverlap, sampleForRound, samplingOptions, scoreRound, type RoundInput, type ScoredRow, type Trial } from '../../src/coordinator/scoring.ts';
import { describeRow } from '../../src/coordinator/validator.ts';
import { copySketchForRound, detectCopies, findCopiesPairwise } from '../../src/coordinator/scoring.ts';
import { COPY_SKETCH, hashElement } from '../../src/coordinator/copy-sketch.ts';
import { syntheticRound } from './copy-rounds.ts';

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

  it('the sketch flags what the exact pairwise check flags on these cases', () => {
    const honest = { sender: 'honest', indices: idx([1, 2, 3, 4, 5]), at: 10 };
    const copier = { sender: 'copier', indices: idx([1, 2, 3, 4, 9]), at: 11 };
    const other = { sender: 'other', indices: idx([6, 7, 8, 9, 10]), at: 5 };
    const empty = { sender: 'empty', indices: idx([]), at: 1 };
    const rounds = [[honest, copier, other], [honest, { ...copier, at: 10 }], [honest, copier, other, empty], [empty, { ...empty, sender: 'empty-too' }], [honest, { ...honest, sender: 'twin', at: 12 }, { ...honest, sender: 'triplet', at: 12 }]];
    for (const round of rounds) expect(findCopies(round)).toEqual(findCopiesPairwise(round));
    expect(findCopies(rounds[4])).toEqual(new Set(['twin', 'triplet']));
  });

  it.each([
    { seed: 1, honest: 40, hotShare: 0.3 },
    { seed: 2, honest: 120, hotShare: 0.2 },
    { seed: 3, honest: 250, hotShare: 0.35 },
  ])('the sketch flags what the exact check flags on a seeded round with planted copies ($honest honest, seed $seed)', ({ seed, honest, hotShare }) => {
    const copies = [{ overlap: 0.45, count: 8 }, { overlap: 0.6, count: 8 }, { overlap: 1, count: 8 }, { overlap: 0.3, count: 8 }];
    const { updates, planted } = syntheticRound({ seed, honest, tensors: [4096 * 6, 4096 * 4], hotShare, copies, simultaneous: 0.25 });
    const exact = findCopiesPairwise(updates);
    const check = detectCopies(updates);
    expect(check.copied).toEqual(exact);
    expect(findCopies(updates)).toEqual(exact);
    // Not vacuous: every copy above the threshold is flagged, no near-miss (0.3) is unless it
    // copies a copy.
    for (const p of planted.filter((c) => c.overlap > 0.4)) expect(exact.has(p.sender)).toBe(true);
    const flaggedNearMisses = planted.filter((c) => c.overlap < 0.4 && exact.has(c.sender));
    expect(flaggedNearMisses.every((c) => c.source.startsWith('copy-'))).toBe(true);
    // Far fewer exact overlaps than the N(N−1)/2 the pairwise check computes.
    expect(check.confirmed).toBeLessThan((updates.length * (updates.length - 1)) / 2 / 5);
  });

  it('the sketch flags what the exact check flags when its screen is on (updates of 5,632 indices, honest overlap ≈ 0.14)', () => {
    const copies = [{ overlap: 0.45, count: 6 }, { overlap: 0.6, count: 6 }, { overlap: 1, count: 6 }, { overlap: 0.3, count: 6 }];
    const { updates, planted } = syntheticRound({ seed: 9, honest: 100, tensors: [4096 * 48, 4096 * 40], hotShare: 0.35, copies, simultaneous: 0.25 });
    const exact = findCopiesPairwise(updates);
    const check = detectCopies(updates);
    expect(check.copied).toEqual(exact);
    for (const p of planted.filter((c) => c.overlap > 0.4)) expect(exact.has(p.sender)).toBe(true);
    // Honest candidates (P ≈ 0.15 at overlap 0.14) are screened out by the full sketches.
    expect(check.screened).toBeGreaterThan(0);
    expect(check.rejected).toBeLessThan(check.screened);
  });

  it('needs the secret seed: a 92% copy cut to miss every band of the public seed is caught with the round key', () => {
    const { updates } = syntheticRound({ seed: 21, honest: 20, tensors: [4096 * 48, 4096 * 40], hotShare: 0.2, copies: [] });
    const source = updates[0];
    // Drop, for every band, the source's element that decides one of its rows under the public
    // seed (the least hash in a slot the source fills), and put unused indices in their place.
    const decider = new Map<number, { t: number; index: number; hash: number }>();
    source.indices.forEach((set, t) => {
      for (const index of set) {
        const { slot, hash } = hashElement(t, index);
        const best = decider.get(slot);
        if (!best || hash < best.hash) decider.set(slot, { t, index, hash });
      }
    });
    const dropped = Array.from({ length: COPY_SKETCH.bands }, (_, band) => {
      const row = Array.from({ length: COPY_SKETCH.rows }, (_, r) => r).find((r) => decider.has(band * COPY_SKETCH.rows + r))!;
      return decider.get(band * COPY_SKETCH.rows + row)!;
    });
    const indices = source.indices.map((set, t) => {
      const out = new Set(set);
      const gone = dropped.filter((d) => d.t === t);
      for (const d of gone) out.delete(d.index);
      for (let next = 0; out.size < set.length; next++) if (!set.includes(next)) out.add(next);
      return Uint32Array.from(out).sort();
    });
    const copy = { sender: 'evader', indices, at: source.at + 1 };
    const round = [...updates, copy];
    expect(indexOverlap(source.indices, indices)).toBeGreaterThan(0.9);
    expect(findCopiesPairwise(round)).toEqual(new Set(['evader']));
    expect(findCopies(round)).toEqual(new Set()); // the public seed: evaded
    expect(findCopies(round, copySketchForRound(key, 5))).toEqual(new Set(['evader']));
  });

  it('derives the round\'s sketch seed from the key: the same for the same key and round, another otherwise', () => {
    const seed = copySketchForRound(key, 5).seed;
    expect(copySketchForRound(key, 5)).toEqual({ ...COPY_SKETCH, seed });
    expect(copySketchForRound(key, 6).seed).not.toBe(seed);
    expect(copySketchForRound(new Uint8Array(32).fill(8), 5).seed).not.toBe(seed);
  });
});

describe('scoreRound', () => {
  const trial = (gradient: number, assignedWins = true): Trial => ({ gradient, assigned: assignedWins ? 0.02 : 0.005, control: 0.01 });
  const input = (o: Partial<RoundInput>): RoundInput => ({
    members: ['a', 'b', 'c'], delivered: new Set(['a', 'b', 'c']), trials: new Map(), copied: new Set(), invalid: {},
    synced: () => true, previous: () => ({ ema: 0, assignedEma: 0 }), emission: 10, ...o,
  });
  const byAddress = (rows: ReturnType<typeof scoreRound>) => Object.fromEntries(rows.map((r) => [r.address, r]));

  it('scores evaluated updates: gradient × assigned-data factor, into a 0.9 moving average and shares', () => {
    const rows = byAddress(scoreRound(input({
      trials: new Map([['a', trial(0.1)], ['b', trial(0.1, false)], ['c', trial(0.1)]]),
      previous: (x) => ({ ema: 0.05, assignedEma: x === 'c' ? 0.05 : 0 }),
    })));
    // a: assigned avg 0.8·0 + 0.2·1 = 0.2, factor 0.2 / 0.3, score 0.1·⅔, ema 0.9·0.05 + 0.1·score.
    expect(rows.a.assignedEma).toBeCloseTo(0.2, 12);
    expect(rows.a.score).toBeCloseTo(0.1 * (0.2 / ASSIGNED_FULL), 12);
    expect(rows.a.ema).toBeCloseTo(0.045 + 0.01 * (0.2 / ASSIGNED_FULL), 12);
    // b lost its check again from an average of 0: avg −0.2, factor 0.
    expect(rows.b.assignedEma).toBeCloseTo(-0.2, 12);
    expect(rows.b.score).toBe(0);
    // c: avg 0.8·0.05 + 0.2 = 0.24, factor 0.8, score 0.08, ema 0.053.
    expect(rows.c.score).toBeCloseTo(0.08, 12);
    expect(rows.c.ema).toBeCloseTo(0.053, 12);
    const total = rows.a.ema + 0.045 + 0.053;
    expect(rows.c.share).toBeCloseTo(0.053 / total, 12);
    expect(rows.c.reward).toBeCloseTo((10 * 0.053) / total, 12);
  });

  it('a trial that is not finite makes the update invalid, scored 0, and the averages stay finite (issue 19: NaN broke the ledger)', () => {
    const rows = byAddress(scoreRound(input({
      trials: new Map([['a', trial(0.1)], ['b', { gradient: NaN, assigned: NaN, control: 0.01 }], ['c', { gradient: -Infinity, assigned: 0, control: 0 }]]),
      previous: () => ({ ema: 0.05, assignedEma: 1 }),
    })));
    for (const x of ['b', 'c']) {
      expect(rows[x]).toMatchObject({ invalid: true, score: 0, harmful: false });
      expect(barredAfter(rows[x])).toBe(true);
    }
    for (const r of Object.values(rows)) for (const v of [r.score, r.ema, r.assignedEma, r.share, r.reward, r.gradient]) expect(Number.isFinite(v)).toBe(true);
    expect(rows.a.score).toBeGreaterThan(0);
  });

  it('an update far over the round\'s lower-median norm is oversized (×1000 passed a trial that still helped, and was paid); never with fewer than three', () => {
    const norms = new Map([['a', 1], ['b', 1.3], ['c', 0.8], ['x', 1000]]);
    expect(oversizedUpdates(norms)).toEqual(['x']);
    // Five norms: the lower median is 1.3, the bound 13.
    expect(oversizedUpdates(new Map([...norms, ['y', OVERSIZE_FACTOR * 1.3 * 1.001]]))).toEqual(['x', 'y']);
    expect(oversizedUpdates(new Map([...norms, ['y', OVERSIZE_FACTOR * 1.3]]))).toEqual(['x']);
    expect(oversizedUpdates(new Map([['a', 1], ['x', 1000]]))).toEqual([]);
    // Two attackers among three honest cannot raise the lower median either.
    expect(oversizedUpdates(new Map([...norms, ['z', 1000]]))).toEqual(['x', 'z']);
    expect(oversizedUpdates(new Map([['a', 1], ['b', 1], ['c', NaN]]))).toEqual(['c']);
  });

  it('a tensor far under the run\'s recent helpful norms is undersized (it would shrink the other update of a two-update commit); nothing without a reference', () => {
    // Three earlier helpful updates of two tensors: the reference is each tensor's lower median.
    const reference = normReference([[1, 10], [2, 30], [4, 20]]);
    expect(reference).toEqual([2, 20]);
    // An honest update a few times smaller passes; one tensor a thousandth of it, or zero, does not.
    const norms = new Map([['honest', [0.5, 6]], ['shrink', [1e-3, 20]], ['zero', [2, 0]], ['edge', [2 / UNDERSIZE_FACTOR, 20 / UNDERSIZE_FACTOR]], ['nan', [NaN, 20]]]);
    expect(undersizedUpdates(norms, reference)).toEqual(['shrink', 'zero', 'nan']);
    // No history yet (a run's first round), or a tensor no helpful update had a norm for: no verdict.
    expect(undersizedUpdates(norms, normReference([]))).toEqual([]);
    expect(normReference([[0, 5], [0, 7]])).toEqual([0, 5]);
    expect(undersizedUpdates(new Map([['a', [0, 5]]]), [0, 5])).toEqual([]);
  });

  it('an update whose trial makes the loss worse is harmful and bars its sender; a clean evaluation clears it', () => {
    const rows = byAddress(scoreRound(input({ trials: new Map([['a', trial(0.1)], ['b', { gradient: -0.02, assigned: -0.01, control: 0.01 }]]), copied: new Set(['c']), previous: () => ({ ema: 0.05, assignedEma: 1 }) })));
    expect(rows.b).toMatchObject({ harmful: true, score: 0 });
    expect(barredAfter(rows.b)).toBe(true);
    expect(barredAfter(rows.c)).toBe(true); // a copy (a stale replay among them)
    expect(barredAfter(rows.a)).toBe(false);
    // Neither is paid for the round, whatever average it held: a has the whole emission.
    expect([rows.b.share, rows.c.share, rows.b.reward, rows.c.reward]).toEqual([0, 0, 0, 0]);
    expect(rows.a.share).toBe(1);
    // Not evaluated, nothing penalised: no verdict (the last one stands).
    const held = byAddress(scoreRound(input({ trials: new Map([['a', trial(0.1)]]) })));
    expect(barredAfter(held.b)).toBeUndefined();
  });

  it('harmful needs a worse held-out loss and a second set of batches that agrees: late-schedule noise does not bar, a sign flip does (issue 19)', () => {
    // Rows logged by bench adversary --inner-steps 4 (three honest tiny replicas, rounds 5–10):
    // honest updates whose held-out trial came out worse by noise, all still better on their own assigned batches.
    const honestNoise: Trial[] = [
      { gradient: -0.0007, assigned: 0.0023, control: 0.0016 },
      { gradient: -0.0005, assigned: 0.0029, control: 0.0011 },
      { gradient: -0.0003, assigned: 0.0009, control: 0.0001 },
      { gradient: -0.0008, assigned: 0.0031, control: 0.002 },
      { gradient: -0.0002, assigned: 0.0052, control: 0.0033 },
    ];
    // Sign-flipped updates in the same runs, as late: worse on their own assigned batches too.
    const signFlips: Trial[] = [
      { gradient: -0.0023, assigned: -0.005, control: -0.003 },
      { gradient: -0.0013, assigned: -0.0018, control: -0.0022 },
      { gradient: -0.0026, assigned: -0.0036, control: -0.0031 },
    ];
    for (const t of honestNoise) expect(harmfulTrial(t)).toBe(false);
    for (const t of signFlips) expect(harmfulTrial(t)).toBe(true);
    // Better on its assigned batches but worse on held-out AND control data (general harm, e.g. a poisoned objective): harmful.
    expect(harmfulTrial({ gradient: -0.01, assigned: 0.02, control: -0.005 })).toBe(true);
    // A better held-out loss is never harmful.
    expect(harmfulTrial({ gradient: 0.001, assigned: -0.01, control: -0.01 })).toBe(false);
    // Not harmful, but a worse held-out loss still scores 0 and is not paid for the round.
    const rows = byAddress(scoreRound(input({ trials: new Map([['a', trial(0.1)], ['b', honestNoise[0]]]), previous: () => ({ ema: 0.05, assignedEma: 1 }) })));
    expect(rows.b).toMatchObject({ harmful: false, score: 0 });
    expect(barredAfter(rows.b)).toBe(false);
  });

  it('starts a newcomer at full credit: one lost assigned-data check does not cut its score', () => {
    const rows = byAddress(scoreRound(input({ trials: new Map([['a', trial(0.1, false)], ['b', trial(0.1)], ['c', trial(0.1)]]), previous: () => null })));
    expect(rows.a.assignedEma).toBeCloseTo(0.8 * ASSIGNED_PRIOR - 0.2, 12);
    expect(rows.a.score).toBeCloseTo(0.1, 12);
    expect(rows.a.share).toBeCloseTo(1 / 3, 12);
    expect(rows.b.assignedEma).toBe(1);
  });

  it('the factor is 1 at and above ASSIGNED_FULL, falls linearly to 0 at an average of 0, never past [0, 1]', () => {
    expect(assignedFactor(1)).toBe(1);
    expect(assignedFactor(ASSIGNED_FULL)).toBe(1);
    expect(assignedFactor(ASSIGNED_FULL / 2)).toBeCloseTo(0.5, 12);
    expect(assignedFactor(0)).toBe(0);
    expect(assignedFactor(-0.7)).toBe(0);
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

/** Plays scripted rounds through scoreRound, carrying each member's averages like the ledger. */
function playRounds(checks: Record<string, string>, gradient = 0.05): { rows: ScoredRow[][]; totals: Record<string, number> } {
  const members = Object.keys(checks);
  const prev = new Map<string, { ema: number; assignedEma: number }>();
  const totals: Record<string, number> = Object.fromEntries(members.map((m) => [m, 0]));
  const rows: ScoredRow[][] = [];
  for (let r = 0; r < checks[members[0]].length; r++) {
    // 'W': the update helped its assigned batches more than the control ones; 'L': it did not.
    const trials = new Map(members.map((m) => [m, { gradient, assigned: checks[m][r] === 'W' ? 0.02 : 0.005, control: 0.01 }]));
    const round = scoreRound({ members, delivered: new Set(members), trials, copied: new Set(), invalid: {}, synced: () => true, previous: (a) => prev.get(a) ?? null, emission: 100 });
    for (const row of round) {
      prev.set(row.address, { ema: row.ema, assignedEma: row.assignedEma });
      totals[row.address] += row.reward;
    }
    rows.push(round);
  }
  return { rows, totals };
}

describe('the assigned-data factor over rounds (scripted checks)', () => {
  it('keeps honest peers with noisy checks paid: none is zeroed by a lost check, none ends under half the mean', () => {
    // Three honest peers that lose about a third of their checks, the losses in different rounds.
    const { rows, totals } = playRounds({ h1: 'LWWLWWLWWLWW', h2: 'WLWWLWWLWWLW', h3: 'WWLWWLLWWWWL' });
    for (const round of rows) for (const r of round) expect(r.score, `${r.address}`).toBeGreaterThan(0);
    const values = Object.values(totals);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.min(...values)).toBeGreaterThan(0.5 * mean);
  });

  it('the old failure: a first-round loss and a later one left an honest peer at 0 — now it earns', () => {
    // Under the ±1 average from 0 this peer scored 0 in rounds 0 and 3 and shared from the rest.
    const { rows } = playRounds({ honest: 'LWWLWW', other: 'WWWWWW' });
    expect(rows[0][0]).toMatchObject({ address: 'honest', score: 0.05 });
    expect(rows[3][0].score).toBeCloseTo(0.05, 12);
  });

  it('sinks a peer trained on other data (coin-flip checks) well below honest ones over rounds', () => {
    const wrong = 'WLLWLWLLWLWWLLWLWLLWWLLW'; // half won, as chance gives
    const { rows, totals } = playRounds({ honest: 'WWLWWWLWWWLWWWWLWWWLWWWL', wrong });
    const last = rows[rows.length - 1];
    expect(assignedFactor(last[1].assignedEma)).toBeLessThan(0.5);
    expect(assignedFactor(last[0].assignedEma)).toBe(1);
    expect(totals.wrong).toBeLessThan(0.8 * totals.honest);
  });

  it('zeroes a peer that keeps losing: three lost checks in a row from the prior leave it under a tenth', () => {
    const { rows } = playRounds({ bad: 'LLLLL', good: 'WWWWW' });
    const factors = rows.map((round) => assignedFactor(round[0].assignedEma));
    expect(factors[0]).toBe(1);
    expect(factors[2]).toBeLessThan(0.1);
    expect(rows[4][0].score).toBe(0);
  });
});

describe('the validator log line', () => {
  it("names this round's score, the average that pays and the share, and says why a round scored 0", () => {
    const [missing, fine] = scoreRound({
      members: ['5Missing000', '5Fine000000'], delivered: new Set(['5Fine000000']), trials: new Map([['5Fine000000', { gradient: 0.05, assigned: 0.02, control: 0.01 }]]),
      copied: new Set(), invalid: {}, synced: () => true, previous: () => ({ ema: 0.01, assignedEma: 1 }), emission: 10,
    });
    expect(describeRow(missing, undefined)).toBe('5Missing no update MISSING: round score 0.0000, average 0.0090, share 39.1%');
    expect(describeRow(fine, { gradient: 0.05, assigned: 0.02, control: 0.01 })).toBe(
      '5Fine000 gradient 0.0500, assigned 0.0200 vs control 0.0100 (assigned avg 1.00, factor 1.00): round score 0.0500, average 0.0140, share 60.9%',
    );
    const [harmful] = scoreRound({
      members: ['5Harmful00'], delivered: new Set(['5Harmful00']), trials: new Map([['5Harmful00', { gradient: -0.05, assigned: 0.02, control: -0.01 }]]),
      copied: new Set(), invalid: {}, synced: () => true, previous: () => ({ ema: 0.01, assignedEma: 1 }), emission: 10,
    });
    expect(describeRow(harmful, { gradient: -0.05, assigned: 0.02, control: -0.01 })).toMatch(/HARMFUL: round score 0\.0000, average 0\.0090, share 0\.0%$/);
  });
});
