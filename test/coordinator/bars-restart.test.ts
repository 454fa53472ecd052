// The validator's verdicts outlive a coordinator restart on the same state folder (issue 19):
// a sender barred before the restart stays out of the next commit, and an update that
// repeats one from before the restart is still a copy. The restart is simulated in-process:
// the coordinator and the ledger are closed and opened again on the same folder, the copy
// history rebuilt from the ledger (as startCoordinator does: restoreVerdicts). Fake clock, no GPU.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { CopyHistory, HISTORY_ROUNDS } from '../../src/coordinator/copy-history.ts';
import { recordScores, type ClosedRound, type RoundEvaluation } from '../../src/coordinator/validator.ts';
import { restoreVerdicts } from '../../src/coordinator/validator-restart.ts';
import type { Trial } from '../../src/coordinator/scoring.ts';
import { devKeys, joinAll, makeCoordinator, removeTempDirs, signedUpdate, tempDir, testConfig, type Keys } from './helpers.ts';
import { rng } from '../helpers/rng.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

const HASH = 'ab'.repeat(16);
const helpful: Trial = { gradient: 0.05, assigned: 0.05, control: 0.01 };
const harmful: Trial = { gradient: -0.2, assigned: -0.2, control: 0.01 };

/** A closed round as the validator gets it: every member delivered and synced (payloads are not read by the bookkeeping). */
function closedRound(round: number, senders: string[]): ClosedRound {
  return {
    round, members: senders, missing: [], invalid: {}, others: [],
    included: senders.map((sender, i) => ({ sender, payload: new Uint8Array(0), deliveredAt: 1000 + i })),
    reportedHashes: Object.fromEntries(senders.map((s) => [s, HASH])),
  };
}

function evaluation(round: number, trials: Record<string, Trial>, more: Partial<RoundEvaluation> = {}): RoundEvaluation {
  return { round, trials: Object.entries(trials), copied: [], undecodable: [], weightsHash: HASH, timing: { fixedMs: 0, perUpdateMs: 0, evaluated: 0, outOfTime: 0 }, ...more };
}

const SIZES = [4096 * 6, 4096 * 4];
/** A random top-k-like index set per tensor, sorted. */
function indices(seed: number, n = 700): Uint32Array[] {
  const u = rng(seed);
  return SIZES.map((size) => {
    const s = new Set<number>();
    while (s.size < n) s.add(Math.floor(u() * size));
    return Uint32Array.from(s).sort();
  });
}

describe('bars and copy history across a coordinator restart (issue 19)', () => {
  it('a sender barred before the restart stays out of the next commit, until an evaluation clears it', () => {
    const dir = tempDir();
    const ledgerFile = join(dir, 'ledger.sqlite');
    const config = testConfig({ minMembers: 2, gatherK: 5 });
    const log = () => {};
    let ledger = new Ledger(ledgerFile);
    const before = makeCoordinator(config, { dir, syncGraceMs: 0, barred: (a) => ledger.bar(a) !== null });
    const peers = joinAll(before.coordinator, [k.alice, k.bob]);
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 0, i + 1));
    expect(peers[0].last('commit')!.included).toHaveLength(2);
    const closed = before.coordinator.validatorInput.closedRound(0);
    if (!closed.ok) throw new Error(closed.reason);
    // The validator finds alice's round-0 update harmful: barred, and she hears so.
    const standings = recordScores(closed.closed, evaluation(0, { [k.alice.address]: harmful, [k.bob.address]: helpful }), { config, ledger, closedRounds: 1, log });
    expect(standings.get(k.alice.address)!.barred).toBe(true);
    expect(standings.get(k.bob.address)!.barred).toBe(false);
    before.coordinator.stop();
    ledger.close();

    // The restart: a new coordinator and ledger on the same folder.
    ledger = new Ledger(ledgerFile);
    expect(ledger.bar(k.alice.address)).toEqual({ since: 0, last: 0, reason: 'harmful' });
    expect(ledger.bar(k.bob.address)).toBeNull();
    const after = makeCoordinator(config, { dir, syncGraceMs: 0, barred: (a) => ledger.bar(a) !== null });
    expect(after.coordinator.round).toBe(1);
    const again = joinAll(after.coordinator, [k.alice, k.bob], 1);
    for (const [i, p] of again.entries()) p.binary(signedUpdate(p.key!, config, 1, i + 11));
    // Delivered and stored, not committed.
    expect(again[1].last('commit')).toMatchObject({ round: 1, delivered: 2, included: [{ sender: k.bob.address }] });

    // What the restart used to lose: a coordinator with only the bars sent since its start commits her.
    const forgetful = makeCoordinator(config, { syncGraceMs: 0 });
    const fresh = joinAll(forgetful.coordinator, [k.alice, k.bob]);
    for (const [i, p] of fresh.entries()) p.binary(signedUpdate(p.key!, config, 0, i + 1));
    expect(fresh[1].last('commit')!.included).toHaveLength(2);

    // A later round that says nothing of her keeps the bar (since round 0); a clean evaluation lifts it.
    const c1 = after.coordinator.validatorInput.closedRound(1);
    if (!c1.ok) throw new Error(c1.reason);
    const unsampled = recordScores(c1.closed, evaluation(1, { [k.bob.address]: helpful }), { config, ledger, closedRounds: 2, log });
    expect(unsampled.get(k.alice.address)!.barred).toBe(true);
    expect(ledger.bar(k.alice.address)).toEqual({ since: 0, last: 0, reason: 'harmful' });
    for (const p of again) p.synced(2);
    for (const [i, p] of again.entries()) p.binary(signedUpdate(p.key!, config, 2, i + 21));
    expect(again[1].last('commit')).toMatchObject({ round: 2, included: [{ sender: k.bob.address }] });
    const c2 = after.coordinator.validatorInput.closedRound(2);
    if (!c2.ok) throw new Error(c2.reason);
    const cleared = recordScores(c2.closed, evaluation(2, { [k.alice.address]: helpful, [k.bob.address]: helpful }), { config, ledger, closedRounds: 3, log });
    expect(cleared.get(k.alice.address)!.barred).toBe(false);
    expect(ledger.bar(k.alice.address)).toBeNull();
    for (const p of again) p.synced(3);
    for (const [i, p] of again.entries()) p.binary(signedUpdate(p.key!, config, 3, i + 31));
    expect(again[1].last('commit')!.included).toHaveLength(2);
    after.coordinator.stop();
    ledger.close();
  });

  it('an update repeating one from before the restart is still a copy; the ledger keeps only the last HISTORY_ROUNDS rounds', async () => {
    const dir = tempDir();
    const ledgerFile = join(dir, 'ledger.sqlite');
    const key = new Uint8Array(32).fill(7);
    const config = testConfig();
    const log = () => {};
    let ledger = new Ledger(ledgerFile);
    const history = new CopyHistory(key);
    const senders = ['a', 'b', 'c'];
    const round0 = Object.fromEntries(senders.map((s, i) => [s, indices(i + 1)]));
    // Rounds 0 … HISTORY_ROUNDS + 1 scored: fresh work every round after round 0.
    const last = HISTORY_ROUNDS + 1;
    for (let round = 0; round <= last; round++) {
      const updates = senders.map((sender, i) => ({ sender, indices: round === 0 ? round0[sender] : indices(100 * round + i) }));
      expect(history.check(round, updates).size).toBe(0);
      recordScores(closedRound(round, senders), evaluation(round, Object.fromEntries(senders.map((s) => [s, helpful])), { sketches: history.sketchesOf(round) }), { config, ledger, closedRounds: round + 1, log });
    }
    const kept = ledger.copySketches();
    expect(new Set(kept.map((s) => s.round))).toEqual(new Set(Array.from({ length: HISTORY_ROUNDS }, (_, i) => last - HISTORY_ROUNDS + 1 + i)));
    expect(kept).toHaveLength(HISTORY_ROUNDS * senders.length);
    ledger.close();

    // The restart: the copy history comes back from the ledger.
    ledger = new Ledger(ledgerFile);
    const restarted = new CopyHistory(key);
    const logged: string[] = [];
    await restoreVerdicts({ restoreCopyHistory: async (s) => restarted.restore(s) }, ledger, (l) => logged.push(l));
    expect(logged.join('\n')).toMatch(/copy history restored from .*ledger\.sqlite: 12 update sketch\(es\) of rounds 2–5/);
    const replayOf = indices(100 * last + 1); // b's update of the round before the restart
    const next = last + 1;
    const updates = [{ sender: 'a', indices: indices(999) }, { sender: 'b', indices: replayOf }, { sender: 'd', indices: indices(100 * (last - 2) + 2) }];
    const found = restarted.check(next, updates);
    expect([...found.keys()].sort()).toEqual(['b', 'd']);
    expect(found.get('b')).toMatchObject({ round: last, sender: 'b' });
    expect(found.get('d')).toMatchObject({ round: last - 2, sender: 'c' });
    // Without the restore (what a restart used to do) the same round finds nothing.
    expect(new CopyHistory(key).check(next, updates).size).toBe(0);
    // Round 0's updates are past the bound: forgotten by the ledger as in memory.
    expect(restarted.check(next + 1, [{ sender: 'e', indices: round0.a }]).size).toBe(0);
    // Sketches made with another key cannot be compared: not used, counted.
    expect(new CopyHistory(new Uint8Array(32).fill(8)).restore(ledger.copySketches())).toEqual({ restored: 0, foreign: 12 });
    ledger.close();
  });

  it('a tiny update beside one honest one is invalid and barred once the run has a reference, kept across the restart', () => {
    const dir = tempDir();
    const ledgerFile = join(dir, 'ledger.sqlite');
    const config = testConfig();
    const logged: string[] = [];
    const o = (ledger: Ledger, round: number) => ({ config, ledger, closedRounds: round + 1, log: (l: string) => logged.push(l) });
    const pair = ['5Honest', '5Shrink'];
    let ledger = new Ledger(ledgerFile);
    // Round 0: nothing to compare with; the shrinking update (norms × 1e-3) helps too little to score, so only the honest one's norms become the reference.
    const r0 = recordScores(closedRound(0, pair), evaluation(0, { '5Honest': helpful, '5Shrink': { gradient: 1e-5, assigned: 1e-5, control: 0 } }, { norms: [['5Honest', [1, 3]], ['5Shrink', [1e-3, 3e-3]]] }), o(ledger, 0));
    expect(r0.get('5Shrink')!.barred).toBe(false);
    ledger.close();
    ledger = new Ledger(ledgerFile);
    // Round 1, after a restart: the same again is invalid (a tensor under 1/UNDERSIZE_FACTOR of the reference), barred; the honest one, half its old norm, is not.
    const r1 = recordScores(closedRound(1, pair), evaluation(1, { '5Honest': helpful, '5Shrink': { gradient: 1e-5, assigned: 1e-5, control: 0 } }, { norms: [['5Honest', [0.5, 2]], ['5Shrink', [1e-3, 3]]] }), o(ledger, 1));
    expect(r1.get('5Shrink')!.barred).toBe(true);
    expect(r1.get('5Honest')!.barred).toBe(false);
    expect(ledger.bar('5Shrink')).toEqual({ since: 1, last: 1, reason: 'invalid' });
    expect(logged.filter((l) => /the update of 5Shrink has a tensor under 1\/10 of the run's recent norm: invalid/.test(l))).toHaveLength(1);
    // Without the reference (a fresh ledger) the same round finds nothing.
    const fresh = new Ledger(join(tempDir(), 'ledger.sqlite'));
    expect(recordScores(closedRound(1, pair), evaluation(1, { '5Honest': helpful }, { norms: [['5Honest', [0.5, 2]], ['5Shrink', [1e-3, 3]]] }), o(fresh, 1)).get('5Shrink')!.barred).not.toBe(true);
    fresh.close();
    ledger.close();
  });

  it('a ledger file that is not a ledger stops the start, naming the file and what to do', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    writeFileSync(file, 'not a database, but long enough to be read as a header: '.repeat(40));
    expect(() => new Ledger(file)).toThrow(new RegExp(`the reward ledger ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be opened .*move it away`));
  });
});
