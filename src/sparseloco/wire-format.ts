// The wire format of one peer's SparseLoCo update (DESIGN.md, step 3 and "Wire"): every
// tensor's top-k per chunk as local indices and 2-bit codes, plus a 4-entry table of bin
// means per tensor. Indices travel per tensor either as fixed 12-bit values (14 bits per
// kept value with the codes) or Rice-coded gaps (rice.ts; about 9.5 bits per kept value at
// k = 64 of 4096); the encoder picks whichever is smaller.
//
// Byte layout, little-endian, no alignment:
//   0   'TSLC'                     magic
//   4   u16 version                UPDATE_VERSION (2; version 1, which had no index-coding
//                                  bytes, is rejected as 'version')
//   6   u16 flags                  0 (any other value is rejected)
//   8   u32 config hash            configHash(cfg) (model/identity.ts)
//   12  u32 round
//   16  u16 k                      values kept per chunk, 1..4096
//   18  u16 tensor count
//   20  tensor table, per tensor:  u8 name length (1..255), UTF-8 name,
//                                  u8 rank (1 or 2), rank × u32 dims,
//                                  4 × f32 lookup table (bin means, by code),
//                                  u8 index coding: 0 = fixed 12-bit, 1 = Rice,
//                                  u8 Rice parameter p: 0 for fixed, 0..11 for Rice,
//                                  Rice only: u32 byte length of the index stream
//   ... payload, per tensor in table order: its indices, then its packed codes (bitpack.ts);
//       the count n = Σ_c keptInChunk(grid, c, k) over the chunk grid (chunks.ts) of the
//       shape, chunk by chunk in chunk order. Indices:
//         fixed: packed 12-bit local indices (bitpack.ts), indexBytes(n) bytes; any order
//                within a chunk, each once;
//         Rice:  one bit stream for the whole tensor (rice.ts: unary quotient as ones ended
//                by a zero, then p remainder bits, MSB first, bytes filled from bit 7 down):
//                for each chunk in order, for each kept index, the gap
//                g = local − previous − 1 (previous = −1 at the chunk's start), so locals
//                are strictly ascending within a chunk by construction; zero bits pad the
//                stream to a byte boundary and it takes exactly its declared byte length.
//       then codeBytes(n) bytes of codes
//   end u32 CRC32 of every byte before it
//
// The encoder ('auto', the default) computes both index sizes per tensor exactly — Rice at
// the p in 0..11 of fewest bits — and uses Rice only when its stream plus its 4-byte length
// is strictly smaller than the fixed indices (ties → fixed); so an 'auto' update is never
// larger than encodedSize, which is the exact size with fixed indices everywhere. Rice needs
// ascending locals per chunk (TensorSelection's contract); 'auto' keeps fixed indices for a
// tensor without them.
//
// decodeUpdate checks everything — size limit first, then magic, version, structure,
// exact length, CRC, config hash, round, layout, table values, every index — using only
// constant-size scratch, and allocates the decoded tensors only once all checks passed.
// The Rice reader is bounded by its stream's declared bytes and every unary run by the
// room left in the chunk, so corrupt input costs work proportional to its bytes.
// Each failure is an UpdateError whose `reason` names the check. Environment-free.
import { FormatError } from '../base/format.ts';
import { codeBytes, indexBytes } from './bitpack.ts';
import { ChunkError, MAX_CHUNK_ELEMENTS, chunkExtent, chunkGrid, type ChunkGrid } from '../kernels/chunks.ts';
import type { SparseTensor, TensorSelection } from './selection.ts';

export const UPDATE_MAGIC = 'TSLC';
export const UPDATE_VERSION = 2;
/** Bytes before the tensor table. */
export const UPDATE_HEADER_BYTES = 20;
export const MAX_K = MAX_CHUNK_ELEMENTS;
export const MAX_NAME_BYTES = 255;
export const MAX_TENSORS = 0xffff;
/** Index-coding byte of a tensor table entry. */
export const INDEX_FIXED = 0;
export const INDEX_RICE = 1;

/** How encodeUpdate sends indices: 'auto' (default) picks the smaller per tensor. */
export type IndexCoding = 'fixed' | 'rice' | 'auto';

export interface EncodeOptions {
  /**
   * 'fixed': 12-bit indices everywhere; 'rice': Rice-coded gaps everywhere (throws 'index'
   * on a chunk whose locals are not ascending; may be larger than fixed, for tests);
   * 'auto': per tensor the smaller, ties → fixed.
   */
  indexCoding?: IndexCoding;
}

export type UpdateReason =
  | 'size' | 'magic' | 'version' | 'crc' | 'truncated' | 'trailing' | 'layout' | 'index'
  | 'duplicate' | 'nonfinite' | 'magnitude' | 'round' | 'config' | 'header';

/**
 * The largest |value| an update's lookup table may hold. An honest value is an error-feedback
 * entry: at most innerSteps · lr / (1 − β) per weight (Adam moves a weight ~lr per step),
 * orders below this; a huge finite value (±3e38) would pass a finiteness check and turn every
 * loss, norm and weight it touches into Inf/NaN. Squares of values this size summed over any
 * tensor stay finite in f32.
 */
export const MAX_UPDATE_VALUE = 1e4;

/** An update cannot be encoded, or a received one is invalid; `reason` names the failed check. */
export class UpdateError extends FormatError<UpdateReason> {
  constructor(reason: UpdateReason, message: string) {
    super('UpdateError', reason, message);
  }
}

/** A tensor's identity on the wire. */
export interface TensorLayout {
  name: string;
  shape: readonly number[];
}

export interface UpdateInput {
  configHash: number;
  round: number;
  k: number;
  tensors: readonly TensorSelection[];
}

export interface DecodedUpdate {
  round: number;
  configHash: number;
  k: number;
  tensors: SparseTensor[];
}

export interface DecodeExpectations {
  configHash?: number;
  round?: number;
  /** The tensors the update must hold, in this order, with these shapes. */
  layout?: readonly TensorLayout[];
  /** Messages longer than this are rejected before anything else is read. */
  maxBytes?: number;
  /**
   * Check the frame only — header, tensor table, size, checksum, config, round, layout, the
   * tables' values — not the index and code streams, and return no tensors. A relay's check
   * (the coordinator's intake): ~1/60 of a full decode; whoever applies the update decodes it in full.
   */
  structureOnly?: boolean;
}

// ---- sizes ----

export const utf8 = new TextEncoder();

/**
 * Values kept over a tensor of this shape at k per chunk: Σ_c keptInChunk(grid, c, k),
 * in closed form (full blocks, the edge column, the edge row, the corner), so a hostile
 * shape costs O(1). Equal to keptInTensor(chunkGrid(shape), k).
 */
export function keptCount(shape: readonly number[], k: number): number {
  return keptInGrid(chunkGrid(shape), k);
}

export function keptInGrid(g: ChunkGrid, k: number): number {
  const fullDown = Math.floor(g.rows / g.blockRows), lastR = g.rows % g.blockRows;
  const fullAcross = Math.floor(g.cols / g.blockCols), lastC = g.cols % g.blockCols;
  const kept = (r: number, c: number) => Math.min(k, r * c);
  let n = fullDown * fullAcross * kept(g.blockRows, g.blockCols);
  if (lastC > 0) n += fullDown * kept(g.blockRows, lastC);
  if (lastR > 0) n += fullAcross * kept(lastR, g.blockCols);
  if (lastR > 0 && lastC > 0) n += kept(lastR, lastC);
  return n;
}

/** Bytes of a tensor table entry with fixed indices (a Rice entry adds RICE_LENGTH_BYTES). */
export function entryBytes(nameBytes: number, rank: number): number {
  return 1 + nameBytes + 1 + 4 * rank + 16 + 2;
}

/** The u32 stream length a Rice entry carries. */
export const RICE_LENGTH_BYTES = 4;

function payloadBytes(n: number): number {
  return indexBytes(n) + codeBytes(n);
}

/**
 * The byte count of an update of this layout at k per chunk with fixed 12-bit indices: the
 * exact size of encodeUpdate(…, { indexCoding: 'fixed' }) and an upper bound on the default
 * 'auto' (Rice is used only where strictly smaller), so a safe maxBytes for honest peers.
 * A forced 'rice' update may exceed it.
 */
export function encodedSize(layout: readonly TensorLayout[], k: number): number {
  let n = UPDATE_HEADER_BYTES + 4;
  for (const t of layout) n += entryBytes(utf8.encode(t.name).length, t.shape.length) + payloadBytes(keptCount(t.shape, k));
  return n;
}

/** The dense f32 size of the layout's tensors, for compression ratios. */
export function denseBytes(layout: readonly TensorLayout[]): number {
  let n = 0;
  for (const t of layout) n += 4 * t.shape.reduce((a, b) => a * b, 1);
  return n;
}

// ---- chunk index checks (shared by encoder and decoder) ----

// stamp[local] === mark ⇔ local already seen in the current chunk. Constant size.
const stamp = new Uint32Array(MAX_CHUNK_ELEMENTS);
let mark = 0;
export const chunkLocals = new Uint16Array(MAX_CHUNK_ELEMENTS);

/**
 * Checks locals[start, start+count) of chunk c: each must address an element inside the
 * chunk (as isValidLocal) and appear once. Returns null or the problem.
 */
export function checkChunk(g: ChunkGrid, c: number, locals: Uint16Array, start: number, count: number): { reason: 'index' | 'duplicate'; at: number; local: number } | null {
  if (mark === 0xffffffff) {
    stamp.fill(0);
    mark = 0;
  }
  const m = ++mark;
  const e = chunkExtent(g, c);
  const bc = g.blockCols;
  for (let j = 0; j < count; j++) {
    const l = locals[start + j];
    const r = Math.floor(l / bc);
    if (r >= e.rows || l - r * bc >= e.cols) return { reason: 'index', at: j, local: l };
    if (stamp[l] === m) return { reason: 'duplicate', at: j, local: l };
    stamp[l] = m;
  }
  return null;
}

function defaultGrid(name: string, shape: readonly number[]): ChunkGrid {
  try {
    return chunkGrid(shape);
  } catch (e) {
    if (e instanceof ChunkError) throw new UpdateError('layout', `tensor '${name}': ${e.message}`);
    throw e;
  }
}

function sameGrid(a: ChunkGrid, b: ChunkGrid): boolean {
  return a.rows === b.rows && a.cols === b.cols && a.blockRows === b.blockRows && a.blockCols === b.blockCols
    && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

/** Checks a selection against the default chunk grid of its shape and k; returns the kept count. */
export function checkSelection(sel: TensorSelection, k: number, who: string): number {
  const g = defaultGrid(sel.name, sel.grid.shape);
  if (!sameGrid(g, sel.grid)) {
    throw new UpdateError('layout', `${who}: tensor '${sel.name}' is chunked ${sel.grid.blockRows}×${sel.grid.blockCols}, the wire uses the default grid ${g.blockRows}×${g.blockCols} of shape [${g.shape.join(', ')}]`);
  }
  if (sel.k !== k) throw new UpdateError('header', `${who}: tensor '${sel.name}' was selected with k = ${sel.k}, the update says k = ${k}`);
  const n = keptInGrid(g, k);
  if (sel.local.length !== n || sel.values.length !== n) {
    throw new UpdateError('layout', `${who}: tensor '${sel.name}' holds ${sel.local.length} indices and ${sel.values.length} values; its grid at k = ${k} keeps ${n}`);
  }
  let at = 0;
  for (let c = 0; c < g.count; c++) {
    const e = chunkExtent(g, c);
    const m = Math.min(k, e.rows * e.cols);
    const bad = checkChunk(g, c, sel.local, at, m);
    if (bad) {
      throw new UpdateError(bad.reason, bad.reason === 'index'
        ? `${who}: tensor '${sel.name}' chunk ${c}: local index ${bad.local} (entry ${bad.at}) is outside the ${e.rows}×${e.cols} chunk`
        : `${who}: tensor '${sel.name}' chunk ${c}: local index ${bad.local} appears twice`);
    }
    at += m;
  }
  return n;
}

export function checkK(k: number, who: string): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new UpdateError('header', `${who}: k must be an integer in 1..${MAX_K}, got ${k}`);
}

export function checkU32(v: number, what: string, who: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new UpdateError('header', `${who}: ${what} must be a u32, got ${v}`);
}
