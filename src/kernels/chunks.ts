// How SparseLoCo cuts each tensor into chunks for top-k (DESIGN.md, as Templar runs it; the top-k
// kernel works on this grid, so it lives below both, with the kernels):
// a 2-D weight [R, C] into 64×64 blocks (edge blocks smaller), a 1-D tensor into runs of
// 4096. Inside a chunk an element's local index is r·blockCols + c (r, c within the block),
// always < 4096, so it fits the wire's 12 bits. Chunks are numbered row-major over blocks.
// Environment-free.

export interface ChunkGrid {
  /** The tensor's shape, as given. */
  shape: readonly number[];
  /** Viewed as rows × cols (1-D tensors: 1 × n). */
  rows: number;
  cols: number;
  /** Block size (2-D: 64 × 64; 1-D: 1 × 4096). Edge blocks are smaller. */
  blockRows: number;
  blockCols: number;
  /** Blocks down and across; count = down · across. */
  down: number;
  across: number;
  count: number;
}

export interface ChunkOptions {
  /** Side of the square blocks of 2-D tensors. */
  block?: number;
  /** Length of the chunks of 1-D tensors. */
  chunk1d?: number;
}

export const DEFAULT_BLOCK = 64;
export const DEFAULT_CHUNK_1D = 4096;
/** Local indices travel in 12 bits. */
export const MAX_CHUNK_ELEMENTS = 4096;

export class ChunkError extends Error {
  override name = 'ChunkError';
}

/** The chunk grid of a tensor. Tensors of more than 2 dimensions are not parameters here. */
export function chunkGrid(shape: readonly number[], opts: ChunkOptions = {}): ChunkGrid {
  const block = opts.block ?? DEFAULT_BLOCK;
  const chunk1d = opts.chunk1d ?? DEFAULT_CHUNK_1D;
  if (block * block > MAX_CHUNK_ELEMENTS || chunk1d > MAX_CHUNK_ELEMENTS || block < 1 || chunk1d < 1) {
    throw new ChunkError(`chunks must hold 1..${MAX_CHUNK_ELEMENTS} elements (12-bit indices), got block ${block}, chunk1d ${chunk1d}`);
  }
  for (const d of shape) if (!Number.isInteger(d) || d < 1) throw new ChunkError(`invalid shape [${shape.join(', ')}]`);
  if (shape.length === 1) {
    const n = shape[0];
    const across = Math.ceil(n / chunk1d);
    return { shape, rows: 1, cols: n, blockRows: 1, blockCols: chunk1d, down: 1, across, count: across };
  }
  if (shape.length === 2) {
    const [rows, cols] = shape;
    const down = Math.ceil(rows / block);
    const across = Math.ceil(cols / block);
    return { shape, rows, cols, blockRows: block, blockCols: block, down, across, count: down * across };
  }
  throw new ChunkError(`only 1-D and 2-D tensors are chunked, got shape [${shape.join(', ')}]`);
}

/** Rows and columns of chunk `c` (edge chunks are smaller). */
export function chunkExtent(g: ChunkGrid, c: number): { r0: number; c0: number; rows: number; cols: number } {
  const br = Math.floor(c / g.across);
  const bc = c % g.across;
  const r0 = br * g.blockRows;
  const c0 = bc * g.blockCols;
  return { r0, c0, rows: Math.min(g.blockRows, g.rows - r0), cols: Math.min(g.blockCols, g.cols - c0) };
}

/** Number of elements in chunk `c`. */
export function chunkSize(g: ChunkGrid, c: number): number {
  const e = chunkExtent(g, c);
  return e.rows * e.cols;
}

/** Values kept in chunk `c`: k, or all of them when the chunk is smaller. */
export function keptInChunk(g: ChunkGrid, c: number, k: number): number {
  return Math.min(k, chunkSize(g, c));
}

/** Total values kept over the tensor. */
export function keptInTensor(g: ChunkGrid, k: number): number {
  let n = 0;
  for (let c = 0; c < g.count; c++) n += keptInChunk(g, c, k);
  return n;
}

/** True when `local` addresses an element inside chunk `c`. */
export function isValidLocal(g: ChunkGrid, c: number, local: number): boolean {
  if (!Number.isInteger(local) || local < 0) return false;
  const e = chunkExtent(g, c);
  const r = Math.floor(local / g.blockCols);
  const col = local % g.blockCols;
  return r < e.rows && col < e.cols;
}

/** Flat (row-major) index in the tensor of local index `local` in chunk `c`. */
export function flatIndex(g: ChunkGrid, c: number, local: number): number {
  const e = chunkExtent(g, c);
  return (e.r0 + Math.floor(local / g.blockCols)) * g.cols + e.c0 + (local % g.blockCols);
}
