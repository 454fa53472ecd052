// Top-k by magnitude per chunk of a tensor (SparseLoCo's selection from the error buffer).
// x: f32, the tensor's elements row-major; grid: its chunk grid (src/sparseloco/chunks.ts).
// Output [grid.count × k]: per chunk c, slots [c·k, c·k + kept) hold the kept elements'
// local indices (u32) and values (f32, bit-exact copies) in ascending local-index order;
// kept = min(k, chunk size), and the remaining slots hold local 0xFFFFFFFF, value 0.
// Ties in |x| go to the lower local index. One workgroup per chunk, exact radix select on
// the bits of |x| (see shaders/topk.wgsl), so the result is the same on every GPU.
import code from '../../shaders/topk.wgsl';
import type { Gpu } from '../gpu/gpu.ts';
import { Params } from '../gpu/params.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { KernelInputError } from '../gpu/errors.ts';
import { MAX_CHUNK_ELEMENTS, chunkExtent, keptInChunk, type ChunkGrid } from './chunks.ts';
import { expectTensor, grid as workgroupGrid } from './common.ts';

const SHADER = { name: 'topk', code };
/** Local index of an empty slot. */
export const EMPTY_SLOT = 0xffffffff;

function checkGrid(kernel: string, g: ChunkGrid): void {
  const ints = { rows: g.rows, cols: g.cols, blockRows: g.blockRows, blockCols: g.blockCols, down: g.down, across: g.across, count: g.count };
  for (const [name, v] of Object.entries(ints)) {
    if (!Number.isInteger(v) || v < 1) throw new KernelInputError(kernel, `grid.${name} must be a positive integer, got ${v}`);
  }
  if (g.blockRows * g.blockCols > MAX_CHUNK_ELEMENTS) {
    throw new KernelInputError(kernel, `chunks of ${g.blockRows}×${g.blockCols} exceed ${MAX_CHUNK_ELEMENTS} elements`);
  }
  if (g.down !== Math.ceil(g.rows / g.blockRows) || g.across !== Math.ceil(g.cols / g.blockCols) || g.count !== g.down * g.across) {
    throw new KernelInputError(kernel, 'grid is inconsistent (down, across, count do not match rows, cols and block size); build it with chunkGrid');
  }
}

function checkK(kernel: string, k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_CHUNK_ELEMENTS) {
    throw new KernelInputError(kernel, `k must be an integer in [1, ${MAX_CHUNK_ELEMENTS}], got ${k}`);
  }
}

/** Records the top-k of every chunk of x into outLocal (u32) and outValues (f32), each grid.count × k. */
export function topkPerChunk(gpu: Gpu, x: Tensor, grid: ChunkGrid, k: number, outLocal: Tensor, outValues: Tensor): void {
  const K = 'topkPerChunk';
  checkGrid(K, grid);
  checkK(K, k);
  expectTensor(K, 'x', x, grid.rows * grid.cols);
  expectTensor(K, 'outLocal', outLocal, grid.count * k, 'u32');
  expectTensor(K, 'outValues', outValues, grid.count * k);
  if (new Set([x.buffer, outLocal.buffer, outValues.buffer]).size !== 3) {
    throw new KernelInputError(K, 'x, outLocal and outValues must be different buffers');
  }
  const params = new Params()
    .u32(grid.rows).u32(grid.cols).u32(grid.blockRows).u32(grid.blockCols)
    .u32(grid.across).u32(grid.count).u32(k).u32(0);
  gpu.dispatch(gpu.pipeline(SHADER, 'topk_chunk'), params, [x, outLocal, outValues], workgroupGrid(gpu, grid.count));
}

export interface TopKItem {
  x: Tensor;
  grid: ChunkGrid;
}

export interface TopKResult {
  /** keptInChunk(grid, c, k) local indices per chunk, in chunk order, ascending within a chunk. */
  local: Uint16Array;
  values: Float32Array;
}

/**
 * Top-k of several tensors: records every selection, reads them back in a few large reads,
 * and compacts each to exactly keptInChunk(grid, c, k) entries per chunk, in chunk order.
 */
export async function selectTopKMany(gpu: Gpu, items: readonly TopKItem[], k: number): Promise<TopKResult[]> {
  const K = 'selectTopK';
  checkK(K, k);
  for (const { x, grid } of items) {
    checkGrid(K, grid);
    expectTensor(K, 'x', x, grid.rows * grid.cols);
    gpu.checkBindingSize(grid.count * k * 4, `${K} output`);
  }
  // Batches whose outputs fit one buffer each; per batch two reads.
  const cap = Math.max(1, Math.floor(gpu.maxBindingBytes / 4));
  const results: TopKResult[] = [];
  let start = 0;
  while (start < items.length) {
    let end = start;
    let slots = 0;
    while (end < items.length && (end === start || slots + items[end].grid.count * k <= cap)) {
      slots += items[end].grid.count * k;
      end++;
    }
    const allLocal = gpu.tensor([slots], 'u32', 'topk local');
    const allValues = gpu.tensor([slots], 'f32', 'topk values');
    let offset = 0;
    for (let i = start; i < end; i++) {
      const { x, grid } = items[i];
      const n = grid.count * k;
      const local = gpu.tensor([grid.count, k], 'u32', 'topk local part');
      const values = gpu.tensor([grid.count, k], 'f32', 'topk values part');
      topkPerChunk(gpu, x, grid, k, local, values);
      gpu.copy(local, allLocal, n * 4, 0, offset * 4);
      gpu.copy(values, allValues, n * 4, 0, offset * 4);
      local.release();
      values.release();
      offset += n;
    }
    const localOut = (await gpu.read(allLocal)) as Uint32Array;
    const valuesOut = await gpu.readF32(allValues);
    allLocal.release();
    allValues.release();
    offset = 0;
    for (let i = start; i < end; i++) {
      results.push(compact(items[i].grid, k, localOut.subarray(offset), valuesOut.subarray(offset)));
      offset += items[i].grid.count * k;
    }
    start = end;
  }
  return results;
}

/** Top-k of one tensor, read back and compacted (the TensorSelection layout). */
export async function selectTopK(gpu: Gpu, x: Tensor, grid: ChunkGrid, k: number): Promise<TopKResult> {
  return (await selectTopKMany(gpu, [{ x, grid }], k))[0];
}

/** Drops the empty slots of a [count × k] output. */
function compact(grid: ChunkGrid, k: number, local: Uint32Array, values: Float32Array): TopKResult {
  let total = 0;
  for (let c = 0; c < grid.count; c++) total += keptInChunk(grid, c, k);
  const outLocal = new Uint16Array(total);
  const outValues = new Float32Array(total);
  let o = 0;
  for (let c = 0; c < grid.count; c++) {
    const kept = keptInChunk(grid, c, k);
    const from = c * k;
    for (let s = 0; s < kept; s++) {
      const l = local[from + s];
      if (l >= MAX_CHUNK_ELEMENTS) throw new Error(`selectTopK: chunk ${c} slot ${s} holds local index ${l}; the top-k kernel misbehaved`);
      outLocal[o] = l;
      outValues[o] = values[from + s];
      o++;
    }
  }
  return { local: outLocal, values: outValues };
}

/**
 * The same selection computed on the CPU from e's values (bit-identical to the GPU's: same
 * keys, same tie rule), in the TensorSelection layout. Per chunk: the threshold key by a
 * native sort of the chunk's keys, then one pass in local-index order.
 */
export function topkCpu(x: Float32Array, grid: ChunkGrid, k: number): TopKResult {
  checkK('topkCpu', k);
  if (x.length !== grid.rows * grid.cols) throw new KernelInputError('topkCpu', `x holds ${x.length} values, the grid ${grid.rows * grid.cols}`);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  let total = 0;
  for (let c = 0; c < grid.count; c++) total += keptInChunk(grid, c, k);
  const local = new Uint16Array(total);
  const values = new Float32Array(total);
  const keys = new Uint32Array(MAX_CHUNK_ELEMENTS);
  const sorted = new Uint32Array(MAX_CHUNK_ELEMENTS);
  let o = 0;
  for (let c = 0; c < grid.count; c++) {
    const e = chunkExtent(grid, c);
    const n = e.rows * e.cols;
    let j = 0;
    for (let r = 0; r < e.rows; r++) {
      const row = (e.r0 + r) * grid.cols + e.c0;
      for (let col = 0; col < e.cols; col++) keys[j++] = bits[row + col] & 0x7fffffff;
    }
    const kept = Math.min(k, n);
    const chunkSorted = sorted.subarray(0, n);
    chunkSorted.set(keys.subarray(0, n));
    chunkSorted.sort();
    const threshold = chunkSorted[n - kept];
    let equalNeeded = kept;
    for (let i = 0; i < n; i++) if (keys[i] > threshold) equalNeeded--;
    j = 0;
    for (let r = 0; r < e.rows; r++) {
      const row = (e.r0 + r) * grid.cols + e.c0;
      for (let col = 0; col < e.cols; col++, j++) {
        const key = keys[j];
        if (key > threshold || (key === threshold && equalNeeded-- > 0)) {
          local[o] = r * grid.blockCols + col;
          values[o++] = x[row + col];
        }
      }
    }
  }
  return { local, values };
}

// ---- CPU reference ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The sort key of |v| as the GPU sees it: the f32 bits of v without the sign. */
function magnitudeKey(v: number): number {
  f32[0] = v;
  return u32[0] & 0x7fffffff;
}

/**
 * The kernel's output computed on the CPU (x taken as f32, as on the GPU): local [count·k]
 * with EMPTY_SLOT in unfilled slots, values [count·k] with 0 there.
 */
export function topkRef(x: ArrayLike<number>, grid: ChunkGrid, k: number): { local: Uint32Array; values: Float64Array } {
  const local = new Uint32Array(grid.count * k).fill(EMPTY_SLOT);
  const values = new Float64Array(grid.count * k);
  for (let c = 0; c < grid.count; c++) {
    const e = chunkExtent(grid, c);
    const members: { local: number; key: number; value: number }[] = [];
    for (let r = 0; r < e.rows; r++) {
      for (let col = 0; col < e.cols; col++) {
        const v = Math.fround(x[(e.r0 + r) * grid.cols + e.c0 + col]);
        members.push({ local: r * grid.blockCols + col, key: magnitudeKey(v), value: v });
      }
    }
    members.sort((a, b) => b.key - a.key || a.local - b.local);
    const kept = members.slice(0, k).sort((a, b) => a.local - b.local);
    kept.forEach((m, s) => {
      local[c * k + s] = m.local;
      values[c * k + s] = m.value;
    });
  }
  return { local, values };
}
