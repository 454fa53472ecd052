// The copy check across rounds: an update whose top-k indices overlap an update of an EARLIER
// round (the sender's own or anyone's) above COPY_OVERLAP is a copy — a stale update resent
// round after round, or last round's update of another peer passed off as this round's work.
// The check within a round (scoring.ts findCopies) cannot see these: it compares only the
// round's own deliveries.
//
// What is kept is small: a MinHash sketch (copy-sketch.ts, 1,320 slots) of each update of the
// last HISTORY_ROUNDS rounds, not its indices (16M indices per update at the 1b preset). The
// overlap is estimated from the fraction of agreeing slots (an unbiased estimate of the
// Jaccard similarity, ±0.012 sd at the threshold's J = 0.25), so a replay (overlap ≈ 1) is
// flagged surely and an honest peer, whose top-k moves between rounds, is not. Candidates come
// from the sketches' band buckets, so a round costs O(N × bands), not N × history. The seed
// is derived from the validator's secret key (fixed across rounds, or no two rounds' sketches
// would compare), so nobody can cut a replay to miss the bands.
//
// The history outlives a restart: each scored round's sketches go to the ledger with its rows
// (RoundEvaluation.sketches → Ledger.recordRound, which keeps the last HISTORY_ROUNDS rounds:
// at most that many rounds' delivered updates, 5.3 KB each), and a starting validator gets
// them back (restore) before it scores, so a replay of an update from before the restart is
// still recognised.
import { createHmac } from 'node:crypto';
import { COPY_SKETCH, agreeingSlots, bandBuckets, sketchIndexSets, type SketchParams } from './copy-sketch.ts';
import { COPY_OVERLAP } from './scoring.ts';

/** Rounds back an update is compared against: all the history keeps (in memory and in the ledger). */
export const HISTORY_ROUNDS = 4;

interface Sketched {
  round: number;
  sender: string;
  sketch: Uint32Array;
  elements: number;
}

/** A kept round's sketches, as the ledger stores them (seed: the hashes' seed they were made with). */
export interface HistorySketches {
  seed: number;
  entries: Sketched[];
}

/** How many sketches a restore took, and how many it could not use (another seed or size: another key or version). */
export interface RestoredHistory {
  restored: number;
  foreign: number;
}

/** Estimated |A ∩ B| / min(|A|, |B|) from two sketches' agreeing slots. */
export function estimatedOverlap(a: Uint32Array, b: Uint32Array, elementsA: number, elementsB: number): number {
  const jaccard = agreeingSlots(a, b) / a.length;
  const common = (jaccard * (elementsA + elementsB)) / (1 + jaccard);
  return common / Math.max(1, Math.min(elementsA, elementsB));
}

export class CopyHistory {
  private readonly params: SketchParams;
  private kept: Sketched[] = [];

  constructor(key: Uint8Array, readonly rounds = HISTORY_ROUNDS) {
    this.params = { ...COPY_SKETCH, seed: createHmac('sha256', key).update('copy-history').digest().readUInt32LE(0) };
  }

  /**
   * Takes back the sketches of earlier rounds (a restart: Ledger.copySketches), in place of
   * what it holds. Sketches hashed with another seed (the sampling key was replaced) or of
   * another size (another version's sketch) cannot be compared: left out and counted.
   */
  restore(kept: readonly (Sketched & { seed: number })[]): RestoredHistory {
    const slots = this.params.bands * this.params.rows;
    const usable = kept.filter((k) => k.seed === this.params.seed && k.sketch.length === slots && Number.isInteger(k.elements) && k.elements > 0);
    const newest = Math.max(...usable.map((k) => k.round));
    this.kept = usable.filter((k) => k.round > newest - this.rounds).map(({ round, sender, sketch, elements }) => ({ round, sender, sketch, elements }));
    return { restored: this.kept.length, foreign: kept.length - usable.length };
  }

  /** The sketches `check` kept of `round`, to be saved with the round's scores. */
  sketchesOf(round: number): HistorySketches {
    return { seed: this.params.seed, entries: this.kept.filter((k) => k.round === round) };
  }

  /**
   * The senders of `round` whose update overlaps one of an earlier round kept here; then keeps
   * this round's sketches and forgets rounds more than `rounds` back. Rounds must come in order.
   */
  check(round: number, updates: readonly { sender: string; indices: readonly Uint32Array[] }[]): Map<string, { round: number; sender: string; overlap: number }> {
    const earlier = this.kept.filter((k) => k.round < round && k.round >= round - this.rounds);
    const now: Sketched[] = [];
    for (const u of updates) {
      const sketch = sketchIndexSets(u.indices, this.params);
      if (sketch) now.push({ round, sender: u.sender, sketch, elements: u.indices.reduce((n, t) => n + t.length, 0) });
    }
    const all = [...earlier, ...now];
    const found = new Map<string, { round: number; sender: string; overlap: number }>();
    for (const bucket of bandBuckets(all.map((s) => s.sketch), this.params)) {
      for (const x of bucket) {
        if (x < earlier.length) continue; // only this round's updates are judged
        for (const y of bucket) {
          if (y >= earlier.length) continue;
          const a = all[x];
          const b = all[y];
          const overlap = estimatedOverlap(a.sketch, b.sketch, a.elements, b.elements);
          if (overlap > COPY_OVERLAP && overlap > (found.get(a.sender)?.overlap ?? 0)) found.set(a.sender, { round: b.round, sender: b.sender, overlap });
        }
      }
    }
    this.kept = [...earlier, ...now];
    return found;
  }
}
