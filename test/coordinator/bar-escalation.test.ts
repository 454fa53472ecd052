// Bars that escalate for repeat offenders (issue 19): an attacker alternating harmful and honest
// rounds used to have every attack applied (a bar lifted after one clean evaluation). Now a
// bar's term doubles with each offence, survives a restart (the ledger keeps the offences), and
// a long clean record forgives. The clock is the round: each round the validator's bookkeeping
// (recordScores, a real ledger) scores it, and the next commit leaves out who the ledger bars,
// as gather-K does. No GPU.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { MAX_BAR_ROUNDS, OFFENCE_DECAY_ROUNDS, afterOffence, barRounds, offencesAt, termServed } from '../../src/coordinator/bar-terms.ts';
import { recordScores, type ClosedRound, type RoundEvaluation } from '../../src/coordinator/validator.ts';
import type { Trial } from '../../src/coordinator/scoring.ts';
import { removeTempDirs, tempDir, testConfig } from './helpers.ts';

afterEach(removeTempDirs);

const HASH = 'cd'.repeat(16);
const helpful: Trial = { gradient: 0.05, assigned: 0.05, control: 0.01 };
const harmful: Trial = { gradient: -0.2, assigned: -0.2, control: 0.01 };
const MEMBERS = ['bob', 'carol', 'mallory'];

function closedRound(round: number): ClosedRound {
  return {
    round, members: MEMBERS, missing: [], invalid: {}, others: [],
    included: MEMBERS.map((sender, i) => ({ sender, payload: new Uint8Array(0), deliveredAt: 1000 + i })),
    reportedHashes: Object.fromEntries(MEMBERS.map((s) => [s, HASH])),
  };
}

function evaluation(round: number, mallory: Trial): RoundEvaluation {
  return { round, trials: [['bob', helpful], ['carol', helpful], ['mallory', mallory]], copied: [], undecodable: [], weightsHash: HASH, timing: { fixedMs: 0, perUpdateMs: 0, evaluated: 0, outOfTime: 0 } };
}

/**
 * Rounds [from, to) of a swarm where mallory's update is `trial(round)`; the ledger is reopened
 * (a coordinator restart) before `restartAt`. Returns the rounds whose commit included her
 * while her update was harmful: the attacks applied.
 */
function run(file: string, from: number, to: number, trial: (round: number) => Trial, restartAt = -1): number[] {
  const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length });
  let ledger = new Ledger(file);
  const applied: number[] = [];
  try {
    for (let round = from; round < to; round++) {
      if (round === restartAt) {
        ledger.close();
        ledger = new Ledger(file);
      }
      // The commit of this round leaves out whom the ledger bars (the verdict on round − 1 is in).
      const committed = ledger.bar('mallory') === null;
      const t = trial(round);
      if (committed && t === harmful) applied.push(round);
      recordScores(closedRound(round), evaluation(round, t), { config, ledger, closedRounds: round + 1, log: () => {} });
    }
  } finally {
    ledger.close();
  }
  return applied;
}

const alternating = (round: number) => (round % 2 === 0 ? harmful : helpful);

describe('bars escalate for repeat offenders (issue 19)', () => {
  it('an attacker alternating harmful and honest rounds has its first two attacks applied, not every one', () => {
    const applied = run(join(tempDir(), 'ledger.sqlite'), 0, 40, alternating);
    // Before: a bar lifted after one clean evaluation, so all 20 attacks were applied.
    expect(applied).toEqual([0, 2]);
  });

  it('the term survives a coordinator restart (the ledger keeps the offences)', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    const applied = run(file, 0, 7, alternating, 5);
    expect(applied).toEqual([0, 2]);
    const ledger = new Ledger(file);
    // Offences in rounds 0, 2, 4, 6: the last term is 8 rounds from round 6.
    expect(ledger.offenceRecord('mallory')).toEqual({ offences: 4, lastOffence: 6 });
    expect(ledger.bar('mallory')!.reason).toBe('harmful (offence 4: barred at least 8 rounds)');
    ledger.close();
    // Honest from round 7 on: still barred through round 13, lifted by round 14's clean evaluation.
    const after = new Ledger(file);
    const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length });
    for (let round = 7; round <= 14; round++) {
      expect(after.bar('mallory'), `before round ${round}`).not.toBeNull();
      recordScores(closedRound(round), evaluation(round, helpful), { config, ledger: after, closedRounds: round + 1, log: () => {} });
    }
    expect(after.bar('mallory')).toBeNull();
    after.close();
  });

  it('an attacker that waits out each term gets about log2(rounds) attacks applied', () => {
    // Harmful whenever it is let in, honest while barred.
    const file = join(tempDir(), 'ledger.sqlite');
    const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length });
    const ledger = new Ledger(file);
    const applied: number[] = [];
    for (let round = 0; round < 40; round++) {
      const t = ledger.bar('mallory') === null ? harmful : helpful;
      if (t === harmful) applied.push(round);
      recordScores(closedRound(round), evaluation(round, t), { config, ledger, closedRounds: round + 1, log: () => {} });
    }
    ledger.close();
    // Terms 1, 2, 4, 8, 16 rounds after the attacks in rounds 0, 2, 5, 10, 19, 36.
    expect(applied).toEqual([0, 2, 5, 10, 19, 36]);
  });

  it('a long clean record forgives: an offence after it bars for one round again', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    // Two offences (rounds 0, 2), then honest for 2 × OFFENCE_DECAY_ROUNDS rounds, then one harmful round.
    const late = 3 + 2 * OFFENCE_DECAY_ROUNDS;
    const applied = run(file, 0, late + 2, (round) => (round === 0 || round === 2 || round === late ? harmful : helpful));
    expect(applied).toEqual([0, 2, late]);
    const ledger = new Ledger(file);
    expect(ledger.offenceRecord('mallory')).toEqual({ offences: 1, lastOffence: late });
    // Its clean evaluation the round after lifted the one-round bar.
    expect(ledger.bar('mallory')).toBeNull();
    ledger.close();
  });

  it('the terms: doubling, capped, decaying, a round scored again counts once', () => {
    expect([1, 2, 3, 4, 5].map(barRounds)).toEqual([1, 2, 4, 8, 16]);
    expect(barRounds(40)).toBe(MAX_BAR_ROUNDS);
    const r = afterOffence(afterOffence(null, 3), 4);
    expect(r).toEqual({ offences: 2, lastOffence: 4 });
    expect(afterOffence(r, 4)).toBe(r);
    expect(termServed(r, 5)).toBe(false);
    expect(termServed(r, 6)).toBe(true);
    expect(termServed(null, 0)).toBe(true);
    expect(offencesAt(r, 4 + OFFENCE_DECAY_ROUNDS - 1)).toBe(2);
    expect(offencesAt(r, 4 + OFFENCE_DECAY_ROUNDS)).toBe(1);
    expect(offencesAt(r, 4 + 5 * OFFENCE_DECAY_ROUNDS)).toBe(0);
  });
});
