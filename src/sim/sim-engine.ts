// A SIMULATION validator engine (tessera simulate only): it implements the coordinator's
// ValidatorEngine so the real validator path runs around it — the bounded paced queue, the
// sample sizes, syncing from checkpoints and stored commits, recordScores into the real
// ledger, scores pushed to members — but it evaluates nothing. Its "replica" is the
// fingerprint chain of fingerprint.ts; evaluate() waits a modelled time per sampled update
// (a measured forward pass, given by the caller) and returns the same neutral trial for
// every sampled update, so every member scores alike and the ledger still moves.
import type { ClosedRound, RoundEvaluation, StartWeights, ValidatorEngine } from '../coordinator/validator.ts';
import type { Trial } from '../coordinator/scoring.ts';
import type { StoredSketch } from '../coordinator/ledger.ts';
import type { RestoredHistory } from '../coordinator/copy-history.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { decodeSimWeights, encodeSimWeights, genesisFingerprint, nextFingerprint, payloadHash } from './fingerprint.ts';

/** What every sampled update "scores": a small equal improvement, so shares are equal and nothing is noise. */
export const NEUTRAL_TRIAL: Readonly<Trial> = Object.freeze({ gradient: 0.01, assigned: 0.01, control: 0 });

export interface SimEngineTiming {
  /** Modelled time of one evaluated update (its trial step and four forward passes), ms. */
  perUpdateMs: number;
  /** Modelled fixed time per round (base losses, the commit's apply), ms. */
  fixedMs: number;
}

export class SimValidatorEngine implements ValidatorEngine {
  private held = -1;
  private fingerprint = '';
  /** θ_start fingerprints by round, for the report (the engine's view of each round's start). */
  readonly fingerprints = new Map<number, string>();
  /** Rounds evaluated and how many updates each evaluated. */
  readonly evaluated: { round: number; evaluated: number; at: number }[] = [];

  constructor(
    private readonly config: RunConfig,
    private readonly timing: SimEngineTiming,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
    private readonly now: () => number = () => performance.now(),
  ) {}

  get round(): number {
    return this.held;
  }

  async warmUp(): Promise<number> {
    return 0;
  }

  async loadStart(checkpoint: StartWeights | null): Promise<number> {
    if (!checkpoint) this.hold(0, genesisFingerprint(this.config));
    else {
      const w = decodeSimWeights(checkpoint.weights, 'the coordinator checkpoint');
      this.hold(w.round, w.fingerprint);
    }
    return this.held;
  }

  async apply(round: number, payloads: Uint8Array[]): Promise<void> {
    if (this.held !== round) throw new Error(`sim validator holds round ${this.held}, asked to apply the commit of round ${round}`);
    this.hold(round + 1, nextFingerprint(this.fingerprint, round, payloads.map(payloadHash)));
  }

  /** It checks nothing for copies (copied is always empty), so it keeps no copy history: every sketch is left unused. */
  async restoreCopyHistory(kept: (StoredSketch & { seed: number })[]): Promise<RestoredHistory> {
    return { restored: 0, foreign: kept.length };
  }

  async evaluate(c: ClosedRound, evaluate: number, budgetMs = Infinity): Promise<RoundEvaluation> {
    if (this.held !== c.round) throw new Error(`sim validator holds round ${this.held}, asked to score round ${c.round}`);
    const planned = Math.min(evaluate, c.included.length);
    const weightsHash = this.fingerprint;
    // Timed as the real engine times itself (a busy event loop makes the waits longer), and
    // kept to the budget as it does: only trials that end within it, the first guessed at twice the time before it.
    const started = this.now();
    await this.sleep(this.timing.fixedMs / 2);
    const reserveMs = this.now() - started;
    let count = 0;
    let updatesMs = 0;
    while (count < planned && this.now() - started + (count > 0 ? updatesMs / count : 2 * reserveMs) + reserveMs <= budgetMs) {
      const from = this.now();
      await this.sleep(this.timing.perUpdateMs);
      updatesMs += this.now() - from;
      count++;
    }
    await this.sleep(this.timing.fixedMs / 2);
    const totalMs = this.now() - started;
    // The first `count` in commit order stand for the keyed sample: which ones does not matter when all score alike.
    const trials = c.included.slice(0, count).map((u): [string, Trial] => [u.sender, { ...NEUTRAL_TRIAL }]);
    await this.apply(c.round, committedPayloads(c));
    this.evaluated.push({ round: c.round, evaluated: count, at: Date.now() });
    // Nothing decoded here: the peers' one real decode per committed update (sim-context.ts) would throw on a bad one.
    return { round: c.round, trials, copied: [], undecodable: [], weightsHash, timing: { fixedMs: totalMs - updatesMs, perUpdateMs: count ? updatesMs / count : 0, evaluated: count, outOfTime: planned - count } };
  }

  async encodeWeights(): Promise<Uint8Array> {
    if (this.held < 0) throw new Error('the sim validator holds no round to save');
    return encodeSimWeights(this.held, this.fingerprint);
  }

  async weightsRound(bytes: Uint8Array, source: string): Promise<number> {
    return decodeSimWeights(bytes, source).round;
  }

  async destroy(): Promise<void> {}

  private hold(round: number, fingerprint: string): void {
    this.held = round;
    this.fingerprint = fingerprint;
    this.fingerprints.set(round, fingerprint);
  }
}

/** The payloads a closed round's commit applies, in commit order. */
function committedPayloads(c: ClosedRound): Uint8Array[] {
  return c.included.map((u) => u.payload);
}
