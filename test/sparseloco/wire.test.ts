import { describe, expect, it } from 'vitest';
import { preset, parameterLayout } from '../../src/model/config.ts';
import { crc32 } from '../../src/train/shards.ts';
import { chunkExtent, chunkGrid, isValidLocal, keptInChunk, keptInTensor, type ChunkGrid } from '../../src/sparseloco/chunks.ts';
import { dequantize, quantize } from '../../src/sparseloco/quantize.ts';
import type { TensorSelection } from '../../src/sparseloco/selection.ts';
import {
  UPDATE_HEADER_BYTES, UpdateError, configHash, decodeOwn, decodeUpdate, denseBytes, encodeUpdate, encodedSize,
  keptCount, selectionToSparse, type DecodeExpectations, type UpdateReason,
} from '../../src/sparseloco/wire.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/** Byte offsets of one tensor's table, indices and codes in an encoded update. */
function offsets(sels: TensorSelection[], t: number) {
  let o = UPDATE_HEADER_BYTES;
  let tableAt = 0;
  sels.forEach((s, i) => {
    o += 1 + new TextEncoder().encode(s.name).length + 1 + 4 * s.grid.shape.length;
    if (i === t) tableAt = o;
    o += 16;
  });
  for (let i = 0; i < t; i++) {
    const n = sels[i].local.length;
    o += Math.ceil((n * 12) / 8) + Math.ceil(n / 4);
  }
  return { tableAt, indexAt: o, codeAt: o + Math.ceil((sels[t].local.length * 12) / 8) };
}

const SHAPES: number[][] = [[1], [5], [64], [768], [4096], [4097], [10000], [1, 1], [3, 5], [64, 64], [65, 130], [172, 64], [200, 70], [128, 1], [1, 300]];

describe('update wire format', () => {
  it('keptCount (closed form) equals keptInTensor', () => {
    for (const shape of [...SHAPES, [50257, 256], [129, 4097]]) {
      for (const k of [1, 2, 7, 63, 64, 65, 100, 4095, 4096]) expect(keptCount(shape, k)).toBe(keptInTensor(chunkGrid(shape), k));
    }
  });

  it.each([1, 3, 64, 100, 4096])('round-trips random selections of many shapes at k = %i', (k) => {
    const sels = SHAPES.map((shape, i) => randomSelection(`t${i}.${shape.join('x')}`, shape, k, 1000 * k + i, i % 3 !== 0));
    const layout = layoutOf(sels);
    const bytes = encodeUpdate({ configHash: 0xdeadbeef, round: 7, k, tensors: sels });
    expect(bytes.length).toBe(encodedSize(layout, k));
    const d = decodeUpdate(bytes, { configHash: 0xdeadbeef, round: 7, layout, maxBytes: bytes.length });
    expect(d.round).toBe(7);
    expect(d.configHash).toBe(0xdeadbeef);
    expect(d.k).toBe(k);
    const own = decodeOwn(sels);
    expect(d.tensors.length).toBe(sels.length);
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
      expect(Array.from(selectionToSparse(sel).indices)).toEqual(flat);
      expect(Array.from(selectionToSparse(sel).values)).toEqual(Array.from(sel.values));
    });
  });

  it('an empty update (no tensors) round-trips', () => {
    const bytes = encodeUpdate({ configHash: 1, round: 0, k: 64, tensors: [] });
    expect(bytes.length).toBe(UPDATE_HEADER_BYTES + 4);
    expect(decodeUpdate(bytes, { layout: [] }).tensors).toEqual([]);
  });

  it('costs about 14 bits per kept value (768×768 + 768 at k = 64, and the small preset)', () => {
    const k = 64;
    const sels = [randomSelection('w', [768, 768], k, 1), randomSelection('norm', [768], k, 2)];
    const layout = layoutOf(sels);
    const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: sels });
    const kept = sels.reduce((n, s) => n + s.local.length, 0);
    const bits = (8 * bytes.length) / kept;
    const ratio = denseBytes(layout) / bytes.length;
    // payload alone is exactly 12 + 2 bits per value: 9280 values → 16240 bytes
    expect(bytes.length - 16240).toBeLessThan(100);
    expect(bytes.length).toBe(encodedSize(layout, k));
    const small = parameterLayout(preset('small'));
    const smallBytes = encodedSize(small, k);
    const smallKept = small.reduce((n, s) => n + keptCount(s.shape, k), 0);
    const smallRatio = denseBytes(small) / smallBytes;
    console.log(`768×768 + 768 at k=64: ${bytes.length} bytes for ${kept} values = ${bits.toFixed(3)} bits/value, ${ratio.toFixed(2)}× smaller than fp32 (${denseBytes(layout)} bytes)`);
    console.log(`768×768 alone: ${(denseBytes([layout[0]]) / encodedSize([layout[0]], k)).toFixed(2)}×; small preset: ${(8 * smallBytes / smallKept).toFixed(3)} bits/value, ${smallRatio.toFixed(2)}× (${smallBytes} vs ${denseBytes(small)} bytes)`);
    expect(bits).toBeGreaterThan(14);
    expect(bits).toBeLessThan(14.1);
    // 146.3× is the bound of 14 bits per 64 of 4096 values; the 768-vector keeps 64 of 768
    // (one chunk) and the header costs 80 bytes, so this layout lands at 144.7×.
    expect(ratio).toBeGreaterThan(144.5);
    expect(smallRatio).toBeGreaterThan(145);
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

describe('update decoder rejects', () => {
  const k = 64;
  const sels = [randomSelection('blocks.0.wq', [65, 130], k, 5), randomSelection('norm', [100], k, 6)];
  const layout = layoutOf(sels);
  const good = encodeUpdate({ configHash: 42, round: 3, k, tensors: sels });
  const expectGood: DecodeExpectations = { configHash: 42, round: 3, layout, maxBytes: 1 << 20 };
  const copy = () => good.slice();

  it('accepts the good message', () => {
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
    for (let trial = 0; trial < 1500; trial++) {
      const b = copy();
      const at = u() < 0.5 ? Math.floor(u() * 80) : Math.floor(u() * (b.length - 4));
      b[at] ^= 1 << Math.floor(u() * 8);
      fixCrc(b);
      try {
        const d = decodeUpdate(b);
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

  it('wrong magic, version, flags, k', () => {
    const m = copy();
    m[0] = 0x58;
    rejects(fixCrc(m), 'magic', expectGood, /magic 'XSLC'/);
    const v = copy();
    v[4] = 2;
    rejects(fixCrc(v), 'version', expectGood, /version 2/);
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
    const normShapeAt = offsets(sels, 1).tableAt - 4;
    expect(new DataView(b.buffer).getUint32(normShapeAt, true)).toBe(100);
    new DataView(b.buffer).setUint32(normShapeAt, 101, true);
    rejects(fixCrc(b), 'layout', expectGood, /tensor 'norm' has shape \[101\], expected \[100\]/);
    // growing the matrix changes the payload length: the message is then too short
    const g = copy();
    new DataView(g.buffer).setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 129, true);
    rejects(fixCrc(g), 'truncated', expectGood);
  });

  it('a valid-CRC message with an index outside its chunk', () => {
    // chunk 2 of [65, 130] is rows 0..63 × cols 128..129: local 5 (col 5) is outside.
    const { indexAt } = offsets(sels, 0);
    const b = copy();
    write12(b, indexAt, 2 * k + 3, 5);
    rejects(fixCrc(b), 'index', expectGood, /chunk 2: local index 5 is outside the 64×2 chunk/);
    // the last chunk (row 64, cols 128..129) holds 2 elements: local 64 is row 1 there.
    const last = copy();
    const n = sels[0].local.length;
    write12(last, indexAt, n - 1, 64);
    rejects(fixCrc(last), 'index', expectGood);
  });

  it('a valid-CRC message with a duplicate index in a chunk', () => {
    const { indexAt } = offsets(sels, 0);
    const b = copy();
    write12(b, indexAt, 10, sels[0].local[11]);
    rejects(fixCrc(b), 'duplicate', expectGood, /appears twice/);
  });

  it('a valid-CRC message with NaN or ±Inf in a table', () => {
    for (const [t, c, v] of [[0, 0, NaN], [1, 3, Infinity], [0, 2, -Infinity]] as const) {
      const b = copy();
      new DataView(b.buffer).setFloat32(offsets(sels, t).tableAt + 4 * c, v, true);
      rejects(fixCrc(b), 'nonfinite', expectGood, new RegExp(`entry ${c} is ${v}`));
    }
  });

  it('non-zero padding bits', () => {
    const odd = [randomSelection('v', [3], k, 7)]; // 3 indices (odd), 3 codes
    const bytes = encodeUpdate({ configHash: 1, round: 1, k, tensors: odd });
    const { indexAt, codeAt } = offsets(odd, 0);
    const a = bytes.slice();
    a[indexAt + 4] |= 0x10;
    rejects(fixCrc(a), 'trailing', {}, /after the last index/);
    const c = bytes.slice();
    c[codeAt] |= 0x40;
    rejects(fixCrc(c), 'trailing', {}, /after the last code/);
  });

  it('a corrupt tensor table: empty name, bad rank, zero dimension, duplicate name, bad UTF-8', () => {
    const b = copy();
    b[UPDATE_HEADER_BYTES + 1 + 11] = 3; // rank of the first tensor
    rejects(fixCrc(b), 'header', {}, /rank 3/);
    const z = copy();
    new DataView(z.buffer).setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 0, true);
    rejects(fixCrc(z), 'header', {}, /zero dimension/);
    const dup = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('aa', [4], k, 1), randomSelection('ab', [4], k, 2)] });
    dup[UPDATE_HEADER_BYTES + 1 + 2 + 1 + 4 + 16 + 1 + 1] = 0x61; // 'ab' → 'aa'
    rejects(fixCrc(dup), 'header', {}, /appears twice/);
    const utf = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('aa', [4], k, 1)] });
    utf[UPDATE_HEADER_BYTES + 1] = 0xff;
    rejects(fixCrc(utf), 'header', {}, /UTF-8/);
    const empty = encodeUpdate({ configHash: 1, round: 1, k, tensors: [randomSelection('a', [4], k, 1)] });
    empty[UPDATE_HEADER_BYTES] = 0;
    rejects(fixCrc(empty), 'header', {}, /empty name/);
  });

  it('a huge claimed shape costs nothing and reads as truncated', () => {
    const b = copy();
    const dv = new DataView(b.buffer);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 1, 0xffffffff, true);
    dv.setUint32(UPDATE_HEADER_BYTES + 1 + 11 + 5, 0xffffffff, true);
    rejects(fixCrc(b), 'truncated', {});
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
