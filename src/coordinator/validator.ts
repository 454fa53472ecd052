// The validator: scores every update of a closed round, as Templar's Gauntlet does, on its own
// replica of the model (it applies each commit exactly as the contributors do, so it holds the
// same θ_start). Per update, a trial step θ_start − 0.2·α·Δ_peer:
//   gradient score  relative loss improvement on a random held-out batch;
//   assigned data   whether the update helps the peer's own assigned batches (rebuilt from
//                   the deterministic sampler) more than training-split batches nobody was
//                   given — a moving average of ±1, proof that it trained on what it was given;
//   sync            its reported θ_start fingerprint equals the validator's;
//   penalties       top-k index overlap above 40% with an earlier delivery (copying), missing
//                   the deadline, an invalid update, being out of sync: the round's score is 0.
// round score = max(0, gradient score) × max(0, assigned-data average), unless penalised or
// under a tenth of the round's median gradient score (noise).
// Round scores → moving average → shares among the round's members → each round pays
// emissionPerEpoch / epochRounds by share; the ledger keeps it all.
import type { Gpu } from '../gpu/gpu.ts';
import { SwarmReplica } from '../net/replica.ts';
import type { RunConfig } from '../net/run-config.ts';
import type { SparseTensor } from '../sparseloco/selection.ts';
import { sampleBatch } from '../train/sampler.ts';
import type { Ledger, RoundScore, Standing } from './ledger.ts';

export const VALIDATOR_ADDRESS = 'validator';
export const TRIAL_STEP = 0.2;
export const COPY_OVERLAP = 0.4;
/** Fraction of the round's median positive gradient score below which an update scores 0. */
export const NOISE_FLOOR = 0.1;
/** Batches per evaluation set (random, control, each peer's assigned). */
export const EVAL_BATCHES = 4;
const EMA_KEEP = 0.9;
/** The assigned-data average moves faster: its ±1 signal is weak and it must settle in a few rounds. */
const ASSIGNED_KEEP = 0.8;

export interface ClosedRound {
  round: number;
  members: string[];
  /** In commit order (by sender), with when each reached the coordinator. */
  included: { sender: string; payload: Uint8Array; deliveredAt: number }[];
  missing: string[];
  /** Invalid updates refused this round, by sender. */
  invalid: Record<string, number>;
  /** θ_start(round) fingerprints the members reported when they synced. */
  reportedHashes: Record<string, string>;
}

/** Sorted flat indices of each tensor of an update, for overlap. */
function indexSets(tensors: SparseTensor[]): Uint32Array[] {
  return tensors.map((t) => Uint32Array.from(t.indices).sort());
}

/** |A ∩ B| / min(|A|, |B|) over all tensors. */
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

export class Validator {
  private readonly replica: SwarmReplica;
  /** The round whose θ_start the validator's replica holds; −1 when it could not sync. */
  private held = -1;

  constructor(
    private readonly config: RunConfig,
    gpu: Gpu,
    private readonly train: ArrayLike<number>,
    private readonly valid: ArrayLike<number>,
    private readonly ledger: Ledger,
    private readonly log: (line: string) => void,
  ) {
    this.replica = new SwarmReplica(gpu, config, train, VALIDATOR_ADDRESS);
  }

  get round(): number {
    return this.held;
  }

  /**
   * Brings the replica to θ_start(round): from the seed, or from a checkpoint of round c ≤
   * round, then the stored commits. False when the commits in between are gone.
   */
  sync(round: number, checkpoint: { round: number; weights: Uint8Array } | null, commitPayloads: (r: number) => Uint8Array[] | null): boolean {
    let at = 0;
    if (checkpoint && checkpoint.round <= round) {
      const { round: r, weights } = this.replica.decodeWeights(checkpoint.weights, 'the coordinator checkpoint');
      this.replica.loadStart(weights);
      at = r;
    } else this.replica.initializeFromSeed();
    for (; at < round; at++) {
      const payloads = commitPayloads(at);
      if (!payloads) {
        this.log(`validator: the commit of round ${at} is gone; scoring resumes after a checkpoint catches up`);
        this.held = -1;
        return false;
      }
      this.replica.apply(payloads, at);
    }
    this.held = round;
    return true;
  }

  /** Scores round `c.round` (which must be the round held), records it, then applies its commit. */
  async score(c: ClosedRound): Promise<Map<string, Standing>> {
    if (this.held !== c.round) throw new Error(`validator holds round ${this.held}, asked to score round ${c.round}`);
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
    const base = await this.replica.evaluate(random);
    const baseControl = await this.replica.evaluate(control);
    const ourHash = await this.replica.weightsHash();
    const trial = new Map<string, { gradient: number; assigned: number; control: number; indices: Uint32Array[]; at: number }>();
    for (const u of c.included) {
      // Exactly the batches this peer was given this round (the sampler is deterministic).
      const assigned = steps.map((step) => sampleBatch(this.train, shape, { runSeed: config.seed, round: c.round, contributor: u.sender, step }));
      this.replica.discardRound();
      const baseAssigned = await this.replica.evaluate(assigned);
      const tensors = this.replica.tryUpdate(u.payload, c.round, TRIAL_STEP);
      const after = await this.replica.evaluate(random);
      const afterAssigned = await this.replica.evaluate(assigned);
      const afterControl = await this.replica.evaluate(control);
      trial.set(u.sender, {
        gradient: (base - after) / base,
        assigned: (baseAssigned - afterAssigned) / baseAssigned,
        control: (baseControl - afterControl) / baseControl,
        indices: indexSets(tensors),
        at: u.deliveredAt,
      });
    }
    this.replica.discardRound();
    // Copying: of two updates sharing most of their indices, the later delivery is the copy.
    const copied = new Set<string>();
    const senders = [...trial.keys()];
    for (let i = 0; i < senders.length; i++) {
      for (let j = i + 1; j < senders.length; j++) {
        const a = trial.get(senders[i])!;
        const b = trial.get(senders[j])!;
        if (indexOverlap(a.indices, b.indices) <= COPY_OVERLAP) continue;
        if (a.at >= b.at) copied.add(senders[i]);
        if (b.at >= a.at) copied.add(senders[j]);
      }
    }
    // A noise floor: an update a tenth as useful as the round's typical one earns nothing (a
    // random update of the right size can move the loss by a hair either way).
    const positive = [...trial.values()].map((t) => t.gradient).filter((g) => g > 0).sort((a, b) => a - b);
    const floor = positive.length ? NOISE_FLOOR * positive[Math.floor(positive.length / 2)] : 0;
    const rows: (RoundScore & { ema: number; assignedEma: number; share: number; reward: number })[] = [];
    for (const address of c.members) {
      const t = trial.get(address);
      const prev = this.ledger.averages(address);
      const missing = !t;
      const invalid = (c.invalid[address] ?? 0) > 0;
      const synced = c.reportedHashes[address] === ourHash;
      const isCopy = copied.has(address);
      const assignedEma = t ? ASSIGNED_KEEP * prev.assignedEma + (1 - ASSIGNED_KEEP) * (t.assigned > t.control ? 1 : -1) : prev.assignedEma;
      // The assigned-data average gates the gradient score: work on other data than one was
      // given earns nothing (a coin-flip average hovers around 0), honest work a weight ≤ 1.
      const score = missing || invalid || isCopy || !synced || t!.gradient < floor ? 0 : Math.max(0, t!.gradient) * Math.max(0, assignedEma);
      rows.push({ address, gradient: t?.gradient ?? 0, assigned: t?.assigned ?? 0, copied: isCopy, missing, invalid, synced, score, ema: EMA_KEEP * prev.ema + (1 - EMA_KEEP) * score, assignedEma, share: 0, reward: 0 });
    }
    const total = rows.reduce((s, r) => s + r.ema, 0);
    const perRound = config.emissionPerEpoch / config.epochRounds;
    for (const r of rows) {
      r.share = total > 0 ? r.ema / total : 0;
      r.reward = r.share * perRound;
    }
    const epoch = Math.floor(c.round / config.epochRounds);
    this.ledger.recordRound(c.round, epoch, rows);
    for (const r of rows) {
      this.log(`validator: round ${c.round} ${r.address.slice(0, 8)} gradient ${r.gradient.toFixed(4)} assigned ${r.assigned.toFixed(4)} vs ${(trial.get(r.address)?.control ?? 0).toFixed(4)} (avg ${r.assignedEma.toFixed(2)})${r.copied ? ' COPY' : ''}${r.missing ? ' MISSING' : ''}${r.invalid ? ' INVALID' : ''}${r.synced ? '' : ' UNSYNCED'} score ${r.score.toFixed(4)} share ${(100 * r.share).toFixed(1)}%`);
    }
    this.replica.apply(c.included.map((u) => u.payload), c.round);
    this.held = c.round + 1;
    const standings = new Map<string, Standing>();
    for (const r of rows) standings.set(r.address, this.ledger.standing(r.address, epoch)!);
    return standings;
  }

  destroy(): void {
    this.replica.destroy();
  }
}
