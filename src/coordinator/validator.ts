// The validator: scores the updates of a closed round, as Templar's Gauntlet does, on its own
// replica of the model (it applies each commit exactly as the contributors do, so it holds the
// same θ_start). All of them while the swarm is small, a keyed random sample of them when it
// is large (scoring.ts; the unsampled keep their averages). Per evaluated update, a trial
// step θ_start − 0.2·α·Δ_peer:
//   gradient score  relative loss improvement on a random held-out batch;
//   assigned data   whether the update helps the peer's own assigned batches (rebuilt from
//                   the deterministic sampler) more than training-split batches nobody was
//                   given — a moving average of ±1 (starting at +1), evidence that it trained
//                   on what it was given;
//   sync            its reported θ_start fingerprint equals the validator's;
//   penalties       top-k index overlap above 40% with an earlier delivery (copying, checked
//                   over every update, sampled or not, in time linear in their number:
//                   MinHash/LSH candidates, each confirmed exactly — copy-sketch.ts) or with
//                   any update of the last rounds (a stale replay — copy-history.ts), missing
//                   the deadline, an invalid update (a trial loss that is not finite, a norm
//                   far over the round's or a tensor far under the run's recent helpful ones
//                   among them: scoring.ts), being out of sync: the round's score is 0.
// An update whose trial makes the loss worse (harmful), invalid or copied bars its sender:
// the coordinator's commits leave it out until an evaluation clears it (scoring.ts barredAfter),
// and not before its term has run: 1 round, doubling with each offence (bar-terms.ts).
// The bars and the copy history's sketches are kept in the ledger with the round's rows, so a
// restart forgets neither (Ledger.recordRound; the engine gets its sketches back first).
// round score = max(0, gradient score) × assignedFactor(assigned-data average), unless
// penalised or under a tenth of the round's median gradient score (noise). The factor starts
// at 1 and falls only when the peer keeps failing the check (scoring.ts).
// Round scores → moving average → shares among the round's members → each round pays
// emissionPerEpoch / epochRounds by share, held in escrow for rewardEscrowRounds rounds
// (escrow.ts: what forfeits it, barred rounds on probation); the ledger keeps it all.
// What it evaluates: every committed update (they are what replicas apply) and its secret
// sample of all delivered (evaluationOrder); the committed arrive with their payloads, the
// others are read from the update store one at a time (a StoredPayloads reader), so nothing
// holds all N. The copy check still sketches every delivered update, one at a time.
// Two halves on two threads: Validator.evaluate does the GPU work where the device is (a
// worker thread in the coordinator: validator-thread.ts), recordScores the bookkeeping on the
// coordinator's thread, the ledger's one writer.
import type { Gpu } from '../gpu/gpu.ts';
import { ModelReplica } from '../round/replica.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { SparseTensor } from '../sparseloco/selection.ts';
import { UpdateError, decodeUpdate } from '../sparseloco/wire.ts';
import { configHash } from '../model/identity.ts';
import { sampleBatch } from '../train/sampler.ts';
import type { Ledger, Standing, StoredSketch } from './ledger.ts';
import { NORM_REFERENCE_ROUNDS, OVERSIZE_FACTOR, UNDERSIZE_FACTOR, assignedFactor, copySketchForRound, findCopies, finiteTrial, normReference, oversizedUpdates, rankForRound, referenceSenders, sampleForRound, samplingOptions, scoreRound, undersizedUpdates, type SamplingOptions, type ScoredRow, type Trial } from './scoring.ts';
import { barVerdicts } from './bar-terms.ts';
import { escrowVerdict } from './escrow.ts';
import { CopyHistory, HISTORY_ROUNDS, type HistorySketches, type RestoredHistory } from './copy-history.ts';
import type { ScoringTiming } from './validator-queue.ts';

export { COPY_OVERLAP, NOISE_FLOOR, indexOverlap } from './scoring.ts';

export const VALIDATOR_ADDRESS = 'validator';
export const TRIAL_STEP = 0.2;
/** Batches per evaluation set (random, control, each peer's assigned). */
export const EVAL_BATCHES = 4;

export interface ClosedRound {
  round: number;
  members: string[];
  /** The committed updates (what replicas apply), in commit order (by sender), with when each reached the coordinator. */
  included: { sender: string; payload: Uint8Array; deliveredAt: number }[];
  /** The other updates delivered, sorted by sender: their payloads are read from the store when needed, one at a time. */
  others: { sender: string; deliveredAt: number }[];
  missing: string[];
  /** Invalid updates refused this round, by sender. */
  invalid: Record<string, number>;
  /** θ_start(round) fingerprints the members reported when they synced. */
  reportedHashes: Record<string, string>;
  /** When the round started (the validator's queue paces its first round by the round's duration). */
  startedAt?: number;
  /** The commit's clip floor (aggregate.ts), applied with its payloads as every replica does. */
  clipFloor?: number[];
}

/**
 * One member's line in the log. Three numbers that differ on purpose, each named: this
 * round's score, the moving average of scores that pays, and the share that average is of
 * the round's total (so "round score 0" beside "share 27%" reads as one bad round, not a bug).
 */
export function describeRow(r: ScoredRow, t: Trial | undefined): string {
  const flags = [r.copied && 'COPY', r.missing && 'MISSING', r.invalid && 'INVALID', r.harmful && 'HARMFUL', !r.synced && 'UNSYNCED', r.barred && 'BARRED'].filter(Boolean).join(' ');
  const check = t
    ? `gradient ${r.gradient.toFixed(4)}, assigned ${r.assigned.toFixed(4)} vs control ${t.control.toFixed(4)} (assigned avg ${r.assignedEma.toFixed(2)}, factor ${assignedFactor(r.assignedEma).toFixed(2)})`
    : r.missing ? 'no update' : flags ? 'not evaluated' : 'not sampled (averages held)';
  return `${r.address.slice(0, 8)} ${check}${flags ? ` ${flags}` : ''}: round score ${r.score.toFixed(4)}, average ${r.ema.toFixed(4)}, share ${(100 * r.share).toFixed(1)}%`;
}

/** Sorted flat indices of each tensor of an update, for overlap. */
function indexSets(tensors: SparseTensor[]): Uint32Array[] {
  return tensors.map((t) => Uint32Array.from(t.indices).sort());
}

/** How many of `count` delivered updates the configuration evaluates (sampleForRound's size). */
export function configuredSample(count: number, s: Pick<SamplingOptions, 'scoreAllUpTo' | 'sampleSize'>): number {
  return count <= s.scoreAllUpTo ? count : Math.min(s.sampleSize, count);
}

/** Reads a stored update's payload (the coordinator's update store), or null when it is not stored. */
export type StoredPayloads = (round: number, sender: string) => Uint8Array | null;

/**
 * The updates a round's evaluation covers, in the order a paced round cuts: the committed
 * (in the secret order), then the rest of the secret sample of all delivered (same order).
 */
export function evaluationOrder(c: Pick<ClosedRound, 'round' | 'included' | 'others'>, s: SamplingOptions): string[] {
  const committed = rankForRound(c.included.map((u) => u.sender), c.round, s.key);
  const taken = new Set(committed);
  const sample = [...sampleForRound([...c.included, ...c.others].map((u) => u.sender), c.round, s)].filter((x) => !taken.has(x));
  return [...committed, ...rankForRound(sample, c.round, s.key)];
}

/** What the GPU side of scoring found in a round: the bookkeeping (recordScores) turns it into rows. */
export interface RoundEvaluation {
  round: number;
  /** The evaluated updates' trials, by sender. */
  trials: [string, Trial][];
  copied: string[];
  /** Senders whose update did not decode (the coordinator checks only the frame): penalised as invalid. */
  undecodable: string[];
  /** The validator's θ_start(round) fingerprint. */
  weightsHash: string;
  timing: ScoringTiming;
  /** The round's copy-history sketches, for the ledger (absent: the engine keeps no history). */
  sketches?: HistorySketches;
  /** Each decoded update's per-tensor L2 norms (the undersize check; absent: not measured). */
  norms?: [string, number[]][];
}

/** A replica checkpoint: θ_start of `round`, encoded. */
export interface StartWeights {
  round: number;
  weights: Uint8Array;
}

/**
 * What scores rounds: a Validator on this thread, or one in a worker thread
 * (validator-thread.ts) so that scoring never holds the coordinator's event loop.
 */
export interface ValidatorEngine {
  /** The round whose θ_start the replica holds; −1 before any. */
  readonly round: number;
  warmUp(): Promise<number>;
  /** θ_start ← the checkpoint, or the seed (round 0) without one; the round it holds. */
  loadStart(checkpoint: StartWeights | null): Promise<number>;
  /** Applies the commit of the round held (its payloads in commit order, its clip floor): it then holds the next. */
  apply(round: number, payloads: Uint8Array[], clipFloor?: number[]): Promise<void>;
  /**
   * Evaluates `evaluate` of the round's updates (a prefix of evaluationOrder), checks all
   * delivered for copies, then applies the round's commit. The round must be the one held.
   * `budgetMs`: starts no trial that would not end within it (the first one's time guessed from
   * the base evaluations'; the rest of the prefix counted in timing.outOfTime and only checked
   * for copies).
   */
  evaluate(c: ClosedRound, evaluate: number, budgetMs?: number): Promise<RoundEvaluation>;
  /** Takes back the copy history's sketches of the last rounds (the ledger's, at a start), before any round is scored. */
  restoreCopyHistory(kept: (StoredSketch & { seed: number })[]): Promise<RestoredHistory>;
  encodeWeights(): Promise<Uint8Array>;
  /** The round of weights encodeWeights saved (rejects, naming `source`, when they are not this run's model's). */
  weightsRound(bytes: Uint8Array, source: string): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * Brings the engine to θ_start(round): from the checkpoint (or the seed), then the stored
 * commits. False, logged, when a commit in between is gone.
 */
export async function syncValidator(engine: ValidatorEngine, round: number, checkpoint: StartWeights | null, commitPayloads: (r: number) => Uint8Array[] | null | Promise<Uint8Array[] | null>, log: (line: string) => void, clipFloorOf: (r: number) => number[] | undefined = () => undefined): Promise<boolean> {
  for (let at = await engine.loadStart(checkpoint && checkpoint.round <= round ? checkpoint : null); at < round; at++) {
    const payloads = await commitPayloads(at);
    if (!payloads) {
      log(`validator: the commit of round ${at} is gone; scoring resumes after a checkpoint catches up`);
      return false;
    }
    await engine.apply(at, payloads, clipFloorOf(at));
  }
  return true;
}

/**
 * The bookkeeping of a scored round, on the thread that owns the ledger (its one writer):
 * rows from the evaluation, penalties and previous averages, recorded, logged; each
 * member's standing. `closedRounds`: how many rounds the coordinator has closed by now.
 */
export function recordScores(c: ClosedRound, e: RoundEvaluation, o: { config: RunConfig; ledger: Ledger; closedRounds: number; log: (line: string) => void }): Map<string, Standing> {
  const { config, ledger } = o;
  const trials = new Map(e.trials);
  // A tensor far under the run's recent helpful norms would shrink the other update of a two-update commit: invalid.
  const undersized = undersizedUpdates(new Map(e.norms ?? []), normReference(ledger.helpfulNorms()));
  for (const s of undersized) o.log(`validator: round ${c.round}: the update of ${s} has a tensor under 1/${UNDERSIZE_FACTOR} of the run's recent norm: invalid`);
  const rows = scoreRound({
    members: c.members,
    delivered: new Set([...c.included, ...c.others].map((u) => u.sender)),
    trials,
    copied: new Set(e.copied),
    // Refused at the coordinator, or (its body) by the validator's decode.
    invalid: [...e.undecodable, ...undersized].reduce((n, s) => ({ ...n, [s]: (n[s] ?? 0) + 1 }), { ...c.invalid }),
    synced: (address) => c.reportedHashes[address] === e.weightsHash,
    previous: (address) => ledger.averages(address),
    emission: config.emissionPerEpoch / config.epochRounds,
    // The bars of earlier verdicts (this round's are recorded below): a barred round's reward is held on probation.
    barred: (address) => ledger.bar(address) !== null,
  });
  const epoch = Math.floor(c.round / config.epochRounds);
  // A verdict bars (for a term that doubles with each offence) or, once the term has run, lifts a bar.
  const { bars, offences } = barVerdicts(rows, c.round, (address) => ledger.offenceRecord(address));
  const sketches = e.sketches && { seed: e.sketches.seed, entries: e.sketches.entries, keepFrom: c.round + 1 - HISTORY_ROUNDS };
  // The reference is what evaluated updates that helped measured (a held average is no evidence; a tiny update helps too little).
  const helpful = referenceSenders(rows);
  const norms = e.norms && { entries: e.norms.filter(([s]) => helpful.has(s)), keepFrom: c.round + 1 - NORM_REFERENCE_ROUNDS };
  ledger.recordRound(c.round, epoch, rows, { bars, offences, sketches, norms, escrow: escrowVerdict(rows, config.rewardEscrowRounds) });
  if (trials.size < c.included.length) o.log(`validator: round ${c.round} evaluated a sample of ${trials.size} of ${c.included.length} updates`);
  for (const r of rows) o.log(`validator: round ${c.round} ${describeRow(r, trials.get(r.address))}`);
  const standings = new Map<string, Standing>();
  const pending = Math.max(0, o.closedRounds - 1 - c.round);
  // The bar as the ledger now has it (this round's verdict, or the last one), so a member always hears whether it is barred.
  for (const r of rows) standings.set(r.address, { ...ledger.standing(r.address, epoch, pending)!, barred: ledger.bar(r.address) !== null });
  return standings;
}

/** The validator's replica and its GPU work, on the thread that holds its device. */
export class Validator implements ValidatorEngine {
  private readonly replica: ModelReplica;
  private readonly sampling: SamplingOptions;
  /** The round whose θ_start the validator's replica holds; −1 before any. */
  private held = -1;
  /** Sketches of the last rounds' updates, for the copy check across rounds. */
  private readonly history: CopyHistory;

  constructor(
    private readonly config: RunConfig,
    gpu: Gpu,
    private readonly train: ArrayLike<number>,
    private readonly valid: ArrayLike<number>,
    private readonly log: (line: string) => void,
    sampling: Partial<SamplingOptions> = {},
    /** Where the uncommitted updates are read from (none: only the committed are evaluated and checked for copies). */
    private readonly stored: StoredPayloads = () => null,
  ) {
    this.sampling = samplingOptions(sampling);
    this.history = new CopyHistory(this.sampling.key);
    this.replica = new ModelReplica(gpu, config, train, VALIDATOR_ADDRESS);
  }

  get round(): number {
    return this.held;
  }

  /** Compiles the kernels scoring uses (forward passes, the outer step) without blocking the event loop. */
  warmUp(): Promise<number> {
    return this.replica.warmUp({ train: false });
  }

  async loadStart(checkpoint: StartWeights | null): Promise<number> {
    this.held = -1;
    if (!checkpoint) {
      this.replica.initializeFromSeed();
      return (this.held = 0);
    }
    const { round, weights } = this.replica.decodeWeights(checkpoint.weights, 'the coordinator checkpoint');
    this.replica.loadStart(weights);
    return (this.held = round);
  }

  async apply(round: number, payloads: Uint8Array[], clipFloor?: number[]): Promise<void> {
    if (this.held !== round) throw new Error(`validator holds round ${this.held}, asked to apply the commit of round ${round}`);
    this.replica.apply(payloads, round, clipFloor);
    this.held = round + 1;
  }

  async evaluate(c: ClosedRound, evaluate: number, budgetMs = Infinity): Promise<RoundEvaluation> {
    if (this.held !== c.round) throw new Error(`validator holds round ${this.held}, asked to score round ${c.round}`);
    const started = performance.now();
    let updatesMs = 0;
    const { config } = this;
    const shape = { B: config.batch, T: config.seq };
    // The peer's last few inner steps (the batches its update most reflects), and as many
    // random held-out ones; at most EVAL_BATCHES each, so validating stays cheaper than training.
    const H = config.innerSteps;
    const steps = Array.from({ length: Math.min(H, EVAL_BATCHES) }, (_, i) => H - 1 - i);
    const random = steps.map((step) => sampleBatch(this.valid, shape, { runSeed: config.seed ^ 0x5a17, round: c.round, contributor: VALIDATOR_ADDRESS, step }));
    // The control for the assigned-data check: training-split batches nobody was given, so
    // the two compare like with like (held-out text is not distributed like the training split).
    const control = steps.map((step) => sampleBatch(this.train, shape, { runSeed: config.seed, round: c.round, contributor: `${VALIDATOR_ADDRESS}-control`, step }));
    this.replica.discardRound();
    // A paced round evaluates fewer: the same secret order, cut shorter (by the plan, then by the budget).
    const order = evaluationOrder(c, this.sampling).slice(0, evaluate);
    const sampled = new Set(order);
    const base = sampled.size > 0 ? await this.replica.evaluate(random) : NaN;
    const baseControl = sampled.size > 0 ? await this.replica.evaluate(control) : NaN;
    const weightsHash = await this.replica.weightsHash();
    const trials: [string, Trial][] = [];
    const updates: { sender: string; indices: Uint32Array[]; at: number }[] = [];
    /** Each decoded update's per-tensor L2 norms, for the oversize and undersize checks. */
    const norms = new Map<string, number[]>();
    const normOf = (tensors: SparseTensor[]) => tensors.map((t) => Math.sqrt(t.values.reduce((m, v) => m + v * v, 0)));
    // The committed are in hand; the others are read one at a time and let go after.
    const rank = new Map(order.map((s, i) => [s, i]));
    const all = [...c.included, ...c.others.map((o) => ({ ...o, payload: null as Uint8Array | null }))]
      .sort((a, b) => (rank.get(a.sender) ?? Infinity) - (rank.get(b.sender) ?? Infinity));
    // What comes after the updates (the copy check, the commit) is assumed to cost what came before them.
    const reserveMs = performance.now() - started;
    let outOfTime = 0;
    let unread = 0;
    const undecodable: string[] = [];
    /** The update's tensors, or null (counted) when its body does not decode. */
    const decoded = (sender: string, decode: () => SparseTensor[]): SparseTensor[] | null => {
      try {
        return decode();
      } catch (e) {
        if (!(e instanceof UpdateError)) throw e;
        undecodable.push(sender);
        this.log(`validator: round ${c.round}: the update of ${sender} does not decode (${e.message})`);
        return null;
      }
    };
    for (const entry of all) {
      const u = { ...entry, payload: entry.payload ?? this.stored(c.round, entry.sender) };
      if (!u.payload) {
        unread++;
        continue;
      }
      // Before the first trial its time is guessed from the base's: four evaluations of the same batches where the base ran two.
      const trialMs = trials.length > 0 ? updatesMs / trials.length : 2 * reserveMs;
      if (sampled.has(u.sender) && performance.now() - started + trialMs + reserveMs > budgetMs) {
        sampled.delete(u.sender);
        outOfTime++;
      }
      if (!sampled.has(u.sender)) {
        // Not evaluated this round, but still checked for copying (decoding is cheap).
        const tensors = decoded(u.sender, () => this.decode(u.payload!, c.round));
        if (tensors) updates.push({ sender: u.sender, indices: indexSets(tensors), at: u.deliveredAt });
        if (tensors) norms.set(u.sender, normOf(tensors));
        continue;
      }
      const from = performance.now();
      // Exactly the batches this peer was given this round (the sampler is deterministic).
      const assigned = steps.map((step) => sampleBatch(this.train, shape, { runSeed: config.seed, round: c.round, contributor: u.sender, step }));
      this.replica.discardRound();
      const baseAssigned = await this.replica.evaluate(assigned);
      const tensors = decoded(u.sender, () => this.replica.tryUpdate(u.payload!, c.round, TRIAL_STEP));
      if (!tensors) continue;
      norms.set(u.sender, normOf(tensors));
      const after = await this.replica.evaluate(random);
      const afterAssigned = await this.replica.evaluate(assigned);
      const afterControl = await this.replica.evaluate(control);
      const trial = { gradient: (base - after) / base, assigned: (baseAssigned - afterAssigned) / baseAssigned, control: (baseControl - afterControl) / baseControl };
      if (!finiteTrial(trial)) {
        // Decodes, but its trial step leaves a loss that is not finite: invalid, scored 0.
        undecodable.push(u.sender);
        this.log(`validator: round ${c.round}: the update of ${u.sender} makes the loss ${after} (not finite): invalid`);
        continue;
      }
      trials.push([u.sender, trial]);
      updates.push({ sender: u.sender, indices: indexSets(tensors), at: u.deliveredAt });
      updatesMs += performance.now() - from;
    }
    this.replica.discardRound();
    for (const sender of oversizedUpdates(new Map([...norms].map(([s, n]) => [s, Math.sqrt(n.reduce((m, x) => m + x * x, 0))])))) {
      undecodable.push(sender); // invalid: scored 0, barred
      this.log(`validator: round ${c.round}: the update of ${sender} is over ${OVERSIZE_FACTOR}× the round's median norm: invalid`);
    }
    if (unread > 0) this.log(`validator: round ${c.round}: ${unread} uncommitted update(s) no longer stored, not checked`);
    // The sketch's seed comes from the secret key, so nobody can shape a copy to slip past it.
    const copied = findCopies(updates, copySketchForRound(this.sampling.key, c.round));
    for (const [sender, earlier] of this.history.check(c.round, updates)) {
      copied.add(sender);
      this.log(`validator: round ${c.round}: the update of ${sender} repeats ${earlier.sender}'s of round ${earlier.round} (overlap ≈ ${earlier.overlap.toFixed(2)}): a copy`);
    }
    this.replica.apply(c.included.map((u) => u.payload), c.round, c.clipFloor);
    this.held = c.round + 1;
    const totalMs = performance.now() - started;
    const timing = { fixedMs: totalMs - updatesMs, perUpdateMs: trials.length ? updatesMs / trials.length : 0, evaluated: trials.length, outOfTime };
    return { round: c.round, trials, copied: [...copied], undecodable, weightsHash, timing, sketches: this.history.sketchesOf(c.round), norms: [...norms] };
  }

  async restoreCopyHistory(kept: (StoredSketch & { seed: number })[]): Promise<RestoredHistory> {
    return this.history.restore(kept);
  }

  /** θ_start of the round held, as a checkpoint (saved at a stop that leaves rounds to score). */
  async encodeWeights(): Promise<Uint8Array> {
    if (this.held < 0) throw new Error('the validator holds no round to save');
    return this.replica.encodeWeights(this.held);
  }

  async weightsRound(bytes: Uint8Array, source: string): Promise<number> {
    return this.replica.decodeWeights(bytes, source).round;
  }

  /** An update's tensors without applying it (what tryUpdate decodes). */
  private decode(payload: Uint8Array, round: number): SparseTensor[] {
    return decodeUpdate(payload, { configHash: configHash(this.replica.slice.cfg), round, layout: this.replica.layout, maxBytes: this.config.maxMessageBytes }).tensors;
  }

  async destroy(): Promise<void> {
    this.replica.destroy();
  }
}
