import { describe, expect, it } from 'vitest';
import { preset, parameterLayout } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { chunkExtent, chunkGrid, isValidLocal, keptInChunk, keptInTensor, type ChunkGrid } from '../../src/kernels/chunks.ts';
import { packIndices } from '../../src/sparseloco/bitpack.ts';
import { dequantize, quantize } from '../../src/sparseloco/quantize.ts';
import type { TensorSelection } from '../../src/sparseloco/selection.ts';
import { rng } from '../helpers/rng.ts';
import {
  MAX_UPDATE_VALUE, UPDATE_HEADER_BYTES, UPDATE_VERSION, UpdateError, decodeOwn, decodeUpdate, denseBytes, encodeUpdate, encodedSize,
  keptCount, selectionToSparse, type DecodeExpectations, type IndexCoding, type TensorLayout, type UpdateReason,
} from '../../src/sparseloco/wire.ts';


/** A random valid selection: distinct valid locals per chunk (ascending or shuffled), normal values. */
function randomSelection(name: string, shape: number[], k: number, seed: number, sorted = true): TensorSelection {
  const u = rng(seed);
  const grid = chunkGrid(shape);
  const n = keptInTensor(grid, k);
  const local = new Uint16Array(n);
  const values = new Float32Array(n);
  let at = 0;
  for (let c = 0; c < grid.count; c++) {
    const e = chunkExtent(grid, c);
    const pool: number[] = [];
    for (let r = 0; r < e.rows; r++) for (let col = 0; col < e.cols; col++) pool.push(r * grid.blockCols + col);
    const m = keptInChunk(grid, c, k);
    for (let i = 0; i < m; i++) {
      const j = i + Math.floor(u() * (pool.length - i));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    const chosen = pool.slice(0, m);
    if (sorted) chosen.sort((a, b) => a - b);
    local.set(chosen, at);
    at += m;
  }
  for (let i = 0; i < n; i++) values[i] = (u() - 0.5) * 0.02 * (u() < 0.05 ? 20 : 1);
  return { name, grid, k, local, values };
}

const layoutOf = (sels: TensorSelection[]) => sels.map((s) => ({ name: s.name, shape: [...s.grid.shape] }));

function rejects(bytes: Uint8Array, reason: UpdateReason, expect_: DecodeExpectations = {}, message?: RegExp): void {
  let caught: unknown = null;
  let result: unknown = undefined;
  try {
    result = decodeUpdate(bytes, expect_);
  } catch (e) {
    caught = e;
  }
  expect(result).toBeUndefined();
  expect(caught).toBeInstanceOf(UpdateError);
  expect((caught as UpdateError).reason).toBe(reason);
  if (message) expect((caught as UpdateError).message).toMatch(message);
}

function fixCrc(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

function write12(b: Uint8Array, base: number, j: number, v: number): void {
  const o = base + (j >> 1) * 3;
  if (j & 1) {
    b[o + 1] = (b[o + 1] & 0x0f) | ((v & 0xf) << 4);
    b[o + 2] = v >> 4;
  } else {
    b[o] = v & 0xff;
    b[o + 1] = (b[o + 1] & 0xf0) | (v >> 8);
  }
}

/** One tensor of an encoded update, parsed independently of wire.ts (the documented v2 layout). */
interface Parsed {
  entryAt: number; // name length byte
  tableAt: number;
  codingAt: number;
  coding: number;
  p: number;
  n: number;
  indexAt: number;
  indexLen: number;
  codeAt: number;
  codeLen: number;
}

function parse(bytes: Uint8Array): Parsed[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const k = dv.getUint16(16, true);
  const count = dv.getUint16(18, true);
  let o = UPDATE_HEADER_BYTES;
  const out: Parsed[] = [];
  for (let t = 0; t < count; t++) {
    const entryAt = o;
    o += 1 + bytes[o];
    const rank = bytes[o++];
    const shape: number[] = [];
    for (let d = 0; d < rank; d++, o += 4) shape.push(dv.getUint32(o, true));
    const tableAt = o;
    o += 16;
    const codingAt = o;
    const coding = bytes[o], p = bytes[o + 1];
    o += 2;
    const n = keptCount(shape, k);
    let indexLen = Math.ceil((12 * n) / 8);
    if (coding === 1) {
      indexLen = dv.getUint32(o, true);
      o += 4;
    }
    out.push({ entryAt, tableAt, codingAt, coding, p, n, indexAt: 0, indexLen, codeAt: 0, codeLen: Math.ceil(n / 4) });
  }
  for (const e of out) {
    e.indexAt = o;
    e.codeAt = o + e.indexLen;
    o = e.codeAt + e.codeLen;
  }
  expect(o + 4).toBe(bytes.length);
  return out;
}

/**
 * Rebuilds an update with tensor t's index coding, parameter and index bytes replaced
 * (everything else copied), with a valid CRC.
 */
function withIndices(bytes: Uint8Array, t: number, coding: number, p: number, index: Uint8Array): Uint8Array {
  const P = parse(bytes);
  const parts: Uint8Array[] = [bytes.slice(0, UPDATE_HEADER_BYTES)];
  P.forEach((e, i) => {
    parts.push(bytes.slice(e.entryAt, e.codingAt));
    if (i !== t) parts.push(bytes.slice(e.codingAt, e.codingAt + (e.coding === 1 ? 6 : 2)));
    else {
      const c = new Uint8Array(coding === 1 ? 6 : 2);
      c[0] = coding;
      c[1] = p;
      if (coding === 1) new DataView(c.buffer).setUint32(2, index.length, true);
      parts.push(c);
    }
  });
  P.forEach((e, i) => {
    parts.push(i === t ? index : bytes.slice(e.indexAt, e.codeAt));
    parts.push(bytes.slice(e.codeAt, e.codeAt + e.codeLen));
  });
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0) + 4);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return fixCrc(out);
}

/** The documented Rice format, bit by bit: q ones, a zero, p bits MSB first; bytes filled from bit 7; zero padding. */
function riceRef(gaps: number[], p: number, tail: number[] = []): Uint8Array {
  const bits: number[] = [];
  for (const g of gaps) {
    const q = Math.floor(g / 2 ** p);
    for (let i = 0; i < q; i++) bits.push(1);
    bits.push(0);
    for (let b = p - 1; b >= 0; b--) bits.push((g >> b) & 1);
  }
  bits.push(...tail);
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => (out[i >> 3] |= b << (7 - (i & 7))));
  return out;
}

/** Per chunk gaps of a selection whose locals ascend within each chunk. */
function gapsOf(sel: TensorSelection): number[] {
  const gaps: number[] = [];
  let at = 0;
  for (let c = 0; c < sel.grid.count; c++) {
    let prev = -1;
    for (let j = 0; j < keptInChunk(sel.grid, c, sel.k); j++, at++) {
      gaps.push(sel.local[at] - prev - 1);
      prev = sel.local[at];
    }
  }
  return gaps;
}

const CODINGS: IndexCoding[] = ['fixed', 'rice', 'auto'];

const SHAPES: number[][] = [[1], [5], [64], [768], [4096], [4097], [10000], [1, 1], [3, 5], [64, 64], [65, 130], [172, 64], [200, 70], [128, 1], [1, 300]];

describe('update wire format', () => {
  it('keptCount (closed form) equals keptInTensor', () => {
    for (const shape of [...SHAPES, [50257, 256], [129, 4097]]) {
      for (const k of [1, 2, 7, 63, 64, 65, 100, 4095, 4096]) expect(keptCount(shape, k)).toBe(keptInTensor(chunkGrid(shape), k));
    }
  });

  describe.each(CODINGS)('with %s indices', (coding) => {
    it.each([1, 3, 64, 100, 4096])('round-trips random selections of many shapes at k = %i', (k) => {
      // Rice needs ascending locals: shuffled ones only for fixed and auto (which then keeps them fixed)
      const sels = SHAPES.map((shape, i) => randomSelection(`t${i}.${shape.join('x')}`, shape, k, 1000 * k + i, coding === 'rice' || i % 3 !== 0));
      const layout = layoutOf(sels);
      const bytes = encodeUpdate({ configHash: 0xdeadbeef, round: 7, k, tensors: sels }, { indexCoding: coding });
      expect(new DataView(bytes.buffer).getUint16(4, true)).toBe(UPDATE_VERSION);
      const table = parse(bytes);
      const fixedBytes = encodeUpdate({ configHash: 0xdeadbeef, round: 7, k, tensors: sels }, { indexCoding: 'fixed' });
      if (coding === 'fixed') {
        expect(bytes.length).toBe(encodedSize(layout, k));
        expect(table.every((e) => e.coding === 0 && e.p === 0)).toBe(true);
      } else if (coding === 'rice') {
        expect(table.every((e) => e.coding === 1 && e.p <= 11)).toBe(true);
      } else {
        // auto: never larger than fixed, nor than rice where rice is possible; each tensor the smaller of the two
        expect(bytes.length).toBeLessThanOrEqual(encodedSize(layout, k));
        const fixedTable = parse(fixedBytes);
        table.forEach((e, i) => {
          const sorted = i % 3 !== 0;
          if (!sorted) expect(e.coding).toBe(0);
          if (!sorted) return;
          // exact Rice sizes at every p, from the documented code length q + 1 + p
          const gaps = gapsOf(sels[i]);
          const bits = Array.from({ length: 12 }, (_, p) => gaps.reduce((a, g) => a + (g >> p) + 1 + p, 0));
          const best = Math.min(...bits);
          if (e.coding === 1) {
            expect(bits[e.p]).toBe(best);
            expect(bits.indexOf(best)).toBe(e.p);
            expect(e.indexLen).toBe(Math.ceil(best / 8));
            expect(e.indexLen + 4).toBeLessThan(fixedTable[i].indexLen);
          } else {
            expect(Math.ceil(best / 8) + 4).toBeGreaterThanOrEqual(fixedTable[i].indexLen);
          }
        });
        if (sels.every((_, i) => i % 3 !== 0)) {
          expect(bytes.length).toBeLessThanOrEqual(encodeUpdate({ configHash: 0xdeadbeef, round: 7, k, tensors: sels }, { indexCoding: 'rice' }).length);
        }
      }
      // Rice streams are exactly the documented format (bit-by-bit reference)
      table.forEach((e, i) => {
        if (e.coding === 1) expect(Array.from(bytes.subarray(e.indexAt, e.codeAt))).toEqual(Array.from(riceRef(gapsOf(sels[i]), e.p)));
      });
      const maxBytes = Math.max(bytes.length, encodedSize(layout, k));
      const d = decodeUpdate(bytes, { configHash: 0xdeadbeef, round: 7, layout, maxBytes });
      expect(d.round).toBe(7);
      expect(d.configHash).toBe(0xdeadbeef);
      expect(d.k).toBe(k);
      const own = decodeOwn(sels);
      expect(d.tensors.length).toBe(sels.length);
      const dFixed = decodeUpdate(fixedBytes);
      d.tensors.forEach((t, i) => {
        const sel = sels[i];
        expect(t.name).toBe(sel.name);
        expect(t.shape).toEqual(sel.grid.shape);
        // exactly the selection's flat indices, each unique and inside the tensor
        const flat: number[] = [];
        let at = 0;
        for (let c = 0; c < sel.grid.count; c++) {
          for (let j = 0; j < keptInChunk(sel.grid, c, k); j++, at++) {
            expect(isValidLocal(sel.grid, c, sel.local[at])).toBe(true);
            flat.push(chunkFlat(sel.grid, c, sel.local[at]));
          }
        }
        expect(Array.from(t.indices)).toEqual(flat);
        expect(new Set(flat).size).toBe(flat.length);
        const q = quantize(sel.values);
        expect(Array.from(t.values)).toEqual(Array.from(dequantize(q.codes, q.table)));
        expect(Array.from(own[i].indices)).toEqual(Array.from(t.indices));
        expect(Array.from(own[i].values)).toEqual(Array.from(t.values));
        expect(Array.from(dFixed.tensors[i].indices)).toEqual(Array.from(t.indices));
        expect(Array.from(dFixed.tensors[i].values)).toEqual(Array.from(t.values));
        expect(Array.from(selectionToSparse(sel).indices)).toEqual(flat);
        expect(Array.from(selectionToSparse(sel).values)).toEqual(Array.from(sel.values));
      });
    });

    it('an empty update (no tensors) round-trips', () => {
      const bytes = encodeUpdate({ configHash: 1, round: 0, k: 64, tensors: [] }, { indexCoding: coding });
      expect(bytes.length).toBe(UPDATE_HEADER_BYTES + 4);
      expect(decodeUpdate(bytes, { layout: [] }).tensors).toEqual([]);
    });
  });

  it('Rice needs ascending locals: forced rice rejects a shuffled chunk, auto keeps it fixed', () => {
    const k = 64;
    const shuffled = randomSelection('w', [64, 64], k, 4, false);
    let ascending = true;
    for (let j = 1; j < k; j++) if (shuffled.local[j] <= shuffled.local[j - 1]) ascending = false;
    expect(ascending).toBe(false);
    let caught: unknown = null;
    try {
      encodeUpdate({ configHash: 1, round: 1, k, tensors: [shuffled] }, { indexCoding: 'rice' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UpdateError);
    expect((caught as UpdateError).reason).toBe('index');
    expect((caught as UpdateError).message).toMatch(/not ascending/);
    const auto = encodeUpdate({ configHash: 1, round: 1, k, tensors: [shuffled] });
    expect(parse(auto)[0].coding).toBe(0);
    expect(() => encodeUpdate({ configHash: 1, round: 1, k, tensors: [] }, { indexCoding: 'gzip' as IndexCoding })).toThrow(UpdateError);
  });

  function measure(layout: readonly TensorLayout[], k: number, seed: number) {
    const sels = layout.map((t, i) => randomSelection(t.name, [...t.shape], k, seed + i));
    const kept = sels.reduce((n, s) => n + s.local.length, 0);
    const dense = denseBytes(layout);
    const out: Record<IndexCoding, { bytes: number; bits: number; ratio: number }> = {} as never;
    for (const coding of CODINGS) {
      const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: sels }, { indexCoding: coding });
      expect(decodeUpdate(bytes, { layout, maxBytes: Math.max(bytes.length, encodedSize(layout, k)) }).tensors.length).toBe(layout.length);
      out[coding] = { bytes: bytes.length, bits: (8 * bytes.length) / kept, ratio: dense / bytes.length };
    }
    return { sels, kept, dense, out };
  }

  const report = (what: string, m: ReturnType<typeof measure>) => {
    for (const coding of CODINGS) {
      const r = m.out[coding];
      console.log(`${what}, ${coding.padEnd(5)}: ${r.bytes} bytes for ${m.kept} values = ${r.bits.toFixed(3)} bits/value, ${r.ratio.toFixed(2)}× smaller than fp32 (${m.dense} bytes)`);
    }
  };

  it('bits per kept value and ratio vs fp32 (768×768 + 768 and the small preset at k = 64, random kept positions)', () => {
    const k = 64;
    const two = measure([{ name: 'w', shape: [768, 768] }, { name: 'norm', shape: [768] }], k, 1);
    report('768×768 + 768 at k=64', two);
    // fixed: payload exactly 12 + 2 bits per value (9280 values → 16240 bytes) plus a small header
    expect(two.out.fixed.bytes - 16240).toBeLessThan(100);
    expect(two.out.fixed.bits).toBeGreaterThan(14);
    expect(two.out.fixed.bits).toBeLessThan(14.1);
    expect(two.out.auto.bytes).toBeLessThanOrEqual(Math.min(two.out.fixed.bytes, two.out.rice.bytes));
    expect(two.out.auto.ratio).toBeGreaterThanOrEqual(146);

    const small = parameterLayout(preset('small'));
    const sm = measure(small, k, 100);
    report('small preset at k=64', sm);
    expect(sm.out.fixed.bytes).toBe(encodedSize(small, k));
    expect(sm.out.auto.bytes).toBeLessThanOrEqual(Math.min(sm.out.fixed.bytes, sm.out.rice.bytes));
    expect(sm.out.auto.ratio).toBeGreaterThanOrEqual(146);
  });

  it('encode and decode speed on the small preset (printed, not asserted)', () => {
    const k = 64;
    const small = parameterLayout(preset('small'));
    const sels = small.map((t, i) => randomSelection(t.name, [...t.shape], k, 500 + i));
    const kept = sels.reduce((n, s) => n + s.local.length, 0);
    const maxBytes = encodedSize(small, k);
    const time = (f: () => unknown) => {
      f(); // warm up
      const reps = 5;
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) f();
      return (performance.now() - t0) / reps / 1000;
    };
    for (const coding of CODINGS) {
      const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: sels }, { indexCoding: coding });
      const te = time(() => encodeUpdate({ configHash: 1, round: 1, k, tensors: sels }, { indexCoding: coding }));
      const td = time(() => decodeUpdate(bytes, { configHash: 1, round: 1, layout: small, maxBytes }));
      console.log(`small preset, ${coding.padEnd(5)}: encode ${(kept / te / 1e6).toFixed(1)} M values/s (${(te * 1000).toFixed(1)} ms), decode ${(kept / td / 1e6).toFixed(1)} M values/s (${(td * 1000).toFixed(1)} ms) for ${kept} values`);
    }
  });

  it('configHash is stable and sensitive to every field', () => {
    const cfg = preset('small');
    const h = configHash(cfg);
    expect(configHash({ ...cfg })).toBe(h);
    expect(configHash({ ...cfg, initStd: 0.02 })).toBe(h);
    expect(configHash(preset('small'))).toBe(h);
    const reordered = Object.fromEntries(Object.entries(cfg).reverse()) as typeof cfg;
    expect(configHash(reordered)).toBe(h);
    const variants = [{ vocabSize: 256 }, { dim: 512 }, { layers: 7 }, { heads: 8 }, { kvHeads: 4 }, { mlpHidden: 705 }, { seqLen: 256 },
      { ropeBase: 500000 }, { normEps: 1e-6 }, { tiedEmbeddings: false }, { initStd: 0.01 }];
    const hashes = new Set(variants.map((v) => configHash({ ...cfg, ...v })));
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(h)).toBe(false);
    expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
  });
});

function chunkFlat(g: ChunkGrid, c: number, local: number): number {
  const e = chunkExtent(g, c);
  return (e.r0 + Math.floor(local / g.blockCols)) * g.cols + e.c0 + (local % g.blockCols);
}

describe.each(['fixed', 'rice'] as const)('update decoder rejects (%s indices)', (coding) => {
  const k = 64;
  const sels = [randomSelection('blocks.0.wq', [65, 130], k, 5), randomSelection('norm', [100], k, 6)];
  const layout = layoutOf(sels);
  const good = encodeUpdate({ configHash: 42, round: 3, k, tensors: sels }, { indexCoding: coding });
  const P = parse(good);
  const expectGood: DecodeExpectations = { configHash: 42, round: 3, layout, maxBytes: 1 << 20 };
  const copy = () => good.slice();

  it('accepts the good message', () => {
    expect(P.every((e) => e.coding === (coding === 'rice' ? 1 : 0))).toBe(true);
    expect(decodeUpdate(good, expectGood).tensors.length).toBe(2);
  });

  it('every single-byte corruption', () => {
    const u = rng(9);
    for (let i = 0; i < good.length; i++) {
      const b = copy();
      b[i] ^= 1 + Math.floor(u() * 255);
      expect(() => decodeUpdate(b, expectGood)).toThrow(UpdateError);
    }
  });

  it('random multi-byte corruptions', () => {
    const u = rng(10);
    for (let trial = 0; trial < 500; trial++) {
      const b = copy();
      const flips = 2 + Math.floor(u() * 6);
      for (let f = 0; f < flips; f++) b[Math.floor(u() * b.length)] ^= 1 + Math.floor(u() * 255);
      if (b.every((x, i) => x === good[i])) continue;
      expect(() => decodeUpdate(b, expectGood)).toThrow(UpdateError);
    }
  });

  it('random edits with a fixed-up CRC: only UpdateError, or a valid result', () => {
    const u = rng(11);
    let valid = 0;
    for (let trial = 0; trial < 1500; trial++) {
      const b = copy();
      const at = u() < 0.3 ? Math.floor(u() * 90) : P[0].indexAt + Math.floor(u() * (b.length - 4 - P[0].indexAt));
      b[at] ^= 1 << Math.floor(u() * 8);
      fixCrc(b);
      try {
        const d = decodeUpdate(b);
        valid++;
        for (const t of d.tensors) {
          const size = t.shape.reduce((x, y) => x * y, 1);
          expect(t.indices.every((i) => i < size)).toBe(true);
          expect(new Set(t.indices).size).toBe(t.indices.length);
          expect(t.values.every(Number.isFinite)).toBe(true);
        }
      } catch (e) {
        expect(e).toBeInstanceOf(UpdateError);
      }
    }
    expect(valid).toBeLessThan(1500);
  });

  it('every truncation', () => {
    for (let n = 0; n < good.length; n++) rejects(good.subarray(0, n), 'truncated', expectGood);
  });

  it('trailing bytes', () => {
    const b = new Uint8Array(good.length + 1);
    b.set(good);
    rejects(b, 'trailing', expectGood, /1 unexpected bytes/);
  });

  it('a message over maxBytes, before anything else', () => {
    rejects(good, 'size', { ...expectGood, maxBytes: good.length - 1 });
    rejects(new Uint8Array(5000), 'size', { maxBytes: 4096 });
    expect(() => decodeUpdate(good, { ...expectGood, maxBytes: good.length })).not.toThrow();
  });

  it('wrong magic, version (1 included), flags, k', () => {
    const m = copy();
    m[0] = 0x58;
    rejects(fixCrc(m), 'magic', expectGood, /magic 'XSLC'/);
    for (const version of [0, 1, 3]) {
      const v = copy();
      v[4] = version;
      rejects(fixCrc(v), 'version', expectGood, new RegExp(`version ${version}, this Tessera reads version 2`));
    }
    const f = copy();
    f[6] = 1;
    rejects(fixCrc(f), 'header', expectGood, /flags/);
    const k0 = copy();
    k0[16] = 0;
    k0[17] = 0;
    rejects(fixCrc(k0), 'header', expectGood, /k = 0/);
    const kBig = copy();
    new DataView(kBig.buffer).setUint16(16, 4097, true);
    rejects(fixCrc(kBig), 'header', expectGood, /k = 4097/);
  });

  it('a bad CRC', () => {
    const b = copy();
    b[b.length - 1] ^= 0x80;
    rejects(b, 'crc', expectGood, /checksum/);
  });

  it('wrong config hash or round', () => {
    rejects(good, 'config', { ...expectGood, configHash: 43 });
    rejects(good, 'round', { ...expectGood, round: 4 }, /round 3, expected round 4/);
    expect(decodeUpdate(good).round).toBe(3);
  });

  it('a layout mismatch: count, name, shape', () => {
    rejects(good, 'layout', { layout: layout.slice(0, 1) }, /holds 2 tensors/);
    rejects(good, 'layout', { layout: [{ ...layout[0], name: 'blocks.0.wk' }, layout[1]] }, /expected 'blocks.0.wk'/);
    rejects(good, 'layout', { layout: [layout[0], { name: 'norm', shape: [101] }] }, /shape \[100\]/);
    // a message whose table says [101] instead of [100] (same kept count, CRC fixed) fails the layout check
    const b = copy();
    const normShapeAt = P[1].tableAt - 4;
    expect(new DataView(b.buffer).getUint32(normShapeAt, true)).toBe(100);
    new DataView(b.buffer).setUint32(normShapeAt, 101, true);
    rejects(fixCrc(b), 'layout', expectGood, /tensor 'norm' has shape \[101\], expected \[100\]/);
    // growing the matrix changes the payload length: the message is then too short
    const g = copy();
    new DataView(g.buffer).setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 129, true);
    rejects(fixCrc(g), 'truncated', expectGood);
  });

  it('a valid-CRC message with NaN or ±Inf in a table', () => {
    for (const [t, c, v] of [[0, 0, NaN], [1, 3, Infinity], [0, 2, -Infinity]] as const) {
      const b = copy();
      new DataView(b.buffer).setFloat32(P[t].tableAt + 4 * c, v, true);
      rejects(fixCrc(b), 'nonfinite', expectGood, new RegExp(`entry ${c} is ${v}`));
    }
  });

  it('a valid-CRC message with a huge finite value in a table (±3e38 turned every loss to NaN, issue 19)', () => {
    for (const [t, c, v] of [[0, 0, 3e38], [1, 3, -3e38], [0, 1, 2 * MAX_UPDATE_VALUE]] as const) {
      const b = copy();
      new DataView(b.buffer).setFloat32(P[t].tableAt + 4 * c, v, true);
      rejects(fixCrc(b), 'magnitude', expectGood, new RegExp(`entry ${c} is .*beyond the ±${MAX_UPDATE_VALUE}`));
    }
    // At the bound itself it still decodes.
    const edge = copy();
    new DataView(edge.buffer).setFloat32(P[0].tableAt, MAX_UPDATE_VALUE, true);
    expect(() => decodeUpdate(fixCrc(edge), expectGood)).not.toThrow();
  });

  it('non-zero padding bits after the codes', () => {
    const odd = [randomSelection('v', [3], k, 7)]; // 3 codes
    const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: odd }, { indexCoding: coding });
    const c = bytes.slice();
    c[parse(bytes)[0].codeAt] |= 0x40;
    rejects(fixCrc(c), 'trailing', {}, /after the last code/);
  });

  it('a bad index-coding byte or parameter', () => {
    const unknown = copy();
    unknown[P[0].codingAt] = 2;
    rejects(fixCrc(unknown), 'header', expectGood, /unknown index coding 2/);
    const p = copy();
    p[P[0].codingAt + 1] = coding === 'rice' ? 12 : 1;
    rejects(fixCrc(p), 'header', expectGood, coding === 'rice' ? /Rice parameter 12/ : /fixed indices with parameter 1/);
  });

  it('a corrupt tensor table: empty name, bad rank, zero dimension, duplicate name, bad UTF-8', () => {
    const opt = { indexCoding: coding };
    const b = copy();
    b[UPDATE_HEADER_BYTES + 1 + 11] = 3; // rank of the first tensor
    rejects(fixCrc(b), 'header', {}, /rank 3/);
    const z = copy();
    new DataView(z.buffer).setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 0, true);
    rejects(fixCrc(z), 'header', {}, /zero dimension/);
    const dup = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('aa', [4], k, 1), randomSelection('ab', [4], k, 2)] }, opt);
    dup[parse(dup)[1].entryAt + 2] = 0x61; // 'ab' → 'aa'
    rejects(fixCrc(dup), 'header', {}, /appears twice/);
    const utf = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('aa', [4], k, 1)] }, opt);
    utf[UPDATE_HEADER_BYTES + 1] = 0xff;
    rejects(fixCrc(utf), 'header', {}, /UTF-8/);
    const empty = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('a', [4], k, 1)] }, opt);
    empty[UPDATE_HEADER_BYTES] = 0;
    rejects(fixCrc(empty), 'header', {}, /empty name/);
  });

  it('a huge claimed shape costs nothing: past 2^32 elements a header error, up to it truncated', () => {
    const b = copy();
    const dv = new DataView(b.buffer);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 0xffffffff, true);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 5, 0xffffffff, true);
    rejects(fixCrc(b), 'header', {}, /more than 2\^32 elements/);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 65536, true);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 5, 65536, true);
    rejects(fixCrc(b), 'truncated', {});
  });

  if (coding === 'fixed') {
    it('a valid-CRC message with an index outside its chunk', () => {
      // chunk 2 of [65, 130] is rows 0..63 × cols 128..129: local 5 (col 5) is outside.
      const { indexAt } = P[0];
      const b = copy();
      write12(b, indexAt, 2 * k + 3, 5);
      rejects(fixCrc(b), 'index', expectGood, /chunk 2: local index 5 is outside the 64×2 chunk/);
      // the last chunk (row 64, cols 128..129) holds 2 elements: local 64 is row 1 there.
      const last = copy();
      write12(last, indexAt, P[0].n - 1, 64);
      rejects(fixCrc(last), 'index', expectGood);
    });

    it('a valid-CRC message with a duplicate index in a chunk', () => {
      const b = copy();
      write12(b, P[0].indexAt, 10, sels[0].local[11]);
      rejects(fixCrc(b), 'duplicate', expectGood, /appears twice/);
    });

    it('non-zero padding bits after the last index', () => {
      const odd = [randomSelection('v', [3], k, 7)]; // 3 indices (odd)
      const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: odd }, { indexCoding: 'fixed' });
      const a = bytes.slice();
      a[parse(bytes)[0].indexAt + 4] |= 0x10;
      rejects(fixCrc(a), 'trailing', {}, /after the last index/);
    });
  } else {
    // Rice-specific corruptions, each rebuilt with a valid CRC and a consistent stream length.
    const gaps0 = gapsOf(sels[0]);
    const gaps1 = gapsOf(sels[1]);
    const p0 = P[0].p, p1 = P[1].p;

    it('the rebuilt good message is the encoder output (the reference writer matches)', () => {
      expect(Array.from(withIndices(good, 0, 1, p0, riceRef(gaps0, p0)))).toEqual(Array.from(good));
      expect(Array.from(withIndices(good, 1, 1, p1, riceRef(gaps1, p1)))).toEqual(Array.from(good));
      // the same tensor re-coded at another p, or with fixed indices, is valid too
      expect(decodeUpdate(withIndices(good, 0, 1, 0, riceRef(gaps0, 0)), expectGood).tensors[0].indices).toEqual(decodeUpdate(good).tensors[0].indices);
      expect(decodeUpdate(withIndices(good, 1, 0, 0, packIndices(sels[1].local)), expectGood).tensors[1].indices).toEqual(decodeUpdate(good).tensors[1].indices);
    });

    it('a huge unary run: rejected as index, with work bounded by the chunk', () => {
      // 1 MB of one-bits as the first gap of 'norm' (100 elements): the run is cut at 100 >> p
      const ones = new Uint8Array(1 << 20).fill(0xff);
      const t0 = performance.now();
      rejects(withIndices(good, 1, 1, 0, ones), 'index', { ...expectGood, maxBytes: 4 << 20 }, /Rice index 0 \(after local -1\) lies past the end of the 1×100 chunk/);
      expect(performance.now() - t0).toBeLessThan(1000); // CRC of 1 MB dominates; the run stops after ~100 bits
      // 96 one-bits (a quotient still inside the chunk), then the stream ends: index, 'ends inside'
      rejects(withIndices(good, 1, 1, 0, riceRef([], 0, Array(96).fill(1))), 'index', expectGood, /ends inside index 0/);
    });

    it('an index past the chunk end (by quotient, by remainder, by running out of room)', () => {
      // 'norm' is one 1×100 chunk: a first gap of 100 is local 100
      for (const p of [0, 3, 6, 11]) {
        const g = [100, ...gaps1.slice(1)];
        rejects(withIndices(good, 1, 1, p, riceRef(g, p)), 'index', expectGood, /lies past the end of the 1×100 chunk/);
      }
      // gaps summing to the end before the 64th index: the next one has no room left
      const full = [...Array(36).fill(0), 0, ...Array(27).fill(0)];
      full[36] = 100 - 64; // locals 0..35, then 72..98, then index 63 = 99: exactly fills
      expect(decodeUpdate(withIndices(good, 1, 1, 2, riceRef(full, 2)), expectGood).tensors[1].indices.at(-1)).toBe(99);
      const over = full.slice();
      over[36] += 1; // now the 64th index would be 100
      rejects(withIndices(good, 1, 1, 2, riceRef(over, 2)), 'index', expectGood, /past the end/);
      // chunk 2 of [65, 130] is 64×2: local 5 (row 0, col 5) is inside the 4096 range but outside the chunk
      const c2 = gaps0.slice();
      c2[2 * k] = 5;
      rejects(withIndices(good, 0, 1, p0, riceRef(c2, p0)), 'index', expectGood, /chunk 2: local index 5 is outside the 64×2 chunk/);
    });

    it('a stream that ends early, has extra bytes or non-zero padding', () => {
      const stream = riceRef(gaps1, p1);
      rejects(withIndices(good, 1, 1, p1, stream.subarray(0, stream.length - 1)), 'index', expectGood, /ends inside index/);
      const longer = new Uint8Array(stream.length + 1);
      longer.set(stream);
      rejects(withIndices(good, 1, 1, p1, longer), 'trailing', expectGood, /1 unexpected bytes after the Rice index stream/);
      // set a padding bit (the last bit of the stream), at a p whose stream has some padding
      const p = [p1, 0, 1, 2, 3, 4, 5, 6, 7].find((pp) => gaps1.reduce((a, g) => a + (g >> pp) + 1 + pp, 0) % 8 !== 0)!;
      const s = riceRef(gaps1, p);
      s[s.length - 1] |= 1;
      rejects(withIndices(good, 1, 1, p, s), 'trailing', expectGood, /non-zero padding bits after the last index/);
      // a stream-length field claiming more than the message holds
      const big = copy();
      new DataView(big.buffer).setUint32(P[1].codingAt + 2, 0xffffffff, true);
      rejects(fixCrc(big), 'truncated', expectGood);
    });

    it('out-of-order or repeated locals cannot be written: gaps keep them strictly ascending', () => {
      // every CRC-fixed bit flip inside the streams decodes to strictly ascending locals per chunk, or is rejected
      for (const t of [0, 1]) {
        for (let at = P[t].indexAt; at < P[t].codeAt; at++) {
          for (let bit = 0; bit < 8; bit++) {
            const b = copy();
            b[at] ^= 1 << bit;
            fixCrc(b);
            let d;
            try {
              d = decodeUpdate(b, expectGood);
            } catch (e) {
              expect(e).toBeInstanceOf(UpdateError);
              expect(['index', 'trailing']).toContain((e as UpdateError).reason);
              continue;
            }
            const sel = sels[t];
            const idx = d.tensors[t].indices;
            let j = 0;
            for (let c = 0; c < sel.grid.count; c++) {
              const m = keptInChunk(sel.grid, c, k);
              for (let i = 1; i < m; i++) expect(idx[j + i]).toBeGreaterThan(idx[j + i - 1]);
              j += m;
            }
          }
        }
      }
    });
  }
});

describe('update decoder without a layout: flat indices stay inside 32 bits', () => {
  /** A valid update (k = 1: local 0 of every chunk) of one tensor of this shape. */
  const oneTensor = (shape: number[]) => {
    const grid = chunkGrid(shape);
    const n = keptInTensor(grid, 1);
    return encodeUpdate({ configHash: 1, round: 1, k: 1, tensors: [{ name: 'w', grid, k: 1, local: new Uint16Array(n), values: new Float32Array(n).fill(1) }] }, { indexCoding: 'fixed' });
  };

  it('refuses a tensor of more than 2^32 elements, whose flat indices would wrap', () => {
    // [65537, 65536]: the last row's chunks start at 65536 · 65536 = 2^32, which a Uint32Array stores as 0.
    rejects(oneTensor([65537, 65536]), 'header', {}, /more than 2\^32 elements/);
  });

  it('accepts exactly 2^32 elements, every index in range', () => {
    const [t] = decodeUpdate(oneTensor([65536, 65536])).tensors;
    expect(t.indices.at(-1)).toBe(65472 * 65536 + 65472);
    expect(t.indices.every((v, i) => i === 0 || v > t.indices[i - 1])).toBe(true); // chunk order is row-major: no wrap
  });
});

describe('update encoder rejects', () => {
  const k = 8;
  const ok = () => randomSelection('t', [20, 30], k, 3);
  const enc = (s: TensorSelection, kk = k) => () => encodeUpdate({ configHash: 1, round: 1, k: kk, tensors: [s] });
  const reason = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UpdateError);
      return (e as UpdateError).reason;
    }
    return 'none';
  };

  it('an invalid or repeated local index, a non-finite value, a wrong count or k, a non-default grid', () => {
    const a = ok();
    a.local[0] = 30; // row 0, col 30: outside the 20×30 block (blockCols 64)
    expect(reason(enc(a))).toBe('index');
    const b = ok();
    b.local[1] = b.local[0];
    expect(reason(enc(b))).toBe('duplicate');
    const c = ok();
    c.values[3] = NaN;
    expect(reason(enc(c))).toBe('nonfinite');
    const d = ok();
    expect(reason(enc({ ...d, local: d.local.subarray(1) }))).toBe('layout');
    expect(reason(enc(d, 9))).toBe('header');
    expect(reason(enc({ ...d, grid: chunkGrid([20, 30], { block: 16 }) }))).toBe('layout');
    expect(reason(() => encodeUpdate({ configHash: 1, round: 1, k, tensors: [ok(), ok()] }))).toBe('header');
    expect(reason(() => encodeUpdate({ configHash: 1, round: -1, k, tensors: [] }))).toBe('header');
    expect(reason(() => encodeUpdate({ configHash: 1, round: 1, k: 0, tensors: [] }))).toBe('header');
    expect(reason(enc(ok()))).toBe('none');
  });
});
