// Gather-K: which of a round's delivered updates its commit names (every replica fetches and
// applies exactly those, so what a replica downloads per round is K, not N). Pure and
// deterministic: the same deliveries, standings, seed and round give the same commit.
//
// Never a barred sender: the validator found its last evaluated update harmful (its trial
// step made the loss worse), invalid or a copy, so nobody applies its updates until an
// evaluation clears it (validator.ts; the bar lands on the first commit after the verdict —
// one round after the attack when the validator keeps up). Of the rest: all of them when at
// most K were delivered. Otherwise most slots go to the highest standing
// (the validator's moving average of scores; ties by address), and EXPLORE_FRACTION of them
// (at least one) are drawn at random, seeded by (run seed, round), among the rest —
// newcomers (no standing yet) first — so a new peer gets in and earns a standing. A
// pipelined run picks K per stage (every stage's replicas need their own stage's updates).
// The result is sorted by sender: the order every replica applies them in.
import type { CommitEntry } from '../protocol/messages.ts';
import { Rng, mix32 } from '../model/config.ts';

/** Share of the K slots drawn at random rather than by standing. */
export const EXPLORE_FRACTION = 1 / 4;

export interface GatherInput {
  /** Every update the round stored. */
  delivered: readonly CommitEntry[];
  /** The run's gatherK. */
  k: number;
  /** A sender's standing (higher is better), or undefined for a newcomer. */
  standing: (sender: string) => number | undefined;
  seed: number;
  round: number;
  /** Whether the validator bars the sender from commits (none barred when absent). */
  barred?: (sender: string) => boolean;
}

const bySender = (a: CommitEntry, b: CommitEntry) => (a.sender < b.sender ? -1 : a.sender > b.sender ? 1 : 0);

/** The K entries to commit, sorted by sender. */
export function gatherK(input: GatherInput): CommitEntry[] {
  const allowed = input.barred ? input.delivered.filter((e) => !input.barred!(e.sender)) : input.delivered;
  const stages = [...new Set(allowed.map((e) => e.stage))].sort((a, b) => a - b);
  return stages.flatMap((stage) => gatherStage(input, allowed.filter((e) => e.stage === stage), stage)).sort(bySender);
}

function gatherStage(input: GatherInput, delivered: CommitEntry[], stage: number): CommitEntry[] {
  const { k } = input;
  if (delivered.length <= k) return [...delivered];
  const explore = Math.max(1, Math.ceil(k * EXPLORE_FRACTION));
  const known = delivered.filter((e) => input.standing(e.sender) !== undefined);
  const ranked = known.map((e) => ({ e, s: input.standing(e.sender)! })).sort((a, b) => b.s - a.s || bySender(a.e, b.e));
  const chosen = ranked.slice(0, k - explore).map((x) => x.e);
  const taken = new Set(chosen.map((e) => e.sender));
  const rng = new Rng(mix32((input.seed ^ mix32(input.round + 1) ^ mix32(stage + 0x51)) >>> 0));
  const newcomers = shuffled(delivered.filter((e) => input.standing(e.sender) === undefined).sort(bySender), rng);
  const others = shuffled(known.filter((e) => !taken.has(e.sender)).sort(bySender), rng);
  return [...chosen, ...[...newcomers, ...others].slice(0, k - chosen.length)];
}

/** Fisher–Yates with the seeded generator (the input sorted first, so only the seed decides). */
function shuffled<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}
