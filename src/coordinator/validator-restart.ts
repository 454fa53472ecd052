// What the validator keeps in the coordinator's state folder so that a restart — after a stop
// or a crash (kill -9) — scores every closed round it had not scored, instead of losing them:
//   validator-weights.bin   its replica's θ_start of a round at most `every` rounds (the run's
//                           checkpointEvery) before the first round it has not scored: saved
//                           after a scored round once the saved one is that old, and at a stop;
//   validator-restart.json  that round, and what its queue measured (ValidatorQueue.snapshot),
//                           so the backlog is paced from the first round scored after the start.
// The coordinator's state keeps every commit from the saved weights' round on (rebuildFrom:
// ScoringProgress → CoordinatorStore.save), so the replica is rebuilt from those weights (or a
// newer checkpoint, or the seed) and the commits since, whatever the run's own checkpoint
// has moved on to meanwhile. Until weights are saved the seed is the base: nothing is pruned.
// The weights file is written before the JSON that names its round, so a crash between the
// two leaves the JSON naming an older round: more commits kept, never fewer.
// The validator's verdicts (its bars, the copy history's sketches) are in the ledger, kept
// with each scored round's rows; restoreVerdicts gives them back at a start.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicAsync } from '../node/files.ts';
import { parsePacing, type PacingSnapshot } from './validator-queue.ts';
import type { StartWeights, ValidatorEngine } from './validator.ts';
import type { Ledger } from './ledger.ts';

export const WEIGHTS_FILE = 'validator-weights.bin';
export const RESTART_FILE = 'validator-restart.json';

interface Saved {
  format: 1;
  /** The round of θ_start in WEIGHTS_FILE, null before one was saved. */
  weightsRound: number | null;
  pacing: PacingSnapshot | null;
}

export class ValidatorRestart {
  private weightsRound: number | null = null;
  private pacingNow: PacingSnapshot | null = null;
  readonly weightsFile: string;
  private readonly file: string;

  constructor(dir: string, private readonly log: (line: string) => void) {
    this.weightsFile = join(dir, WEIGHTS_FILE);
    this.file = join(dir, RESTART_FILE);
    if (!existsSync(this.file)) return;
    try {
      const s = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<Saved>;
      if (s.format !== 1) throw new Error(`format ${String(s.format)} is not 1`);
      const round = s.weightsRound;
      this.weightsRound = Number.isInteger(round) && (round as number) >= 0 && existsSync(this.weightsFile) ? (round as number) : null;
      this.pacingNow = parsePacing(s.pacing);
    } catch (e) {
      // Nothing is lost: the seed stands as the base (every commit kept) until weights are saved again.
      log(`validator: ${this.file} not used (${(e as Error).message}): pacing starts unmeasured and the next scored round saves the weights again`);
    }
  }

  /** What the last run of the validator measured (the queue starts from it), or null. */
  get pacing(): PacingSnapshot | null {
    return this.pacingNow;
  }

  /** The round of the saved weights, null when none are. */
  get savedRound(): number | null {
    return this.weightsRound;
  }

  /**
   * The oldest round whose commit a restart may replay: the saved weights' round, the seed's
   * (0) before any are saved; never after the first round not scored.
   */
  rebuildFrom(firstUnscored: number): number {
    return Math.min(firstUnscored, this.weightsRound ?? 0);
  }

  /** Whether θ_start of `held` should be saved now: none saved yet, or the saved ones `every` rounds old or more. */
  due(held: number, every: number): boolean {
    return held >= 0 && (this.weightsRound === null || held - this.weightsRound >= every);
  }

  /**
   * θ_start to rebuild `round` from: the saved weights or the run's checkpoint, the newer of
   * those not after it (the engine reads the weights' round); null: the seed.
   */
  async startFor(round: number, engine: Pick<ValidatorEngine, 'weightsRound'>, checkpoint: StartWeights | null): Promise<StartWeights | null> {
    let saved: StartWeights | null = null;
    if (existsSync(this.weightsFile)) {
      const weights = new Uint8Array(readFileSync(this.weightsFile));
      try {
        saved = { round: await engine.weightsRound(weights, this.weightsFile), weights };
      } catch (e) {
        this.log(`validator: ${this.weightsFile} not used: ${(e as Error).message}`);
      }
    }
    const usable = [saved, checkpoint].filter((c): c is StartWeights => c !== null && c.round <= round);
    return usable.sort((a, b) => b.round - a.round)[0] ?? null;
  }

  /** Saves θ_start of `round` (the replica's encoded weights), then the round it is. */
  async saveWeights(round: number, weights: Uint8Array): Promise<void> {
    await writeFileAtomicAsync(this.weightsFile, weights);
    this.weightsRound = round;
    this.write();
  }

  /** Keeps what the queue measured (after each scored round; a small file). */
  notePacing(p: PacingSnapshot | null): void {
    if (!p) return;
    this.pacingNow = p;
    this.write();
  }

  private write(): void {
    const s: Saved = { format: 1, weightsRound: this.weightsRound, pacing: this.pacingNow };
    writeFileAtomic(this.file, new TextEncoder().encode(`${JSON.stringify(s)}\n`));
  }
}

/** Barred senders named in the start's log line (the rest are counted). */
const BARS_NAMED = 5;

/**
 * What the validator decided before this start, back before it scores: the bars (the ledger's,
 * which gather-K reads directly) are said, the copy history's sketches handed to the engine.
 */
export async function restoreVerdicts(engine: Pick<ValidatorEngine, 'restoreCopyHistory'>, ledger: Ledger, log: (line: string) => void): Promise<void> {
  const bars = ledger.bars();
  const named = [...bars].slice(0, BARS_NAMED).map(([a, b]) => `${a} (since round ${b.since}: ${b.reason})`).join('; ');
  if (bars.size > 0) log(`validator: ${bars.size} sender(s) still barred from commits: ${named}${bars.size > BARS_NAMED ? '; …' : ''}`);
  const kept = ledger.copySketches();
  if (kept.length === 0) return;
  const r = await engine.restoreCopyHistory(kept);
  const rounds = [...new Set(kept.map((k) => k.round))];
  log(`validator: copy history restored from ${ledger.file}: ${r.restored} update sketch(es) of rounds ${rounds[0]}–${rounds.at(-1)}${r.foreign ? `; ${r.foreign} not usable (made with another sampling key or sketch size): replays of those updates go unrecognised` : ''}`);
}
