// How long a bar lasts (issue 19): a sender the validator bars (harmful, invalid or a copy:
// scoring.ts barredAfter) stays out of commits for a term that doubles with each offence, and
// a clean evaluation lifts the bar only once the term has run. A bar that lifted after one
// clean evaluation let an attacker alternating honest and harmful rounds have every attack
// applied; with the doubling, its first two attacks are applied and every later one lands
// while it is barred (and doubles the term again), so an attacker gets a few applied attacks
// in a run (about log2 of the rounds when it waits out each term), not half of them.
// A clean record forgives: every OFFENCE_DECAY_ROUNDS rounds since the last offence take one
// offence off, so an honest member whose update once looked harmful by noise is back to a
// one-round bar. The record (offences, last offence) is kept in the ledger with the bars, so a
// restart keeps the term. Pure: the clock is the round number of the scored rounds.
import { barReason, barredAfter, type ScoredRow } from './scoring.ts';

/** A sender's offences, as the ledger keeps them (also after its bar lifted: the next offence escalates). */
export interface OffenceRecord {
  /** Offences counted, after forgiveness up to the last one. */
  offences: number;
  /** The round of the latest offence. */
  lastOffence: number;
}

/** Rounds without an offence that forgive one (a long clean record decays the term). */
export const OFFENCE_DECAY_ROUNDS = 50;
/** The longest term, in rounds (2^10: past it an attacker gains nothing by waiting). */
export const MAX_BAR_ROUNDS = 1024;

/** Offences still counted at `round` (each OFFENCE_DECAY_ROUNDS since the last one forgive one). */
export function offencesAt(record: OffenceRecord | null, round: number): number {
  if (!record) return 0;
  const forgiven = Math.floor(Math.max(0, round - record.lastOffence) / OFFENCE_DECAY_ROUNDS);
  return Math.max(0, record.offences - forgiven);
}

/** The record after an offence in `round` (a round scored again after a crash counts once). */
export function afterOffence(record: OffenceRecord | null, round: number): OffenceRecord {
  if (record && record.lastOffence >= round) return record;
  return { offences: offencesAt(record, round) + 1, lastOffence: round };
}

/** The term of a bar after `offences` offences, in rounds: 1, 2, 4, … up to MAX_BAR_ROUNDS. */
export function barRounds(offences: number): number {
  return Math.min(MAX_BAR_ROUNDS, 2 ** Math.max(0, offences - 1));
}

/** Whether a clean evaluation of `round` lifts the bar (its term from the last offence has run). */
export function termServed(record: OffenceRecord | null, round: number): boolean {
  return !record || round >= record.lastOffence + barRounds(record.offences);
}

/** The bar's reason as the ledger keeps it: the verdict, and the term once it is longer than a round. */
export function termReason(verdict: string, record: OffenceRecord): string {
  const rounds = barRounds(record.offences);
  return rounds > 1 ? `${verdict} (offence ${record.offences}: barred at least ${rounds} rounds)` : verdict;
}

/**
 * What a scored round decides of bars: a verdict that bars (scoring.ts barredAfter) counts an
 * offence and bars with its term; a clean one lifts the bar once the term has run; a round that
 * says nothing of a member (not evaluated, only missing or out of sync) leaves its bar as it was.
 */
export function barVerdicts(rows: readonly ScoredRow[], round: number, recordOf: (address: string) => OffenceRecord | null): { bars: Map<string, string | null>; offences: Map<string, OffenceRecord> } {
  const bars = new Map<string, string | null>();
  const offences = new Map<string, OffenceRecord>();
  for (const r of rows) {
    const barred = barredAfter(r);
    if (barred === undefined) continue;
    const record = recordOf(r.address);
    if (barred) {
      const next = afterOffence(record, round);
      offences.set(r.address, next);
      bars.set(r.address, termReason(barReason(r), next));
    } else if (termServed(record, round)) bars.set(r.address, null);
  }
  return { bars, offences };
}
