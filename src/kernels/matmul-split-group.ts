// Split-K reductions of several matmuls in one dispatch. A split matmul (matmul-core.ts)
// writes its partial sums to scratch and adds them up in a second dispatch; a training step
// at `small` has 20 of those second dispatches, one per split matmul. Given a SplitKGroup,
// matmul puts its partials into the group's scratch arena and leaves the reduction to
// finish(), which reduces every matmul recorded since (one dispatch per output buffer:
// shaders/matmul_reduce.wgsl, reduce_segments). Each element is summed exactly as the
// single reduction sums it, so results are the same bits either way.
//
// The group's arena is sized by its owner from the shapes it will multiply
// (matmulSplitElements, summed) and kept for the owner's life: the same bytes the separate
// scratch buffers of one pass held in the pool before (pooled buffers are reused only after
// the submit, so those were all distinct too). A matmul that finds no room left reduces on
// its own, as without a group.
//
// Contract: a grouped matmul's C holds its result only after finish(); nothing may read it
// before. Two grouped matmuls writing overlapping C (e.g. accumulating twice into one
// gradient) stay in order: the group reduces what it holds before adding the second.
import reduceCode from '../../shaders/matmul_reduce.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import { Tensor } from '../gpu/tensor.ts';
import { ARENA_ALIGN } from '../gpu/arena.ts';
import { ceilDiv, grid } from './common.ts';

const REDUCE = { name: 'matmul_reduce', code: reduceCode };
const REDUCE_WORKGROUP = 256;
/** Partial slices start on binding-offset boundaries (each is bound as a matmul's C). */
const ALIGN_ELEMENTS = ARENA_ALIGN / 4;
/** u32 words per segment in the table (three vec4s: see reduce_segments). */
const WORDS_PER_SEGMENT = 12;

/** One grouped matmul's reduction: what reduce would have been given. */
export interface SplitSegment {
  /** Its partial slices (a view into the arena). */
  partials: Tensor;
  c: Tensor;
  M: number;
  N: number;
  batch: number;
  splits: number;
  strideC: number;
  alpha: number;
  beta: number;
}

/** Arena elements one split matmul of `elements` partial sums takes (its slice starts aligned). */
export const splitKSlot = (elements: number): number => ceilDiv(elements, ALIGN_ELEMENTS) * ALIGN_ELEMENTS;

export class SplitKGroup {
  private arena: Tensor | null = null;
  /** Elements of the arena handed out this pass. */
  private used = 0;
  private readonly capacity: number;
  private readonly pending: SplitSegment[] = [];
  /** Segment tables, by flush within a pass; rewritten only when their contents change. */
  private readonly tables: { tensor: Tensor; words: Uint32Array }[] = [];
  private flushes = 0;
  /** Reduce dispatches recorded (tests, benchmarks). */
  dispatches = 0;

  /** `capacity`: arena elements (Σ splitKSlot over the matmuls of one pass), at most one binding. */
  constructor(private readonly gpu: Gpu, readonly label: string, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`SplitKGroup capacity must be an integer ≥ 0, got ${capacity}`);
    this.capacity = Math.min(capacity, Math.floor(gpu.maxBindingBytes / 4 / ALIGN_ELEMENTS) * ALIGN_ELEMENTS);
  }

  /** Bytes of the arena (allocated on first use, kept until destroy). */
  get bytes(): number {
    return 4 * this.capacity;
  }

  /** Room for `elements` partial sums, or null when the arena has none left (the caller then reduces on its own). */
  reserve(elements: number): Tensor | null {
    const size = splitKSlot(elements);
    if (this.used + size > this.capacity) return null;
    this.arena ??= this.gpu.tensor([this.capacity], 'f32', this.label);
    const view = new Tensor(this.gpu, this.arena.buffer, [elements], 'f32', `${this.label} slice`, this.arena.offset + this.used * 4, true);
    this.used += size;
    return view;
  }

  /**
   * Before a matmul that found no room reduces on its own into `c`: the queued reductions
   * into an overlapping C are recorded first, so they keep their order.
   */
  beforeOwnReduce(c: Tensor, extentElements: number): void {
    const probe = { c, batch: 1, strideC: 0, M: 1, N: extentElements } as SplitSegment;
    if (this.pending.some((p) => overlaps(p, probe))) this.flush();
  }

  /** Queues a reserved matmul's reduction (after its matmul was recorded). */
  add(seg: SplitSegment): void {
    if (this.pending.some((p) => overlaps(p, seg))) this.flush();
    this.pending.push(seg);
  }

  /** Records the reductions of every grouped matmul; their C hold the results afterwards. */
  finish(): void {
    this.flush();
    this.used = 0;
    this.flushes = 0;
  }

  destroy(): void {
    this.arena?.release();
    this.arena = null;
    for (const t of this.tables) t.tensor.release();
    this.tables.length = 0;
  }

  private flush(): void {
    const byBuffer = new Map<GPUBuffer, SplitSegment[]>();
    for (const s of this.pending) byBuffer.set(s.c.buffer, [...(byBuffer.get(s.c.buffer) ?? []), s]);
    this.pending.length = 0;
    for (const segs of byBuffer.values()) this.reduce(segs);
  }

  private reduce(segs: SplitSegment[]): void {
    const arena = segs[0].partials.buffer;
    const arenaBase = Math.min(...segs.map((s) => s.partials.offset));
    const base = Math.floor(Math.min(...segs.map((s) => s.c.offset)) / ARENA_ALIGN) * ARENA_ALIGN;
    const end = Math.max(...segs.map((s) => s.c.offset + 4 * ((s.batch - 1) * s.strideC + s.M * s.N)));
    const words = new Uint32Array(segs.length * WORDS_PER_SEGMENT);
    const floats = new Float32Array(words.buffer);
    let workgroups = 0;
    segs.forEach((s, i) => {
      const w = i * WORDS_PER_SEGMENT;
      words.set([(s.partials.offset - arenaBase) / 4, (s.c.offset - base) / 4, s.M * s.N, workgroups, s.batch, s.splits, s.strideC], w);
      floats[w + 8] = s.alpha;
      floats[w + 9] = s.beta;
      workgroups += ceilDiv(s.batch * s.M * s.N, REDUCE_WORKGROUP);
    });
    const table = this.table(words);
    const partialsEnd = Math.max(...segs.map((s) => s.partials.offset + s.partials.byteLength));
    const partials = new Tensor(this.gpu, arena, [(partialsEnd - arenaBase) / 4], 'f32', `${this.label} (reduced)`, arenaBase, true);
    const out = new Tensor(this.gpu, segs[0].c.buffer, [(end - base) / 4], 'f32', `${this.label} outputs`, base, true);
    const params = new Params().u32(segs.length).u32(workgroups);
    this.gpu.dispatch(this.gpu.pipeline(REDUCE, 'reduce_segments'), params, [table, partials, out], grid(this.gpu, workgroups));
    this.dispatches++;
  }

  /** This flush's segment table, uploaded only when it differs from the last pass's. */
  private table(words: Uint32Array): Tensor {
    const slot = this.flushes++;
    const have = this.tables[slot];
    if (have && have.words.length === words.length && have.words.every((v, i) => v === words[i])) return have.tensor;
    have?.tensor.release();
    const tensor = this.gpu.tensor([words.length], 'u32', `${this.label} segments`, words);
    this.tables[slot] = { tensor, words };
    return tensor;
  }
}

function overlaps(a: SplitSegment, b: SplitSegment): boolean {
  if (a.c.buffer !== b.c.buffer) return false;
  const extent = (s: SplitSegment) => [s.c.offset, s.c.offset + 4 * ((s.batch - 1) * s.strideC + s.M * s.N)];
  const [a0, a1] = extent(a);
  const [b0, b1] = extent(b);
  return a0 < b1 && b0 < a1;
}
