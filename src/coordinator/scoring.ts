// The validator's bookkeeping, apart from the GPU work: which updates a round evaluates (all
// of them in a small swarm, a sample in a large one), which are copies, and how the trial
// results, penalties and previous averages make each member's round score, averages, share
// and reward. Pure, so it is tested without a GPU (validator.ts does the evaluations).
import { createHmac, randomBytes } from 'node:crypto';
import type { RoundScore } from './ledger.ts';
import { COPY_SKETCH, bandBuckets, mayBeCopy, sketchIndexSets, type SketchParams } from './copy-sketch.ts';

export const COPY_OVERLAP = 0.4;
/** Fraction of the round's median positive gradient score below which an update scores 0. */
export const NOISE_FLOOR = 0.1;
const EMA_KEEP = 0.9;
/** The assigned-data average moves faster: its ±1 signal is weak and it must settle in a few rounds. */
const ASSIGNED_KEEP = 0.8;
/**
 * Where a new contributor's assigned-data average starts: +1, full credit. The check is a
 * weak signal (an honest update beats the control batches in most rounds, not all), so a
 * newcomer is not made to earn its way up from nothing: a noisy first round must not zero it.
 */
export const ASSIGNED_PRIOR = 1;
/**
 * The assigned-data average at and above which the gradient score counts in full. An honest
 * peer winning ~65% or more of its checks averages ≥ 0.3 (2·0.65 − 1); one trained on other
 * data wins about half of them and averages ~0, so its factor sinks towards 0 over rounds.
 */
export const ASSIGNED_FULL = 0.3;

/**
 * The multiplier the assigned-data evidence puts on the gradient score, in [0, 1]: 1 while
 * the average is at or above ASSIGNED_FULL, falling linearly to 0 at an average of 0 (no
 * advantage on its own data). From the prior of +1 it takes three lost checks in a row to
 * fall below 0.1; a single lost check leaves it at 1.
 */
export function assignedFactor(assignedEma: number): number {
  return Math.min(1, Math.max(0, assignedEma / ASSIGNED_FULL));
}

export interface SamplingOptions {
  /** Evaluate every update while a round has at most this many. */
  scoreAllUpTo: number;
  /** Otherwise evaluate this many, a fresh sample each round. */
  sampleSize: number;
  /**
   * The sample's secret: the sample is reproducible from (key, round) but nobody without the
   * key can tell in advance whether their update will be checked (the run's seed is public,
   * so it must not choose the sample).
   */
  key: Uint8Array;
}

export const DEFAULT_SAMPLING: Omit<SamplingOptions, 'key'> = { scoreAllUpTo: 16, sampleSize: 16 };

export function samplingOptions(o: Partial<SamplingOptions> = {}): SamplingOptions {
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const s: SamplingOptions = { ...DEFAULT_SAMPLING, key: randomBytes(32), ...given };
  if (!Number.isInteger(s.scoreAllUpTo) || s.scoreAllUpTo < 1) throw new RangeError(`scoreAllUpTo must be a positive integer, got ${s.scoreAllUpTo}`);
  if (!Number.isInteger(s.sampleSize) || s.sampleSize < 1) throw new RangeError(`sampleSize must be a positive integer, got ${s.sampleSize}`);
  if (!(s.key instanceof Uint8Array) || s.key.length < 16) throw new RangeError('the sampling key must be at least 16 bytes');
  return s;
}

/**
 * The senders whose updates round `round` evaluates: all while there are few; else the
 * `sampleSize` whose keyed hash of (round, sender) is lowest — a uniform sample, the same for
 * the same key, round and senders whatever their order.
 */
export function sampleForRound(senders: readonly string[], round: number, o: SamplingOptions): Set<string> {
  if (senders.length <= o.scoreAllUpTo) return new Set(senders);
  return new Set(rankForRound(senders, round, o.key).slice(0, o.sampleSize));
}

/** The senders in the validator's secret order for a round (HMAC of round and sender under its key). */
export function rankForRound(senders: readonly string[], round: number, key: Uint8Array): string[] {
  const rank = (sender: string) => createHmac('sha256', key).update(`${round}\0${sender}`).digest('hex');
  return [...new Set(senders)].map((s) => ({ s, r: rank(s) })).sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0)).map((x) => x.s);
}

/** |A ∩ B| / min(|A|, |B|) over all tensors (each tensor's indices sorted). */
export function indexOverlap(a: Uint32Array[], b: Uint32Array[]): number {
  let common = 0;
  let na = 0;
  let nb = 0;
  for (let t = 0; t < a.length; t++) {
    const x = a[t];
    const y = b[t];
    na += x.length;
    nb += y.length;
    for (let i = 0, j = 0; i < x.length && j < y.length; ) {
      if (x[i] === y[j]) {
        common++;
        i++;
        j++;
      } else if (x[i] < y[j]) i++;
      else j++;
    }
  }
  return common / Math.max(1, Math.min(na, nb));
}

export interface CopyCandidate {
  sender: string;
  /** Each tensor's top-k flat indices, sorted. */
  indices: Uint32Array[];
  /** When the update reached the coordinator. */
  at: number;
}

/**
 * Of two updates sharing most of their indices (indexOverlap > COPY_OVERLAP), the later
 * delivery is the copy (both when simultaneous). Linear in the round's size: MinHash/LSH
 * sketches (copy-sketch.ts) name candidate pairs, the full sketches screen out those far
 * under the threshold, and each left is confirmed with the exact indexOverlap, so nothing is
 * flagged that findCopiesPairwise would not flag; a copy at the threshold escapes with
 * probability ≤ 0.001 (far less further above it). Deterministic: the same round, the same flags.
 */
export function findCopies(updates: readonly CopyCandidate[], sketch: SketchParams = COPY_SKETCH): Set<string> {
  return detectCopies(updates, sketch).copied;
}

export interface CopyCheck {
  copied: Set<string>;
  /** Exact overlaps computed (candidate pairs that could still change the answer). */
  confirmed: number;
  /** Of those, the ones at or under the threshold (the sketch's false candidates). */
  rejected: number;
  /** Candidate pairs whose full sketches ruled a copy out (mayBeCopy), with no exact overlap. */
  screened: number;
}

/**
 * The sketch's seed for `round`, from the validator's secret key (as the sample's): nobody
 * without the key can tell which of their indices decide the bands, so a partial copy cannot
 * be cut to slip past them; reproducible from (key, round).
 */
export function copySketchForRound(key: Uint8Array, round: number, base: SketchParams = COPY_SKETCH): SketchParams {
  return { ...base, seed: createHmac('sha256', key).update(`copy-sketch\0${round}`).digest().readUInt32LE(0) };
}

/** findCopies with its counts, for the benchmark and tests. */
export function detectCopies(updates: readonly CopyCandidate[], sketch: SketchParams = COPY_SKETCH): CopyCheck {
  const n = updates.length;
  const flagged = new Uint8Array(n);
  const rejectedPairs = new Set<number>();
  let confirmed = 0;
  let screened = 0;
  const sketches = updates.map((u) => sketchIndexSets(u.indices, sketch));
  const elements = updates.map((u) => u.indices.reduce((s, t) => s + t.length, 0));
  const buckets = bandBuckets(sketches, sketch);
  // x is a copy when some y delivered no later overlaps it; only an unflagged x can change the
  // answer, and a confirmed pair ends x's search, so a bucket of m identical copies costs m
  // exact overlaps, not m²/2.
  for (const members of buckets) {
    for (const x of members) {
      if (flagged[x]) continue;
      for (const y of members) {
        if (y === x || updates[y].at > updates[x].at) continue;
        const pair = Math.min(x, y) * n + Math.max(x, y);
        if (rejectedPairs.has(pair)) continue;
        if (!mayBeCopy(sketches[x]!, sketches[y]!, elements[x], elements[y], COPY_OVERLAP)) {
          rejectedPairs.add(pair);
          screened++;
          continue;
        }
        confirmed++;
        if (indexOverlap(updates[x].indices, updates[y].indices) <= COPY_OVERLAP) {
          rejectedPairs.add(pair);
          continue;
        }
        flagged[x] = 1;
        if (updates[y].at === updates[x].at) flagged[y] = 1;
        break;
      }
    }
  }
  const copied = new Set<string>();
  for (let u = 0; u < n; u++) if (flagged[u]) copied.add(updates[u].sender);
  return { copied, confirmed, rejected: rejectedPairs.size - screened, screened };
}

/** The exact check over every pair, O(N²): the reference findCopies must agree with. */
export function findCopiesPairwise(updates: readonly CopyCandidate[]): Set<string> {
  const copied = new Set<string>();
  for (let i = 0; i < updates.length; i++) {
    for (let j = i + 1; j < updates.length; j++) {
      const a = updates[i];
      const b = updates[j];
      if (indexOverlap(a.indices, b.indices) <= COPY_OVERLAP) continue;
      if (a.at >= b.at) copied.add(a.sender);
      if (b.at >= a.at) copied.add(b.sender);
    }
  }
  return copied;
}

/** One evaluated update: relative loss improvements after the trial step. */
export interface Trial {
  /** On random held-out batches. */
  gradient: number;
  /** On the peer's own assigned batches. */
  assigned: number;
  /** On training-split batches nobody was given. */
  control: number;
}

export type ScoredRow = RoundScore & {
  ema: number;
  assignedEma: number;
  share: number;
  reward: number;
  sampled: boolean;
  /** Its trial step made the validator's held-out loss worse: it must not be applied. */
  harmful: boolean;
  /** A bar from an earlier round's verdict kept it out of this round: its reward is held on probation (escrow.ts). */
  barred: boolean;
};

/**
 * How far above the round's lower-median update norm an update may be. Replicas clip every
 * update to that median anyway (aggregate.ts), so an update this much larger is not honest
 * work that happened to be large: it is scaled (×1000 passed the trial step when the scaled
 * direction still helped, and was paid). Honest norms in a round differ by a small factor.
 */
export const OVERSIZE_FACTOR = 10;
/** Fewer updates than this and the median is no reference (one small update would condemn the other). */
export const OVERSIZE_MIN_UPDATES = 3;

/** The senders whose update's L2 norm exceeds OVERSIZE_FACTOR × the lower median of the round's norms (none with fewer than OVERSIZE_MIN_UPDATES). */
export function oversizedUpdates(norms: ReadonlyMap<string, number>): string[] {
  if (norms.size < OVERSIZE_MIN_UPDATES) return [];
  const sorted = [...norms.values()].sort((a, b) => a - b);
  const bound = OVERSIZE_FACTOR * sorted[(sorted.length - 1) >> 1];
  return [...norms].filter(([, n]) => !(n <= bound)).map(([s]) => s);
}

/**
 * How far below the run's recent norms an update's tensor may be. Replicas clip each tensor to
 * the lower median of the commit's norms: with two committed updates that is the smaller, so
 * a tiny (or zero) tensor shrinks the other update's to its size, and nothing in one round
 * tells which of two is wrong (scaling both alike changes nothing). The run's recent helpful
 * updates tell: an update whose tensor is this far under theirs is not honest work.
 */
export const UNDERSIZE_FACTOR = 10;
/** Rounds of helpful updates' norms the reference is taken over (the ledger keeps these only). */
export const NORM_REFERENCE_ROUNDS = 4;

/**
 * An update's norms join the reference only if it scored at least this share of the round's
 * median positive score. A trial step's gain grows with the update's size, so an update scaled
 * down (×1/9, just over the undersize bar) scores about that share of an honest one and stays
 * out; beside one honest update it would otherwise be half the pool, and the lower median its
 * norm (the clip floor made from it would not hold: bench adversary --attacks shrink).
 */
export const REFERENCE_SCORE_SHARE = 0.5;

/** The evaluated members whose norms join the reference this round (see REFERENCE_SCORE_SHARE). */
export function referenceSenders(rows: readonly Pick<ScoredRow, 'address' | 'sampled' | 'score'>[]): Set<string> {
  const scores = rows.filter((r) => r.sampled && r.score > 0).map((r) => r.score).sort((a, b) => a - b);
  // The upper median, as the noise floor takes it: of two, the larger.
  const bar = scores.length ? REFERENCE_SCORE_SHARE * scores[scores.length >> 1] : Infinity;
  return new Set(rows.filter((r) => r.sampled && r.score > 0 && r.score >= bar).map((r) => r.address));
}

/**
 * Per tensor, the lower median of the norms of the recent updates that scored well (a tiny
 * update helps too little to: it never enters, referenceSenders), or 0 where none has a positive norm.
 */
export function normReference(pool: readonly (readonly number[])[]): number[] {
  const tensors = Math.max(0, ...pool.map((p) => p.length));
  return Array.from({ length: tensors }, (_, t) => {
    const xs = pool.map((p) => p[t]).filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
    return xs.length ? xs[(xs.length - 1) >> 1] : 0;
  });
}

/**
 * The clip floor a commit of fewer than three updates carries (aggregate.ts): the reference
 * itself, so an update just over the undersize bar cannot shrink the other one to its size,
 * and a huge one is clipped to a recent helpful norm; undefined while there is no reference.
 */
export function clipFloorOf(pool: readonly (readonly number[])[]): number[] | undefined {
  const reference = normReference(pool);
  return reference.some((x) => x > 0) ? reference : undefined;
}

/** The senders with a tensor whose norm is under reference / UNDERSIZE_FACTOR (none for a tensor without a reference). */
export function undersizedUpdates(norms: ReadonlyMap<string, readonly number[]>, reference: readonly number[]): string[] {
  return [...norms].filter(([, n]) => n.some((x, t) => (reference[t] ?? 0) > 0 && !(x >= reference[t] / UNDERSIZE_FACTOR))).map(([s]) => s);
}

/**
 * Whether a trial says the update harms the model: its held-out loss is worse AND a second,
 * independent set of batches agrees — the peer's own assigned batches (an honest update was
 * trained on them, so it improves them) or the control batches nobody was given. The held-out
 * number alone, over H batches, barred honest members late in the schedule when gains are as
 * small as its noise: 11 of 198 honest rows judged harmful over five 12-round runs (bench
 * adversary --inner-steps 4 --log; 5 with this rule), 9 of them still improving their own
 * assigned batches, where every sign-flipped row it caught made them worse. A held-out loss that is worse only on held-out data
 * scores 0 (it is not paid) but does not bar.
 */
export function harmfulTrial(t: Trial): boolean {
  return t.gradient < 0 && (t.assigned < 0 || t.control < 0);
}

/** Whether a trial's three numbers are all finite (a non-finite one is an invalid update). */
export function finiteTrial(t: Trial): boolean {
  return Number.isFinite(t.gradient) && Number.isFinite(t.assigned) && Number.isFinite(t.control);
}

/**
 * Whether the commit must leave the member out until a later evaluation clears it: its update
 * was harmful (trial loss worse), invalid or a copy (a stale replay among them). True or false
 * when this round says so; undefined when it says nothing (not evaluated, nothing penalised,
 * or only missing or out of sync): the last verdict stands.
 */
export function barredAfter(r: ScoredRow): boolean | undefined {
  if (r.harmful || r.invalid || r.copied) return true;
  return r.sampled && !r.missing && r.synced ? false : undefined;
}

/** What bars the member after this round (barredAfter true): its verdicts in words, as the ledger keeps them. */
export function barReason(r: ScoredRow): string {
  return [r.harmful && 'harmful', r.invalid && 'invalid', r.copied && 'copy'].filter(Boolean).join(', ');
}

export interface RoundInput {
  members: readonly string[];
  /** Senders whose update was included in the round. */
  delivered: ReadonlySet<string>;
  /** The evaluated (sampled) updates. */
  trials: ReadonlyMap<string, Trial>;
  copied: ReadonlySet<string>;
  invalid: Readonly<Record<string, number>>;
  synced: (address: string) => boolean;
  /** The averages after the member's last scored round; null for one never scored (it starts at the priors). */
  previous: (address: string) => { ema: number; assignedEma: number } | null;
  /** What the round pays out in all. */
  emission: number;
  /** Whether a bar from an earlier round's verdict keeps the member out of this round (none when absent). */
  barred?: (address: string) => boolean;
}

/**
 * Each member's row (what a round credits: the ledger holds it in escrow, escrow.ts). Evaluated: score = max(0, gradient) × assignedFactor(assigned-data
 * average), unless penalised or under the noise floor. Missing, invalid, copied or out of sync: 0,
 * sampled or not (none of these needs an evaluation); harmful (trial loss worse), invalid
 * (a non-finite trial among them) or copied: no share of this round's reward either (barred by an
 * earlier verdict: a share, held on probation, escrow.ts). Delivered, clean but not sampled: its
 * averages hold (the round's score is taken as its average), so it is neither paid for work
 * nobody checked nor penalised for not being checked.
 */
export function scoreRound(input: RoundInput): ScoredRow[] {
  const positive = [...input.trials.values()].filter(finiteTrial).map((t) => t.gradient).filter((g) => g > 0).sort((a, b) => a - b);
  // A random update of the right size can move the loss by a hair either way.
  const floor = positive.length ? NOISE_FLOOR * positive[Math.floor(positive.length / 2)] : 0;
  const rows: ScoredRow[] = input.members.map((address) => {
    const trial = input.trials.get(address);
    // A trial that came out non-finite (a loss of NaN or Inf) is an invalid update, scored 0.
    const t = trial && finiteTrial(trial) ? trial : undefined;
    const prev = input.previous(address) ?? { ema: 0, assignedEma: ASSIGNED_PRIOR };
    const missing = !input.delivered.has(address);
    const invalid = (input.invalid[address] ?? 0) > 0 || (trial !== undefined && !t);
    const synced = input.synced(address);
    const copied = input.copied.has(address);
    const penalised = missing || invalid || copied || !synced;
    const harmful = t !== undefined && harmfulTrial(t);
    const barred = input.barred?.(address) ?? false;
    const base = { address, gradient: t?.gradient ?? 0, assigned: t?.assigned ?? 0, copied, missing, invalid, synced, harmful, barred, share: 0, reward: 0 };
    if (!t && !penalised) return { ...base, score: prev.ema, ema: prev.ema, assignedEma: prev.assignedEma, sampled: false };
    const assignedEma = t ? ASSIGNED_KEEP * prev.assignedEma + (1 - ASSIGNED_KEEP) * (t.assigned > t.control ? 1 : -1) : prev.assignedEma;
    // The assigned-data evidence scales the gradient score: work on other data than one was
    // given earns less and less (a coin-flip average sinks to ~0), honest work keeps ~1.
    const score = penalised || t!.gradient < floor ? 0 : Math.max(0, t!.gradient) * assignedFactor(assignedEma);
    return { ...base, score, ema: EMA_KEEP * prev.ema + (1 - EMA_KEEP) * score, assignedEma, sampled: !!t };
  });
  // A round whose update was harmful, invalid or a copy pays nothing, whatever the average
  // earned before (a stale replayer lived on its first honest round's average: 12.6% of rewards).
  const paid = (r: ScoredRow) => !(r.harmful || r.invalid || r.copied);
  const total = rows.filter(paid).reduce((s, r) => s + r.ema, 0);
  for (const r of rows) {
    r.share = total > 0 && paid(r) ? r.ema / total : 0;
    r.reward = r.share * input.emission;
  }
  return rows;
}
