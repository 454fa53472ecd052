// What error feedback hands to the wire encoder: one tensor's top-k, chunk by chunk.
import type { ChunkGrid } from '../kernels/chunks.ts';

/**
 * One tensor's top-k selection: for each chunk c of `grid`, in chunk order,
 * keptInChunk(grid, c, k) entries; `local` are local indices within the chunk (chunks.ts),
 * ascending within each chunk, and `values` the selected values of the error buffer.
 */
export interface TensorSelection {
  name: string;
  grid: ChunkGrid;
  k: number;
  local: Uint16Array;
  values: Float32Array;
}

/** A sparse tensor: unique flat indices into the tensor and their values. */
export interface SparseTensor {
  name: string;
  shape: readonly number[];
  indices: Uint32Array;
  values: Float32Array;
}
