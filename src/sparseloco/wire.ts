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
//   8   u32 config hash            configHash(cfg)
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
import { DEFAULT_INIT_STD, type ModelConfig } from '../model/config.ts';
import { crc32 } from '../train/shards.ts';
import { codeBytes, indexBytes, packCodes, packIndices } from './bitpack.ts';
import { ChunkError, MAX_CHUNK_ELEMENTS, chunkExtent, chunkGrid, chunkSize, type ChunkGrid } from './chunks.ts';
import { dequantize, quantize } from './quantize.ts';
import { MAX_RICE_PARAM, RiceReader, addRiceBits, bestRiceParam, riceBytes, writeRice } from './rice.ts';
import type { SparseTensor, TensorSelection } from './selection.ts';

export type { SparseTensor, TensorSelection } from './selection.ts';

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
  | 'duplicate' | 'nonfinite' | 'round' | 'config' | 'header';

/** An update cannot be encoded, or a received one is invalid; `reason` names the failed check. */
export class UpdateError extends Error {
  readonly reason: UpdateReason;
  constructor(reason: UpdateReason, message: string) {
    super(message);
    this.name = 'UpdateError';
    this.reason = reason;
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
}

// ---- model config hash ----

/**
 * A stable 32-bit hash of a model config: FNV-1a over the UTF-8 of a canonical JSON array of
 * its fields in a fixed order (initStd filled with its default), so equal configs hash equal
 * on every engine, whatever their key order or extra fields.
 */
export function configHash(cfg: ModelConfig): number {
  const canonical = JSON.stringify([
    ['vocabSize', cfg.vocabSize], ['dim', cfg.dim], ['layers', cfg.layers], ['heads', cfg.heads],
    ['kvHeads', cfg.kvHeads], ['mlpHidden', cfg.mlpHidden], ['seqLen', cfg.seqLen],
    ['ropeBase', cfg.ropeBase], ['normEps', cfg.normEps], ['tiedEmbeddings', cfg.tiedEmbeddings],
    ['initStd', cfg.initStd ?? DEFAULT_INIT_STD],
  ]);
  let h = 0x811c9dc5;
  for (const b of utf8.encode(canonical)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

// ---- sizes ----

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/**
 * Values kept over a tensor of this shape at k per chunk: Σ_c keptInChunk(grid, c, k),
 * in closed form (full blocks, the edge column, the edge row, the corner), so a hostile
 * shape costs O(1). Equal to keptInTensor(chunkGrid(shape), k).
 */
export function keptCount(shape: readonly number[], k: number): number {
  return keptInGrid(chunkGrid(shape), k);
}

function keptInGrid(g: ChunkGrid, k: number): number {
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
function entryBytes(nameBytes: number, rank: number): number {
  return 1 + nameBytes + 1 + 4 * rank + 16 + 2;
}

/** The u32 stream length a Rice entry carries. */
const RICE_LENGTH_BYTES = 4;

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
const chunkLocals = new Uint16Array(MAX_CHUNK_ELEMENTS);

/**
 * Checks locals[start, start+count) of chunk c: each must address an element inside the
 * chunk (as isValidLocal) and appear once. Returns null or the problem.
 */
function checkChunk(g: ChunkGrid, c: number, locals: Uint16Array, start: number, count: number): { reason: 'index' | 'duplicate'; at: number; local: number } | null {
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
function checkSelection(sel: TensorSelection, k: number, who: string): number {
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

function checkK(k: number, who: string): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new UpdateError('header', `${who}: k must be an integer in 1..${MAX_K}, got ${k}`);
}

function checkU32(v: number, what: string, who: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new UpdateError('header', `${who}: ${what} must be a u32, got ${v}`);
}

// ---- encode ----

/**
 * Serialises one peer's update, quantising each tensor's kept values. Throws UpdateError on
 * an invalid selection (grid not the default one, wrong count, an index outside its chunk
 * or repeated, a non-finite value, a name longer than 255 bytes).
 */
export function encodeUpdate(u: UpdateInput, opts: EncodeOptions = {}): Uint8Array {
  const who = 'encodeUpdate';
  const coding = opts.indexCoding ?? 'auto';
  if (coding !== 'auto' && coding !== 'fixed' && coding !== 'rice') throw new UpdateError('header', `${who}: unknown index coding '${String(coding)}'`);
  checkU32(u.configHash, 'configHash', who);
  checkU32(u.round, 'round', who);
  checkK(u.k, who);
  if (u.tensors.length > MAX_TENSORS) throw new UpdateError('header', `${who}: ${u.tensors.length} tensors, at most ${MAX_TENSORS}`);
  const names = new Set<string>();
  const parts = u.tensors.map((sel) => {
    const name = utf8.encode(sel.name);
    if (name.length < 1 || name.length > MAX_NAME_BYTES) throw new UpdateError('header', `${who}: tensor name '${sel.name}' is ${name.length} bytes of UTF-8, must be 1..${MAX_NAME_BYTES}`);
    if (names.has(sel.name)) throw new UpdateError('header', `${who}: tensor '${sel.name}' appears twice`);
    names.add(sel.name);
    const n = checkSelection(sel, u.k, who);
    let q;
    try {
      q = quantize(sel.values);
    } catch (e) {
      if (e instanceof RangeError) throw new UpdateError('nonfinite', `${who}: tensor '${sel.name}': ${e.message}`);
      throw e;
    }
    const idx = chooseIndexCoding(sel, n, coding, who);
    return { sel, name, n, q, ...idx };
  });
  let size = UPDATE_HEADER_BYTES + 4;
  for (const p of parts) {
    size += entryBytes(p.name.length, p.sel.grid.shape.length) + p.indexLen + codeBytes(p.n);
    if (p.gaps) size += RICE_LENGTH_BYTES;
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = UPDATE_MAGIC.charCodeAt(i);
  dv.setUint16(4, UPDATE_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, u.configHash, true);
  dv.setUint32(12, u.round, true);
  dv.setUint16(16, u.k, true);
  dv.setUint16(18, parts.length, true);
  let o = UPDATE_HEADER_BYTES;
  for (const p of parts) {
    out[o++] = p.name.length;
    out.set(p.name, o);
    o += p.name.length;
    const shape = p.sel.grid.shape;
    out[o++] = shape.length;
    for (const d of shape) {
      dv.setUint32(o, d, true);
      o += 4;
    }
    for (let c = 0; c < 4; c++) {
      dv.setFloat32(o, p.q.table[c], true);
      o += 4;
    }
    out[o++] = p.gaps ? INDEX_RICE : INDEX_FIXED;
    out[o++] = p.riceParam;
    if (p.gaps) {
      dv.setUint32(o, p.indexLen, true);
      o += 4;
    }
  }
  for (const p of parts) {
    if (p.gaps) {
      const wrote = writeRice(p.gaps, p.n, p.riceParam, out.subarray(0, o + p.indexLen), o);
      if (wrote !== p.indexLen) throw new Error(`${who}: tensor '${p.sel.name}': Rice stream of ${wrote} bytes, ${p.indexLen} computed`);
    } else {
      packIndices(p.sel.local, out, o);
    }
    o += p.indexLen;
    packCodes(p.q.codes, out, o);
    o += codeBytes(p.n);
  }
  dv.setUint32(o, crc32(out.subarray(0, o)), true);
  return out;
}

/**
 * The index coding of one checked selection: Rice (gaps, p and stream bytes) or fixed
 * (gaps null).
 */
function chooseIndexCoding(sel: TensorSelection, n: number, coding: IndexCoding, who: string): { gaps: Uint16Array | null; riceParam: number; indexLen: number } {
  const fixed = { gaps: null, riceParam: 0, indexLen: indexBytes(n) };
  if (coding === 'fixed') return fixed;
  const g = sel.grid;
  const gaps = new Uint16Array(n);
  let at = 0;
  for (let c = 0; c < g.count; c++) {
    const m = Math.min(sel.k, chunkSize(g, c));
    let prev = -1;
    for (const end = at + m; at < end; at++) {
      const l = sel.local[at];
      if (l <= prev) {
        if (coding === 'auto') return fixed;
        throw new UpdateError('index', `${who}: tensor '${sel.name}' chunk ${c}: local indices are not ascending (${prev} then ${l}); Rice coding needs them ascending`);
      }
      gaps[at] = l - prev - 1;
      prev = l;
    }
  }
  const bits = new Float64Array(MAX_RICE_PARAM + 1);
  addRiceBits(gaps, 0, n, bits);
  const best = bestRiceParam(bits);
  const len = riceBytes(best.bits);
  if (coding === 'auto' && RICE_LENGTH_BYTES + len >= fixed.indexLen) return fixed;
  return { gaps, riceParam: best.p, indexLen: len };
}

// ---- decode ----

interface Entry {
  name: string;
  shape: number[];
  grid: ChunkGrid;
  n: number;
  tableAt: number;
  /** INDEX_FIXED or INDEX_RICE, and the Rice parameter (0 for fixed). */
  coding: number;
  p: number;
  indexLen: number;
  indexAt: number;
  codeAt: number;
}

const hex = (x: number) => `0x${(x >>> 0).toString(16).padStart(8, '0')}`;

/** The 12-bit value j of a packed index stream starting at `base`. */
function read12(b: Uint8Array, base: number, j: number): number {
  const o = base + (j >>> 1) * 3;
  return j & 1 ? (b[o + 1] >>> 4) | (b[o + 2] << 4) : b[o] | ((b[o + 1] & 0xf) << 8);
}

/**
 * Parses and validates one peer's update; throws UpdateError (nothing is returned) unless
 * every check passes. Indices in the result are flat (row-major) indices into each tensor,
 * chunk by chunk; values are the dequantised table entries.
 */
export function decodeUpdate(bytes: Uint8Array, expect: DecodeExpectations = {}): DecodedUpdate {
  const len = bytes.length;
  if (expect.maxBytes !== undefined && len > expect.maxBytes) {
    throw new UpdateError('size', `update of ${len} bytes exceeds the limit of ${expect.maxBytes} bytes`);
  }
  if (len < 4) throw new UpdateError('truncated', `update of ${len} bytes is too short to hold the magic`);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== UPDATE_MAGIC) {
    throw new UpdateError('magic', `not a SparseLoCo update (magic '${magic.replace(/[^\x20-\x7e]/g, '?')}', expected '${UPDATE_MAGIC}')`);
  }
  if (len < UPDATE_HEADER_BYTES + 4) throw new UpdateError('truncated', `update of ${len} bytes is shorter than its ${UPDATE_HEADER_BYTES}-byte header and checksum`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== UPDATE_VERSION) {
    throw new UpdateError('version', `update format version ${version}, this Tessera reads version ${UPDATE_VERSION}`);
  }
  const flags = dv.getUint16(6, true);
  if (flags !== 0) throw new UpdateError('header', `unknown flags ${flags} in the update header`);
  const hash = dv.getUint32(8, true);
  const round = dv.getUint32(12, true);
  const k = dv.getUint16(16, true);
  const count = dv.getUint16(18, true);
  if (k < 1 || k > MAX_K) throw new UpdateError('header', `k = ${k} in the update header, must be in 1..${MAX_K}`);

  // Tensor table: every read bounds-checked against the message.
  const entries: Entry[] = [];
  const seen = new Set<string>();
  let o = UPDATE_HEADER_BYTES;
  const need = (bytesWanted: number, what: string) => {
    if (o + bytesWanted > len) throw new UpdateError('truncated', `update ends (${len} bytes) inside ${what}`);
  };
  for (let t = 0; t < count; t++) {
    need(1, `the name length of tensor ${t}`);
    const nameLen = bytes[o++];
    if (nameLen < 1) throw new UpdateError('header', `tensor ${t} has an empty name`);
    need(nameLen, `the name of tensor ${t}`);
    const raw = bytes.subarray(o, o + nameLen);
    const name = utf8Decoder.decode(raw);
    const again = utf8.encode(name);
    if (again.length !== nameLen || again.some((b, i) => b !== raw[i])) throw new UpdateError('header', `tensor ${t}: the name is not valid UTF-8`);
    if (seen.has(name)) throw new UpdateError('header', `tensor '${name}' appears twice in the update`);
    seen.add(name);
    o += nameLen;
    need(1, `the rank of tensor '${name}'`);
    const rank = bytes[o++];
    if (rank !== 1 && rank !== 2) throw new UpdateError('header', `tensor '${name}' has rank ${rank}; only 1-D and 2-D tensors are sent`);
    need(4 * rank + 16, `the shape and table of tensor '${name}'`);
    const shape: number[] = [];
    for (let d = 0; d < rank; d++, o += 4) {
      const dim = dv.getUint32(o, true);
      if (dim < 1) throw new UpdateError('header', `tensor '${name}' has a zero dimension`);
      shape.push(dim);
    }
    const grid = chunkGrid(shape);
    const tableAt = o;
    o += 16;
    need(2, `the index coding of tensor '${name}'`);
    const coding = bytes[o], p = bytes[o + 1];
    o += 2;
    const n = keptInGrid(grid, k);
    let indexLen: number;
    if (coding === INDEX_FIXED) {
      if (p !== 0) throw new UpdateError('header', `tensor '${name}': fixed indices with parameter ${p}, must be 0`);
      indexLen = indexBytes(n);
    } else if (coding === INDEX_RICE) {
      if (p > MAX_RICE_PARAM) throw new UpdateError('header', `tensor '${name}': Rice parameter ${p}, must be in 0..${MAX_RICE_PARAM}`);
      need(RICE_LENGTH_BYTES, `the index stream length of tensor '${name}'`);
      indexLen = dv.getUint32(o, true);
      o += RICE_LENGTH_BYTES;
    } else {
      throw new UpdateError('header', `tensor '${name}': unknown index coding ${coding}`);
    }
    entries.push({ name, shape, grid, n, tableAt, coding, p, indexLen, indexAt: 0, codeAt: 0 });
  }
  let expected = o;
  for (const e of entries) {
    e.indexAt = expected;
    e.codeAt = expected + e.indexLen;
    expected += e.indexLen + codeBytes(e.n);
  }
  expected += 4;
  if (len < expected) throw new UpdateError('truncated', `update of ${len} bytes is truncated: its header promises ${expected} bytes`);
  if (len > expected) throw new UpdateError('trailing', `${len - expected} unexpected bytes after the ${expected} bytes the header promises`);
  const stored = dv.getUint32(len - 4, true);
  const crc = crc32(bytes.subarray(0, len - 4));
  if (stored !== crc) throw new UpdateError('crc', `update checksum mismatch (stored ${hex(stored)}, computed ${hex(crc)}): corrupted in transit`);

  if (expect.configHash !== undefined && hash !== expect.configHash >>> 0) {
    throw new UpdateError('config', `update is for model config ${hex(hash)}, this run trains ${hex(expect.configHash)}`);
  }
  if (expect.round !== undefined && round !== expect.round) {
    throw new UpdateError('round', `update is for round ${round}, expected round ${expect.round}`);
  }
  if (expect.layout) {
    const L = expect.layout;
    if (L.length !== entries.length) throw new UpdateError('layout', `update holds ${entries.length} tensors, the stage has ${L.length}`);
    entries.forEach((e, i) => {
      const want = L[i];
      if (e.name !== want.name) throw new UpdateError('layout', `tensor ${i} is '${e.name}', expected '${want.name}'`);
      if (e.shape.length !== want.shape.length || e.shape.some((d, j) => d !== want.shape[j])) {
        throw new UpdateError('layout', `tensor '${e.name}' has shape [${e.shape.join(', ')}], expected [${want.shape.join(', ')}]`);
      }
    });
  }
  for (const e of entries) {
    for (let c = 0; c < 4; c++) {
      const v = dv.getFloat32(e.tableAt + 4 * c, true);
      if (!Number.isFinite(v)) throw new UpdateError('nonfinite', `tensor '${e.name}': lookup table entry ${c} is ${v}`);
    }
  }
  for (const e of entries) {
    if (e.coding === INDEX_RICE) {
      checkRice(bytes, e, k);
      if (e.n & 3 && bytes[e.codeAt + codeBytes(e.n) - 1] >>> (2 * (e.n & 3)) !== 0) {
        throw new UpdateError('trailing', `tensor '${e.name}': non-zero padding bits after the last code`);
      }
      continue;
    }
    const g = e.grid;
    let at = 0;
    for (let c = 0; c < g.count; c++) {
      const ext = chunkExtent(g, c);
      const m = Math.min(k, ext.rows * ext.cols);
      for (let j = 0; j < m; j++) chunkLocals[j] = read12(bytes, e.indexAt, at + j);
      const bad = checkChunk(g, c, chunkLocals, 0, m);
      if (bad) {
        throw new UpdateError(bad.reason, bad.reason === 'index'
          ? `tensor '${e.name}' chunk ${c}: local index ${bad.local} is outside the ${ext.rows}×${ext.cols} chunk`
          : `tensor '${e.name}' chunk ${c}: local index ${bad.local} appears twice`);
      }
      at += m;
    }
    if (e.n & 1 && bytes[e.indexAt + indexBytes(e.n) - 1] >>> 4 !== 0) {
      throw new UpdateError('trailing', `tensor '${e.name}': non-zero padding bits after the last index`);
    }
    if (e.n & 3 && bytes[e.codeAt + codeBytes(e.n) - 1] >>> (2 * (e.n & 3)) !== 0) {
      throw new UpdateError('trailing', `tensor '${e.name}': non-zero padding bits after the last code`);
    }
  }

  // Everything checked: decode.
  const tensors = entries.map((e): SparseTensor => {
    const g = e.grid;
    const indices = new Uint32Array(e.n);
    const values = new Float32Array(e.n);
    const t0 = dv.getFloat32(e.tableAt, true), t1 = dv.getFloat32(e.tableAt + 4, true);
    const t2 = dv.getFloat32(e.tableAt + 8, true), t3 = dv.getFloat32(e.tableAt + 12, true);
    const bc = g.blockCols, cols = g.cols;
    const rice = e.coding === INDEX_RICE ? new RiceReader(bytes, e.indexAt, e.indexAt + e.indexLen, e.p) : null;
    let j = 0;
    for (let c = 0; c < g.count; c++) {
      const ext = chunkExtent(g, c);
      const m = Math.min(k, ext.rows * ext.cols);
      const base = ext.r0 * cols + ext.c0;
      let prev = -1;
      for (const end = j + m; j < end; j++) {
        // Both streams were checked above: every read is in range.
        const l = rice ? (prev = prev + 1 + rice.read(MAX_CHUNK_ELEMENTS)) : read12(bytes, e.indexAt, j);
        const r = Math.floor(l / bc);
        indices[j] = base + r * cols + (l - r * bc);
        const code = (bytes[e.codeAt + (j >>> 2)] >>> ((j & 3) << 1)) & 3;
        values[j] = code === 0 ? t0 : code === 1 ? t1 : code === 2 ? t2 : t3;
      }
    }
    return { name: e.name, shape: e.shape, indices, values };
  });
  return { round, configHash: hash, k, tensors };
}

/**
 * Walks a Rice index stream with constant scratch and bounded work: each gap's quotient may
 * not carry the index past the chunk's last element ('index', checked during the unary run),
 * each index must address an element of the chunk ('index'), the stream must hold every
 * index ('index') and end with zero padding exactly at its declared length ('trailing').
 * Gaps ≥ 0 make the locals strictly ascending: no duplicate or out-of-order index can occur.
 */
function checkRice(bytes: Uint8Array, e: Entry, k: number): void {
  const g = e.grid;
  const bc = g.blockCols;
  const rd = new RiceReader(bytes, e.indexAt, e.indexAt + e.indexLen, e.p);
  for (let c = 0; c < g.count; c++) {
    const ext = chunkExtent(g, c);
    const m = Math.min(k, ext.rows * ext.cols);
    const last = (ext.rows - 1) * bc + ext.cols - 1;
    let prev = -1;
    for (let j = 0; j < m; j++) {
      const room = last - prev - 1; // the largest gap that stays inside the chunk
      const gap = room < 0 ? -1 : rd.read(room >>> e.p);
      if (gap === -2) throw new UpdateError('index', `tensor '${e.name}' chunk ${c}: the Rice index stream (${e.indexLen} bytes) ends inside index ${j}`);
      if (gap < 0 || gap > room) {
        throw new UpdateError('index', `tensor '${e.name}' chunk ${c}: Rice index ${j} (after local ${prev}) lies past the end of the ${ext.rows}×${ext.cols} chunk`);
      }
      const l = prev + 1 + gap;
      if (l % bc >= ext.cols) throw new UpdateError('index', `tensor '${e.name}' chunk ${c}: local index ${l} is outside the ${ext.rows}×${ext.cols} chunk`);
      prev = l;
    }
  }
  if (!rd.paddingIsZero()) throw new UpdateError('trailing', `tensor '${e.name}': non-zero padding bits after the last index`);
  const used = rd.bytesUsed(e.indexAt);
  if (used !== e.indexLen) throw new UpdateError('trailing', `tensor '${e.name}': ${e.indexLen - used} unexpected bytes after the Rice index stream`);
}

// ---- the sender's own view ----

/**
 * A selection as a sparse tensor: flat indices chunk by chunk, with `decodedValues` (same
 * order) or else the selection's own values (copied).
 */
export function selectionToSparse(sel: TensorSelection, decodedValues?: Float32Array): SparseTensor {
  const g = sel.grid;
  const n = sel.local.length;
  const values = decodedValues ? decodedValues.slice() : sel.values.slice();
  if (values.length !== n) throw new RangeError(`selectionToSparse: tensor '${sel.name}' has ${n} indices and ${values.length} values`);
  const kept = keptInGrid(g, sel.k);
  if (kept !== n) throw new RangeError(`selectionToSparse: tensor '${sel.name}' has ${n} indices, its grid at k = ${sel.k} keeps ${kept}`);
  const indices = new Uint32Array(n);
  const bc = g.blockCols, cols = g.cols;
  let j = 0;
  for (let c = 0; c < g.count; c++) {
    const ext = chunkExtent(g, c);
    const m = Math.min(sel.k, ext.rows * ext.cols);
    const base = ext.r0 * cols + ext.c0;
    for (const end = j + m; j < end; j++) {
      const l = sel.local[j];
      const r = Math.floor(l / bc);
      indices[j] = base + r * cols + (l - r * bc);
    }
  }
  return { name: sel.name, shape: [...g.shape], indices, values };
}

/**
 * What every receiver will decode from these selections — quantised and dequantised exactly
 * as encodeUpdate and decodeUpdate do — so the sender's e ← e − decodeOwn(sent) is
 * bit-identical to what its peers apply.
 */
export function decodeOwn(tensors: readonly TensorSelection[]): SparseTensor[] {
  return tensors.map((sel) => {
    const q = quantize(sel.values);
    return selectionToSparse(sel, dequantize(q.codes, q.table));
  });
}
