// Many tensors in a few buffers: a model's parameters (or gradients, or optimizer moments) as
// views into flat chunks, so whole-model passes (AdamW, the gradient norm) are a few dispatches
// over contiguous spans instead of one per tensor. Tensors of one `group` (e.g. with or
// without weight decay) are placed together; each chunk holds at most the device's largest
// binding. Every view starts on a 256-byte boundary and the gaps are zero (new buffers are
// zero-filled and kernels write only their views), so a span's padding adds nothing to a
// norm and AdamW leaves it zero.
import { KernelInputError } from './errors.ts';
import type { Gpu } from './gpu.ts';
import { Tensor, shapeSize } from './tensor.ts';

/** View offsets are multiples of this (≥ every adapter's minStorageBufferOffsetAlignment). */
export const ARENA_ALIGN = 256;

export interface ArenaSpec {
  name: string;
  shape: readonly number[];
  /** Tensors of one group lie together; spans never mix groups. */
  group: number;
  /**
   * Consecutive specs with the same bundle go in one chunk (a new chunk starts before the
   * bundle if it would not fit), so kernels can treat them as one tensor (joinedView).
   */
  bundle?: string;
  /**
   * f32 elements kept zero after the tensor, inside its place (e.g. the head's rows past the
   * vocabulary up to a multiple of 64: a padded view for aligned matmuls). Kernels keep them
   * zero (a zero gradient there, so AdamW leaves them zero); spans include them.
   */
  reserve?: number;
}

export interface ArenaSpan {
  chunk: number;
  /** Byte offset and length in the chunk. */
  offset: number;
  bytes: number;
  group: number;
}

export interface ArenaPlan {
  chunkBytes: number[];
  places: Map<string, { chunk: number; offset: number }>;
  spans: ArenaSpan[];
}

const alignUp = (n: number) => Math.ceil(n / ARENA_ALIGN) * ARENA_ALIGN;

/** Where each f32 tensor goes: deterministic in (specs, maxChunkBytes), so several arenas of one layout line up. */
export function planArena(specs: readonly ArenaSpec[], maxChunkBytes: number): ArenaPlan {
  const order = specs.map((s, i) => ({ s, i })).sort((a, b) => a.s.group - b.s.group || a.i - b.i);
  const chunkBytes: number[] = [];
  const places = new Map<string, { chunk: number; offset: number }>();
  const spans: ArenaSpan[] = [];
  let chunk = -1;
  let used = maxChunkBytes; // forces the first chunk
  for (const [k, { s }] of order.entries()) {
    const bytes = 4 * (shapeSize(s.shape) + (s.reserve ?? 0));
    if (alignUp(bytes) > maxChunkBytes) {
      throw new KernelInputError('TensorArena', `${s.name} needs ${bytes} bytes in one buffer but this GPU allows at most ${maxChunkBytes}`);
    }
    let need = alignUp(bytes);
    if (s.bundle !== undefined && order[k - 1]?.s.bundle !== s.bundle) {
      for (let j = k + 1; j < order.length && order[j].s.bundle === s.bundle; j++) need += alignUp(4 * (shapeSize(order[j].s.shape) + (order[j].s.reserve ?? 0)));
      if (need > maxChunkBytes) need = alignUp(bytes); // cannot be kept together: placed as usual
    }
    if (used + need > maxChunkBytes) {
      chunk++;
      chunkBytes.push(0);
      used = 0;
    }
    places.set(s.name, { chunk, offset: used });
    const last = spans[spans.length - 1];
    if (last && last.chunk === chunk && last.group === s.group) last.bytes = used + bytes - last.offset;
    else spans.push({ chunk, offset: used, bytes, group: s.group });
    used += alignUp(bytes);
    chunkBytes[chunk] = used;
  }
  return { chunkBytes, places, spans };
}

/**
 * One view over tensors that lie back to back in one buffer (a bundle whose sizes are whole
 * multiples of ARENA_ALIGN), as `shape`; null when they do not (then use them one by one).
 */
export function joinedView(parts: readonly Tensor[], shape: readonly number[], label: string): Tensor | null {
  const first = parts[0];
  let end = first.offset;
  for (const t of parts) {
    if (!t.isView || t.buffer !== first.buffer || t.offset !== end || t.dtype !== first.dtype) return null;
    end += t.byteLength;
  }
  if (shapeSize(shape) * 4 !== end - first.offset || first.dtype !== 'f32') return null;
  return new Tensor(first.gpu, first.buffer, shape, 'f32', label, first.offset, true);
}

const owners = new WeakMap<Tensor, TensorArena>();

/** The arena a tensor is a view of, if any. */
export function arenaOf(t: Tensor): TensorArena | undefined {
  return owners.get(t);
}

/** The tensors of a plan as views into its chunks (zeroed), and its spans as flat f32 views. */
export class TensorArena {
  readonly tensors = new Map<string, Tensor>();
  /** Equal for arenas whose tensors and spans lie at the same places (same specs, same device). */
  readonly planKey: string;
  readonly spans: { tensor: Tensor; group: number }[] = [];
  private readonly chunks: Tensor[] = [];
  private logicalBytes = 0;

  constructor(gpu: Gpu, specs: readonly ArenaSpec[], label: string) {
    const plan = planArena(specs, gpu.maxBindingBytes);
    this.planKey = JSON.stringify([plan.chunkBytes, [...plan.places], plan.spans]);
    try {
      for (const [i, bytes] of plan.chunkBytes.entries()) this.chunks.push(gpu.tensor([bytes / 4], 'f32', `${label} arena ${i}`));
    } catch (e) {
      this.release();
      throw e;
    }
    // Pooled buffers may hold old data: the padding between views must read as zero.
    for (const c of this.chunks) gpu.clear(c);
    for (const s of specs) {
      const place = plan.places.get(s.name)!;
      const chunk = this.chunks[place.chunk];
      const t = new Tensor(gpu, chunk.buffer, s.shape, 'f32', s.name, place.offset, true);
      this.tensors.set(s.name, t);
      owners.set(t, this);
      this.logicalBytes += t.byteLength;
    }
    for (const sp of plan.spans) {
      const tensor = new Tensor(gpu, this.chunks[sp.chunk].buffer, [sp.bytes / 4], 'f32', `${label} span`, sp.offset, true);
      this.spans.push({ tensor, group: sp.group });
    }
  }

  /** Bytes of the tensors themselves (not the alignment padding). */
  get bytes(): number {
    return this.logicalBytes;
  }

  /** True when `t` is this arena's tensor `name` (the same view). */
  holds(name: string, t: Tensor): boolean {
    const own = this.tensors.get(name);
    return own !== undefined && own.buffer === t.buffer && own.offset === t.offset;
  }

  release(): void {
    for (const c of this.chunks) c.release();
    this.chunks.length = 0;
  }
}
