// Encoding one peer's update into the wire format of wire-format.ts (the byte layout is
// documented there). Environment-free.
import { crc32 } from '../base/crc32.ts';
import { writeMagic } from '../base/format.ts';
import { codeBytes, indexBytes, packCodes, packIndices } from './bitpack.ts';
import { chunkSize } from '../kernels/chunks.ts';
import { quantize } from './quantize.ts';
import { MAX_RICE_PARAM, addRiceBits, bestRiceParam, riceBytes, writeRice } from './rice.ts';
import type { TensorSelection } from './selection.ts';
import { UPDATE_MAGIC, UPDATE_VERSION, UPDATE_HEADER_BYTES, MAX_NAME_BYTES, MAX_TENSORS, INDEX_FIXED, INDEX_RICE, type IndexCoding, type EncodeOptions, UpdateError, type UpdateInput, utf8, entryBytes, RICE_LENGTH_BYTES, checkSelection, checkK, checkU32 } from './wire-format.ts';

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
  writeMagic(out, UPDATE_MAGIC);
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
