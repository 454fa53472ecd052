// Rewards held in escrow (issue 19). A round's reward is not earned when the round is scored:
// it waits `rewardEscrowRounds` (W) rounds, and an invalid or copied update from the member in
// them forfeits everything it holds; otherwise it is earned once round r + W is scored (counted
// in the epoch of that round: chain weights are set from what an epoch earned). This is what
// takes the pay of an attacker's honest-looking rounds before its attack is caught: a stale
// replayer's first round (an honest update, replayed from the next round on: a copy), rounds of
// an update shrunk just over the undersize bar, paid before the run had a reference norm.
// Only invalid and copied forfeit all: an honest member sends neither, whereas a harmful trial
// can be noise (an honest update late in the schedule, when the held-out loss has stopped
// falling). A round the member is barred from (an earlier verdict) is held on probation: any
// offence, harmful included, forfeits what it holds of such rounds, and they are earned only
// once the bar has lifted and W rounds have passed since the last of them. An attacker
// alternating harmful and honest rounds, or honest while barred and harmful when let back in,
// loses its honest rounds to its next attack; an honest member judged harmful once by noise
// loses that round only, and earns its barred round W rounds after the bar lifts.
// Pure: the clock is the round number of the scored rounds; the ledger keeps the escrow
// (Ledger.recordRound), so a restart keeps it.
import { barredAfter, type ScoredRow } from './scoring.ts';

/** What one scored round decides of escrow. */
export interface EscrowVerdict {
  /** The window W: the rewards of rounds up to this round − W are earned now (0: at once). */
  rounds: number;
  /** Members whose escrow this round forfeits (an offence that forfeits: forfeitsEscrow). */
  forfeit: ReadonlySet<string>;
  /** Members whose rounds on probation (barred) this round forfeits: any offence (scoring.ts barredAfter). */
  forfeitProbation: ReadonlySet<string>;
  /** Members barred in this round by an earlier verdict: their reward of the round is held on probation. */
  probation: ReadonlySet<string>;
}

/** Whether a round's verdict forfeits the member's escrow: an invalid or copied update (never noise). */
export function forfeitsEscrow(r: Pick<ScoredRow, 'invalid' | 'copied'>): boolean {
  return r.invalid || r.copied;
}

/** The escrow verdict of a scored round's rows, with the run's window. */
export function escrowVerdict(rows: readonly ScoredRow[], rounds: number): EscrowVerdict {
  const of = (keep: (r: ScoredRow) => boolean) => new Set(rows.filter(keep).map((r) => r.address));
  return { rounds, forfeit: of(forfeitsEscrow), forfeitProbation: of((r) => barredAfter(r) === true), probation: of((r) => r.barred) };
}

/** The last round whose escrow is earned once `round` is scored (negative: none yet). */
export function earnedThrough(round: number, escrowRounds: number): number {
  return round - escrowRounds;
}
