// Decoding and validating a received update (wire-format.ts has the byte layout and what is
// checked), and the sender's own view of what it sent. Environment-free.
import { crc32 } from '../base/crc32.ts';
import { ByteReader, exactUtf8, type FormatSpec } from '../base/format.ts';
import { hex32 } from '../base/hex.ts';
import { codeBytes, indexBytes } from './bitpack.ts';
import { MAX_CHUNK_ELEMENTS, chunkExtent, chunkGrid, type ChunkGrid } from '../kernels/chunks.ts';
import { dequantize, quantize } from './quantize.ts';
import { MAX_RICE_PARAM, RiceReader } from './rice.ts';
import type { SparseTensor, TensorSelection } from './selection.ts';
import { UPDATE_MAGIC, UPDATE_VERSION, UPDATE_HEADER_BYTES, MAX_K, INDEX_FIXED, INDEX_RICE, MAX_UPDATE_VALUE, UpdateError, type DecodedUpdate, type DecodeExpectations, keptInGrid, chunkLocals, checkChunk } from './wire-format.ts';

// ---- decode ----

/** Flat indices travel in a Uint32Array: a tensor may hold at most 2^32 elements. */
const MAX_TENSOR_ELEMENTS = 2 ** 32;

const UPDATE_FORMAT: FormatSpec = { name: 'update', truncated: (message) => new UpdateError('truncated', message) };

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
  const r = new ByteReader(bytes, UPDATE_FORMAT);
  r.magic(UPDATE_MAGIC, (found) => new UpdateError('magic', `not a SparseLoCo update (magic '${found}', expected '${UPDATE_MAGIC}')`));
  r.need(UPDATE_HEADER_BYTES + 4 - r.offset, 'its header and checksum'); // before the version: a short update is 'truncated'
  const version = r.u16('its version');
  if (version !== UPDATE_VERSION) {
    throw new UpdateError('version', `update format version ${version}, this Tessera reads version ${UPDATE_VERSION}`);
  }
  const flags = r.u16('its flags');
  if (flags !== 0) throw new UpdateError('header', `unknown flags ${flags} in the update header`);
  const hash = r.u32('its config hash');
  const round = r.u32('its round');
  const k = r.u16('its k');
  const count = r.u16('its tensor count');
  if (k < 1 || k > MAX_K) throw new UpdateError('header', `k = ${k} in the update header, must be in 1..${MAX_K}`);

  // Tensor table: every read bounds-checked against the message.
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (let t = 0; t < count; t++) {
    const nameLen = r.u8(`the name length of tensor ${t}`);
    if (nameLen < 1) throw new UpdateError('header', `tensor ${t} has an empty name`);
    const name = exactUtf8(r.take(nameLen, `the name of tensor ${t}`));
    if (name === null) throw new UpdateError('header', `tensor ${t}: the name is not valid UTF-8`);
    if (seen.has(name)) throw new UpdateError('header', `tensor '${name}' appears twice in the update`);
    seen.add(name);
    const rank = r.u8(`the rank of tensor '${name}'`);
    if (rank !== 1 && rank !== 2) throw new UpdateError('header', `tensor '${name}' has rank ${rank}; only 1-D and 2-D tensors are sent`);
    r.need(4 * rank + 16, `the shape and table of tensor '${name}'`); // before the dimensions' checks
    const shape: number[] = [];
    for (let d = 0; d < rank; d++) {
      const dim = r.u32(`the shape of tensor '${name}'`);
      if (dim < 1) throw new UpdateError('header', `tensor '${name}' has a zero dimension`);
      shape.push(dim);
    }
    if (shape.reduce((a, b) => a * b, 1) > MAX_TENSOR_ELEMENTS) {
      throw new UpdateError('header', `tensor '${name}' has shape [${shape.join(', ')}]: more than 2^32 elements, its flat indices would not fit 32 bits`);
    }
    const grid = chunkGrid(shape);
    const tableAt = r.offset;
    r.skip(16, `the table of tensor '${name}'`);
    const coding = r.u8(`the index coding of tensor '${name}'`);
    const p = r.u8(`the index coding of tensor '${name}'`);
    const n = keptInGrid(grid, k);
    let indexLen: number;
    if (coding === INDEX_FIXED) {
      if (p !== 0) throw new UpdateError('header', `tensor '${name}': fixed indices with parameter ${p}, must be 0`);
      indexLen = indexBytes(n);
    } else if (coding === INDEX_RICE) {
      if (p > MAX_RICE_PARAM) throw new UpdateError('header', `tensor '${name}': Rice parameter ${p}, must be in 0..${MAX_RICE_PARAM}`);
      indexLen = r.u32(`the index stream length of tensor '${name}'`);
    } else {
      throw new UpdateError('header', `tensor '${name}': unknown index coding ${coding}`);
    }
    entries.push({ name, shape, grid, n, tableAt, coding, p, indexLen, indexAt: 0, codeAt: 0 });
  }
  let expected = r.offset;
  for (const e of entries) {
    e.indexAt = expected;
    e.codeAt = expected + e.indexLen;
    expected += e.indexLen + codeBytes(e.n);
  }
  expected += 4;
  if (len < expected) throw new UpdateError('truncated', `update of ${len} bytes is truncated: its header promises ${expected} bytes`);
  if (len > expected) throw new UpdateError('trailing', `${len - expected} unexpected bytes after the ${expected} bytes the header promises`);
  const dv = r.view;
  const stored = dv.getUint32(len - 4, true);
  const crc = crc32(bytes.subarray(0, len - 4));
  if (stored !== crc) throw new UpdateError('crc', `update checksum mismatch (stored ${hex32(stored)}, computed ${hex32(crc)}): corrupted in transit`);

  if (expect.configHash !== undefined && hash !== expect.configHash >>> 0) {
    throw new UpdateError('config', `update is for model config ${hex32(hash)}, this run trains ${hex32(expect.configHash)}`);
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
      if (Math.abs(v) > MAX_UPDATE_VALUE) throw new UpdateError('magnitude', `tensor '${e.name}': lookup table entry ${c} is ${v}, beyond the ±${MAX_UPDATE_VALUE} an update value may be`);
    }
  }
  if (expect.structureOnly) return { round, configHash: hash, k, tensors: [] };
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

