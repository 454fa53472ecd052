// Rewards in escrow, barred rounds on probation (issue 19): the attacker's share goes to 0 for the
// patterns that kept some — a stale replayer paid for its honest first round, an attacker
// alternating harmful and honest rounds paid for the honest ones it sent while barred, an update
// shrunk just over the undersize bar paid for the rounds before the run had a reference — while
// an honest member earns all it was credited once the window has passed (its barred round after
// a noisy harmful verdict included), and a restart keeps the escrow.
// The clock is the round: each round the validator's bookkeeping (recordScores, a real ledger on a
// temporary SQLite file) scores it, as bar-escalation.test.ts does. No GPU.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { recordScores, type ClosedRound, type RoundEvaluation } from '../../src/coordinator/validator.ts';
import type { Trial } from '../../src/coordinator/scoring.ts';
import { removeTempDirs, tempDir, testConfig } from './helpers.ts';

afterEach(removeTempDirs);

const HASH = 'cd'.repeat(16);
const helpful: Trial = { gradient: 0.05, assigned: 0.05, control: 0.01 };
const harmful: Trial = { gradient: -0.2, assigned: -0.2, control: 0.01 };
/** An honest update scaled by 1/9: it helps about 1/9 as much (over the noise floor, under the reference pool's bar). */
const shrunk: Trial = { gradient: 0.05 / 9, assigned: 0.05 / 9, control: 0.001 };
const MEMBERS = ['bob', 'carol', 'mallory'];
const HONEST_NORMS = [1, 2];

/** What mallory sends in a round: its trial, whether it repeats an earlier update, its per-tensor norms. */
interface Sent {
  trial: Trial;
  copy?: boolean;
  norms?: number[];
}

function closedRound(round: number): ClosedRound {
  return {
    round, members: MEMBERS, missing: [], invalid: {}, others: [],
    included: MEMBERS.map((sender, i) => ({ sender, payload: new Uint8Array(0), deliveredAt: 1000 + i })),
    reportedHashes: Object.fromEntries(MEMBERS.map((s) => [s, HASH])),
  };
}

function evaluation(round: number, mallory: Sent, honest: Trial = helpful): RoundEvaluation {
  return {
    round, trials: [['bob', helpful], ['carol', honest], ['mallory', mallory.trial]], copied: mallory.copy ? ['mallory'] : [], undecodable: [], weightsHash: HASH,
    timing: { fixedMs: 0, perUpdateMs: 0, evaluated: 0, outOfTime: 0 },
    norms: [['bob', HONEST_NORMS], ['carol', HONEST_NORMS], ['mallory', mallory.norms ?? HONEST_NORMS]],
  };
}

/** Rounds [0, rounds) with mallory sending `sent(round)` (carol `carol(round)`); the ledger is reopened before `restartAt`. */
function run(file: string, rounds: number, sent: (round: number) => Sent, o: { restartAt?: number; escrowRounds?: number; carol?: (round: number) => Trial } = {}): void {
  const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length, ...(o.escrowRounds !== undefined ? { rewardEscrowRounds: o.escrowRounds } : {}) });
  let ledger = new Ledger(file);
  try {
    for (let round = 0; round < rounds; round++) {
      if (round === o.restartAt) {
        ledger.close();
        ledger = new Ledger(file);
      }
      recordScores(closedRound(round), evaluation(round, sent(round), o.carol?.(round)), { config, ledger, closedRounds: round + 1, log: () => {} });
    }
  } finally {
    ledger.close();
  }
}

/** Each member's rewards: credited per round, and earned, pending and forfeited in all. */
function pay(file: string, address: string) {
  const ledger = new Ledger(file);
  try {
    const history = ledger.history(address);
    const sum = (state: string) => history.filter((h) => h.paid === state).reduce((n, h) => n + h.reward, 0);
    const standing = ledger.standing(address, Math.floor(ledger.lastRound / testConfig().epochRounds))!;
    return { credited: history.reduce((n, h) => n + h.reward, 0), earned: sum('earned'), pending: sum('pending'), forfeited: sum('forfeited'), standing, history };
  } finally {
    ledger.close();
  }
}

const ROUNDS = 12;
const escrow = testConfig().rewardEscrowRounds;
const perRound = testConfig().emissionPerEpoch / testConfig().epochRounds;

describe('rewards in escrow, unpaid bars (issue 19)', () => {
  it('the default window is the copy check\'s look-back: 4 rounds', () => {
    expect(escrow).toBe(4);
  });

  it('a stale replayer forfeits its honest first round at its first replay: share 0', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    run(file, ROUNDS, (round) => (round === 0 ? { trial: helpful } : { trial: helpful, copy: true }));
    const m = pay(file, 'mallory');
    // Round 0 was credited (before: paid, 2.1% of the bench's rewards), then forfeited by the copy of round 1.
    expect(m.history[0]).toMatchObject({ round: 0, paid: 'forfeited' });
    expect(m.history[0].reward).toBeGreaterThan(0);
    expect([m.earned, m.pending]).toEqual([0, 0]);
    expect(m.standing).toMatchObject({ totalReward: 0, pendingReward: 0 });
    expect(m.standing.forfeitedReward).toBeCloseTo(m.history[0].reward, 9);
  });

  it('an attacker alternating harmful and honest rounds is paid nothing: its honest rounds fall while it is barred, and each attack forfeits them', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    run(file, ROUNDS, (round) => ({ trial: round % 2 === 0 ? harmful : helpful }));
    const m = pay(file, 'mallory');
    // Its honest rounds were credited on probation (before: paid, 6.8% of the bench's rewards) and forfeited by the next attack.
    const honestRounds = m.history.filter((h) => h.round % 2 === 1);
    expect(honestRounds.every((h) => h.reward > 0)).toBe(true);
    expect(honestRounds.slice(0, -1).every((h) => h.paid === 'forfeited')).toBe(true);
    // The last (round 11) is still on probation: barred (term 32 rounds), it earns nothing before the bar lifts and W rounds pass.
    expect(m.earned).toBe(0);
    expect(m.history.filter((h) => h.paid === 'pending').map((h) => h.round)).toEqual([ROUNDS - 1]);
  });

  it('an attacker honest while barred and harmful whenever let back in earns nothing: its rounds on probation wait for the bar to lift', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length });
    const ledger = new Ledger(file);
    const attacks: number[] = [];
    for (let round = 0; round < 40; round++) {
      const letIn = ledger.bar('mallory') === null;
      if (letIn) attacks.push(round);
      recordScores(closedRound(round), evaluation(round, { trial: letIn ? harmful : helpful }), { config, ledger, closedRounds: round + 1, log: () => {} });
    }
    ledger.close();
    expect(attacks).toEqual([0, 2, 5, 10, 19, 36]);
    const m = pay(file, 'mallory');
    expect(m.earned).toBe(0);
    // Everything before its last attack forfeited; its rounds barred since (37–39) still on probation.
    expect(m.history.filter((h) => h.round < 36 && h.reward > 0).every((h) => h.paid === 'forfeited')).toBe(true);
    expect(m.history.filter((h) => h.paid === 'pending').map((h) => h.round)).toEqual([37, 38, 39]);
  });

  it('an update shrunk just over the undersize bar forfeits the rounds paid before the reference caught it', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    // ×1/9 of the honest norms until round 2, when it falls under 1/10 of the reference (the honest norms of rounds 0–1).
    run(file, ROUNDS, (round) => ({ trial: shrunk, norms: HONEST_NORMS.map((n) => n * (round < 2 ? 1 / 9 : 1 / 11)) }));
    const m = pay(file, 'mallory');
    expect(m.history.slice(0, 2).map((h) => h.paid)).toEqual(['forfeited', 'forfeited']);
    expect(m.history[0].reward).toBeGreaterThan(0);
    expect(m.earned + m.pending).toBe(0);
  });

  it('an honest member is credited every round and earns it all once the window has passed; earned counts in the epoch it is earned in', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    run(file, ROUNDS, () => ({ trial: helpful }));
    const b = pay(file, 'bob');
    // Three alike: a third of each round.
    expect(b.history.length).toBe(ROUNDS);
    for (const h of b.history) expect(h.reward).toBeCloseTo(perRound / 3, 9);
    expect(b.earned).toBeCloseTo(((ROUNDS - escrow) * perRound) / 3, 9);
    expect(b.pending).toBeCloseTo((escrow * perRound) / 3, 9);
    expect(b.standing).toMatchObject({ forfeitedReward: 0 });
    expect(b.standing.totalReward).toBeCloseTo(b.earned, 9);
    expect(b.standing.pendingReward).toBeCloseTo(b.pending, 9);
    // The window passes: everything credited is earned, nothing lost.
    const more = join(tempDir(), 'ledger.sqlite');
    run(more, ROUNDS + escrow, () => ({ trial: helpful }));
    const after = pay(more, 'bob');
    expect(after.history.slice(0, ROUNDS).every((h) => h.paid === 'earned')).toBe(true);
    expect(after.forfeited).toBe(0);
    // Epoch 0 (rounds 0–9) earned rounds 0–5's rewards: rounds 6–9's were earned in epoch 1.
    const ledger = new Ledger(more);
    expect(ledger.epochRewards(0).bob).toBeCloseTo(((testConfig().epochRounds - escrow) * perRound) / 3, 9);
    ledger.close();
  });

  it('a window of 0 earns at once (the rule before escrow for an honest swarm)', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    run(file, 3, () => ({ trial: helpful }), { escrowRounds: 0 });
    const b = pay(file, 'bob');
    expect([b.pending, b.forfeited]).toEqual([0, 0]);
    expect(b.earned).toBeCloseTo(perRound, 9);
  });

  it('a restart in the middle of the window keeps the escrow: held across it, then forfeited or earned', () => {
    const stale = join(tempDir(), 'ledger.sqlite');
    // Round 0 is in escrow when the coordinator restarts; the replay after it forfeits it.
    run(stale, 3, (round) => (round === 0 ? { trial: helpful } : { trial: helpful, copy: true }), { restartAt: 1 });
    expect(pay(stale, 'mallory')).toMatchObject({ earned: 0, pending: 0 });
    expect(pay(stale, 'mallory').forfeited).toBeGreaterThan(0);
    // An honest member's escrow of rounds 0–2 waits across a restart and is earned in rounds 4–6.
    const honest = join(tempDir(), 'ledger.sqlite');
    run(honest, 3, () => ({ trial: helpful }));
    expect(pay(honest, 'bob')).toMatchObject({ earned: 0 });
    expect(pay(honest, 'bob').pending).toBeCloseTo(perRound, 9);
    const config = testConfig({ minMembers: 1, gatherK: MEMBERS.length });
    const ledger = new Ledger(honest);
    for (let round = 3; round < 3 + escrow; round++) recordScores(closedRound(round), evaluation(round, { trial: helpful }), { config, ledger, closedRounds: round + 1, log: () => {} });
    ledger.close();
    const b = pay(honest, 'bob');
    expect(b.history.slice(0, 3).map((h) => h.paid)).toEqual(['earned', 'earned', 'earned']);
    expect(b.forfeited).toBe(0);
  });

  it('an honest update judged harmful once by noise costs that round only: its barred round is earned after the window', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    run(file, ROUNDS, () => ({ trial: helpful }), { carol: (round) => (round === 6 ? { gradient: -1e-4, assigned: 0.01, control: -1e-4 } : helpful) });
    const c = pay(file, 'carol');
    expect(c.forfeited).toBe(0);
    // Round 6 (harmful) pays nothing, as before escrow; round 7 (barred) was held on probation and earned by round 11.
    expect(c.history.filter((h) => h.reward === 0).map((h) => h.round)).toEqual([6]);
    expect(c.history[7].paid).toBe('earned');
    // A second offence while its barred round is on probation forfeits that round (and nothing else).
    const twice = join(tempDir(), 'ledger.sqlite');
    run(twice, ROUNDS, () => ({ trial: helpful }), { carol: (round) => (round === 6 || round === 8 ? { gradient: -1e-4, assigned: 0.01, control: -1e-4 } : helpful) });
    const c2 = pay(twice, 'carol');
    expect(c2.history.filter((h) => h.paid === 'forfeited').map((h) => h.round)).toEqual([7]);
  });
});
