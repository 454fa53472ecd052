// A simulated contributor's update: a valid SparseLoCo encoding (the real encoder,
// src/sparseloco/wire.ts) of the preset's real layout and k, with random kept positions
// per chunk and random values, so it has the size a trained update of that preset has
// (random positions Rice-code like real ones: ~9.5 bits per kept value) and two peers'
// updates overlap by chance only (~k/4096 of their indices), never enough for the copy check.
import { chunkExtent, chunkGrid, keptInChunk, type ChunkGrid } from '../kernels/chunks.ts';
import { parameterLayout, preset } from '../model/config.ts';
import { configHash } from '../model/identity.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { encodeUpdate, type TensorSelection } from '../sparseloco/wire.ts';

/** Scale of the random kept values (an update's values are small; any finite value is valid). */
const VALUE_SCALE = 0.02;

/** A small seeded generator (mulberry32): each (peer, round) gets its own stream. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface TensorPlan {
  name: string;
  grid: ChunkGrid;
  kept: number;
  /** Per chunk: its rows and columns (edge chunks are smaller). */
  extents: { rows: number; cols: number; kept: number }[];
}

/** The layout of a run's model, with each chunk's extent, computed once per run. */
export class UpdateGenerator {
  private readonly plan: TensorPlan[];
  private readonly hash: number;
  private readonly k: number;
  /** Floyd's algorithm marks: stamp[p] === mark ⇔ position p taken in the current chunk. */
  private readonly stamp = new Uint32Array(4096);
  private mark = 0;

  constructor(config: RunConfig) {
    const cfg = preset(config.model);
    this.k = config.sparseloco.k;
    this.hash = configHash(cfg);
    this.plan = parameterLayout(cfg).map((p) => {
      const grid = chunkGrid(p.shape);
      const extents = Array.from({ length: grid.count }, (_, c) => ({ ...chunkExtent(grid, c), kept: keptInChunk(grid, c, this.k) }));
      return { name: p.name, grid, kept: extents.reduce((n, e) => n + e.kept, 0), extents };
    });
  }

  /** The encoded update of `seed`'s peer for `round` (the same seed and round give the same bytes). */
  update(round: number, seed: number): Uint8Array {
    const random = seededRandom((seed * 0x9e3779b1) ^ (round * 0x85ebca77));
    const tensors: TensorSelection[] = this.plan.map((t) => {
      const local = new Uint16Array(t.kept);
      const values = new Float32Array(t.kept);
      let at = 0;
      for (const e of t.extents) at = this.pickChunk(e, t.grid.blockCols, local, at, random);
      for (let i = 0; i < values.length; i++) values[i] = (random() - 0.5) * VALUE_SCALE;
      return { name: t.name, grid: t.grid, k: this.k, local, values };
    });
    return encodeUpdate({ configHash: this.hash, round, k: this.k, tensors });
  }

  /** e.kept distinct positions of the chunk (Floyd's algorithm), ascending, as local indices. */
  private pickChunk(e: { rows: number; cols: number; kept: number }, blockCols: number, local: Uint16Array, at: number, random: () => number): number {
    const size = e.rows * e.cols;
    const mark = (this.mark = (this.mark + 1) >>> 0 || 1);
    const start = at;
    for (let j = size - e.kept; j < size; j++) {
      const t = Math.floor(random() * (j + 1));
      const p = this.stamp[t] === mark ? j : t;
      this.stamp[p] = mark;
      local[at++] = p; // a position for now; made a local index below
    }
    local.subarray(start, at).sort();
    for (let i = start; i < at; i++) local[i] = Math.floor(local[i] / e.cols) * blockCols + (local[i] % e.cols);
    return at;
  }
}
