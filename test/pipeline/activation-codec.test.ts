// The pipeline hand-off codec: f32 round trips exactly; f16 rounds as a float64 reference
// of IEEE round-to-nearest-even does, on every half, every midpoint between halves and their
// f32 neighbours, the subnormal and overflow edges and random values; int8 stays within half
// a step of its per-row scale; and every corruption is rejected with its reason.
import { describe, expect, it } from 'vitest';
import {
  ACTIVATION_HEADER_BYTES, ActivationError, type ActivationExpectations, type ActivationMode, type ActivationReason,
  MAX_ACTIVATION_ELEMENTS, activationMessageBytes, decodeActivations, encodeActivations, f16Exponent, peekActivationHeader,
} from '../../src/pipeline/activation-codec.ts';
import { F16_MAX, f16BitsToF32, f32ToF16Bits } from '../../src/pipeline/binary16.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { randInts, randn } from '../helpers/gpu.ts';

const [B, T, C, V] = [2, 3, 8, 50];
const N = B * T;

function message(mode: ActivationMode, kind: 'activations' | 'grads' = 'activations', data = randn(N * C, 5)) {
  const targets = randInts(N, V, 9);
  targets[1] = -1;
  return {
    input: { mode, kind, round: 7, step: 3, micro: 2, B, T, C, data, targets: kind === 'activations' ? targets : undefined },
    bytes: encodeActivations({ mode, kind, round: 7, step: 3, micro: 2, B, T, C, data, targets: kind === 'activations' ? targets : undefined }),
  };
}

/** Recomputes the trailing CRC after an edit, so a check behind the CRC is reached. */
function reseal(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

function rejects(bytes: Uint8Array, expect_: ActivationExpectations, reason: ActivationReason, message?: RegExp): void {
  let err: unknown = null;
  try {
    decodeActivations(bytes, expect_);
  } catch (e) {
    err = e;
  }
  expect(err, `expected rejection '${reason}'`).toBeInstanceOf(ActivationError);
  expect((err as ActivationError).reason, (err as Error).message).toBe(reason);
  if (message) expect((err as Error).message).toMatch(message);
}

// ---- float64 reference of binary16 rounding ----

/** The binary16 value nearest to x (ties to even), computed in float64 without bit tricks. */
function refF16(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const negative = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  let r: number;
  if (a >= 65520) r = Number.POSITIVE_INFINITY; // the midpoint between 65504 and 2^16 ties to "even" = Inf
  else {
    let ulp: number;
    if (a < 2 ** -14) ulp = 2 ** -24;
    else {
      let e = Math.floor(Math.log2(a));
      while (2 ** e > a) e--;
      while (2 ** (e + 1) <= a) e++;
      ulp = 2 ** (e - 10);
    }
    const q = a / ulp; // exact: ulp is a power of two
    let n = Math.floor(q);
    const frac = q - n;
    if (frac > 0.5 || (frac === 0.5 && n % 2 === 1)) n++;
    r = n * ulp;
  }
  return negative ? -r : r;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]);
const nextUp = (x: number) => (x === 0 ? 2 ** -149 : fromBits(bitsOf(x) + (x > 0 ? 1 : -1)));
const nextDown = (x: number) => -nextUp(-x);

describe('binary16 conversion', () => {
  it('decodes every half exactly and re-encodes it to the same bits', () => {
    let nan = 0;
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (Number.isNaN(v)) {
        nan++;
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
        continue;
      }
      expect(refF16(v)).toBe(v); // a half is its own nearest half
      expect(f32ToF16Bits(v)).toBe(h);
    }
    expect(nan).toBe(2 * 1023);
  });

  it('rounds like the float64 reference at every midpoint, its f32 neighbours and the edges', () => {
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      const lo = f16BitsToF32(h);
      const hi = h === 0x7bff ? 65536 : f16BitsToF32(h + 1);
      const mid = (lo + hi) / 2; // 12 significant bits: exact in f32
      expect(Math.fround(mid)).toBe(mid);
      for (const v of [lo, nextUp(lo), mid, nextDown(mid), nextUp(mid)]) values.push(v, -v);
    }
    values.push(
      0, -0, F16_MAX, 65519, 65519.998, 65520, 65536, 1e5, 3.4e38, 2 ** -24, 2 ** -25, nextUp(2 ** -25), nextDown(2 ** -25),
      2 ** -26, 3 * 2 ** -26, 2 ** -14, nextDown(2 ** -14), 2 ** -149, 2 ** -126, nextDown(2 ** -126), 1 / 3, Math.PI,
    );
    const r = randn(100_000, 77);
    for (let i = 0; i < r.length; i++) values.push(Math.fround(r[i] * 2 ** ((i % 50) - 30)));
    let infs = 0;
    let subnormals = 0;
    for (const x0 of values) {
      const x = Math.fround(x0);
      const got = f16BitsToF32(f32ToF16Bits(x));
      const want = refF16(x);
      if (!Object.is(got, want)) throw new Error(`f16(${x}) = ${got}, reference ${want}`);
      if (!Number.isFinite(got)) infs++;
      else if (got !== 0 && Math.abs(got) < 2 ** -14) subnormals++;
    }
    console.log(`f16 rounding: ${values.length} values match the float64 reference (${infs} overflow to ±Inf, ${subnormals} subnormal)`);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-65520)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // ties to even: 0
    expect(f32ToF16Bits(nextUp(2 ** -25))).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // 1.5 ulp ties to 2
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(f16BitsToF32(f32ToF16Bits(Number.NaN))).toBeNaN();
  });
});

describe('activation codec', () => {
  it('f32 round-trips exactly, header and targets included', () => {
    const data = randn(N * C, 3);
    data[0] = 3.4028234663852886e38;
    data[1] = -(2 ** -149);
    data[2] = -0;
    const { input, bytes } = message('f32', 'activations', data);
    expect(bytes.length).toBe(activationMessageBytes('f32', B, T, C, true));
    expect(bytes.length).toBe(ACTIVATION_HEADER_BYTES + 4 * N + 4 * N * C + 4);
    const out = decodeActivations(bytes, { kind: 'activations', round: 7, step: 3, micro: 2, B, T, C, vocabSize: V });
    expect(out).toMatchObject({ mode: 'f32', kind: 'activations', round: 7, step: 3, micro: 2, B, T, C });
    expect(Array.from(out.data, (v, i) => Object.is(v, data[i])).every(Boolean)).toBe(true);
    expect(out.targets).toEqual(input.targets);
    // grads: no targets; an unaligned view decodes the same
    const g = message('f32', 'grads');
    const shifted = new Uint8Array(g.bytes.length + 1);
    shifted.set(g.bytes, 1);
    const back = decodeActivations(shifted.subarray(1), { kind: 'grads' });
    expect(back.targets).toBeUndefined();
    expect(back.data).toEqual(g.input.data);
    expect(peekActivationHeader(g.bytes)).toMatchObject({ kind: 'grads', micro: 2, hasTargets: false });
  });

  it('f16: each value is the nearest half of x·2^e (the reference), times 2^−e; half the bytes', () => {
    expect([f16Exponent(0), f16Exponent(1), f16Exponent(1.5), f16Exponent(2 ** 15), f16Exponent(F16_MAX), f16Exponent(3e-3)]).toEqual([0, 14, 14, -1, -1, 23]);
    expect([f16Exponent(2 ** -130), f16Exponent(3e38), f16Exponent(nextDown(2))]).toEqual([127, -113, 14]);
    for (const [scale, e] of [[3, 12], [1e-6, 33], [2e5, -4]] as const) {
      const data = randn(N * C, 11, scale);
      data[1] = scale * 2 ** -20; // 20 binades below: a half subnormal were it not scaled
      data[2] = 0;
      const { bytes } = message('f16', 'grads', data);
      expect(bytes.length).toBe(ACTIVATION_HEADER_BYTES + 2 * N * C + 4);
      expect(peekActivationHeader(bytes).exponent).toBe(e);
      const out = decodeActivations(bytes);
      let maxRel = 0;
      for (let i = 0; i < data.length; i++) {
        expect(out.data[i]).toBe(refF16(data[i] * 2 ** e) * 2 ** -e);
        if (data[i] !== 0) maxRel = Math.max(maxRel, Math.abs(out.data[i] - data[i]) / Math.abs(data[i]));
      }
      console.log(`f16 codec, values of scale ${scale}: exponent ${e}, max relative error ${maxRel.toExponential(2)} (bound 2^-11 = ${(2 ** -11).toExponential(2)})`);
      expect(maxRel).toBeLessThanOrEqual(2 ** -11);
    }
    // unscaled f16 would have flushed these gradients; the exponent keeps 11 bits
    const tiny = new Float32Array([1e-9, -3e-8, 2e-10, 7e-9]);
    const back = decodeActivations(encodeActivations({ mode: 'f16', kind: 'grads', round: 0, step: 0, micro: 0, B: 1, T: 1, C: 4, data: tiny })).data;
    for (let i = 0; i < 4; i++) expect(Math.abs(back[i] - tiny[i]) / Math.abs(tiny[i])).toBeLessThanOrEqual(2 ** -11);
    expect(f16BitsToF32(f32ToF16Bits(1e-9))).toBe(0);
  });

  it('refuses NaN / Inf in any mode and malformed inputs', () => {
    const base = { kind: 'grads' as const, round: 0, step: 0, micro: 0, B: 1, T: 1, C: 2 };
    // f16 cannot overflow: the exponent brings the largest value under 2^15
    const big = decodeActivations(encodeActivations({ ...base, mode: 'f16', data: new Float32Array([1, 3e38]) })).data;
    expect(Math.abs(big[1] - 3e38) / 3e38).toBeLessThanOrEqual(2 ** -11);
    for (const mode of ['f32', 'f16', 'int8'] as const) {
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        try {
          encodeActivations({ ...base, mode, data: new Float32Array([0, bad]) });
          throw new Error('accepted');
        } catch (e) {
          expect((e as ActivationError).reason).toBe('nonfinite');
        }
      }
    }
    expect(() => encodeActivations({ ...base, mode: 'f32', data: new Float32Array(3) })).toThrow(/B·T·C = 2/);
    expect(() => encodeActivations({ ...base, kind: 'activations', mode: 'f32', data: new Float32Array(2) })).toThrow(/carries B·T = 1 targets/);
    expect(() => encodeActivations({ ...base, mode: 'f32', data: new Float32Array(2), targets: new Int32Array(1) })).toThrow(/no targets/);
    expect(() => encodeActivations({ ...base, mode: 'f32', B: 0, data: new Float32Array(0) })).toThrow(/B must be a positive u32/);
  });

  it('int8: per-row absmax scale, symmetric codes, error ≤ half a step; zero rows stay zero', () => {
    const data = randn(N * C, 13, 2);
    for (let c = 0; c < C; c++) data[C + c] = 0; // row 1 all zero
    data[2 * C] = -40; // a row with an outlier
    const { bytes } = message('int8', 'activations', data);
    expect(bytes.length).toBe(ACTIVATION_HEADER_BYTES + 4 * N + 4 * N + N * C + 4);
    const out = decodeActivations(bytes);
    let worst = 0;
    for (let r = 0; r < N; r++) {
      let absmax = 0;
      for (let c = 0; c < C; c++) absmax = Math.max(absmax, Math.abs(data[r * C + c]));
      const scale = absmax / 127;
      for (let c = 0; c < C; c++) {
        const err = Math.abs(out.data[r * C + c] - data[r * C + c]);
        expect(err).toBeLessThanOrEqual(scale / 2 * (1 + 1e-6) + 1e-30);
        if (scale > 0) worst = Math.max(worst, err / scale);
      }
    }
    for (let c = 0; c < C; c++) expect(out.data[C + c]).toBe(0);
    expect(out.data[2 * C]).toBeCloseTo(-40, 4);
    console.log(`int8 codec: max error ${worst.toFixed(4)} of a step (bound 0.5), ${bytes.length} bytes vs ${activationMessageBytes('f32', B, T, C, true)} f32`);
  });

  it('rejects every corruption with its reason', () => {
    const { bytes } = message('f32');
    const good = () => bytes.slice();
    const edit = (f: (b: Uint8Array, dv: DataView) => void, seal = false) => {
      const b = good();
      f(b, new DataView(b.buffer));
      return seal ? reseal(b) : b;
    };
    const none: ActivationExpectations = {};
    decodeActivations(good(), { kind: 'activations', round: 7, step: 3, micro: 2, B, T, C, vocabSize: V, maxBytes: bytes.length, mode: 'f32' });

    rejects(good(), { maxBytes: bytes.length - 1 }, 'size', /exceeds the limit/);
    rejects(good().subarray(0, 3), none, 'truncated', /magic/);
    rejects(edit((b) => (b[0] = 0x58)), none, 'magic');
    rejects(edit((b, dv) => dv.setUint16(4, 2, true)), none, 'version', /version 2/);
    rejects(good().subarray(0, 30), none, 'truncated', /header/);
    rejects(edit((b) => (b[6] = 3)), none, 'header', /unknown mode 3/);
    rejects(edit((b) => (b[7] = 2)), none, 'header', /unknown kind 2/);
    rejects(edit((b) => (b[32] = 3)), none, 'header', /unknown flags/);
    rejects(edit((b) => (b[34] = 1)), none, 'header', /reserved/);
    rejects(edit((b) => (b[33] = 1)), none, 'header', /exponent 1 in a f32 message/);
    rejects(edit((b, dv) => dv.setUint32(24, 0, true)), none, 'header', /zero dimension/);
    rejects(edit((b, dv) => { dv.setUint32(20, 1 << 15, true); dv.setUint32(24, 1 << 15, true); }), none, 'size', /exceeds/);
    rejects(edit((b) => (b[32] = 0)), none, 'targets', /must carry targets/);
    rejects(edit((b) => (b[7] = 1)), none, 'targets', /must not carry targets/);
    // expectations
    rejects(good(), { kind: 'grads' }, 'kind');
    rejects(good(), { mode: 'f16' }, 'mode');
    rejects(good(), { round: 8 }, 'round', /round 7, expected round 8/);
    rejects(good(), { step: 4 }, 'step');
    rejects(good(), { micro: 0 }, 'micro');
    rejects(good(), { B: 3 }, 'shape', /\[2, 3, 8\], expected \[3, 3, 8\]/);
    rejects(good(), { T: 4 }, 'shape');
    rejects(good(), { C: 9 }, 'shape');
    rejects(good(), { targets: false }, 'targets', /unexpected targets/);
    // length and checksum
    rejects(good().subarray(0, bytes.length - 1), none, 'truncated', /header says/);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    rejects(longer, none, 'length', /1 more than/);
    rejects(edit((b) => (b[ACTIVATION_HEADER_BYTES + 4 * N + 5] ^= 1)), none, 'crc');
    rejects(edit((b) => (b[8] ^= 1)), none, 'crc'); // a changed round is caught by the checksum
    rejects(edit((b) => (b[8] ^= 1), true), { round: 7 }, 'round'); // and by the round check when resealed
    // a huge header with few bytes: rejected by length before any allocation
    const huge = edit((b, dv) => { dv.setUint32(20, 1 << 14, true); dv.setUint32(24, 1 << 14, true); dv.setUint32(28, 1, true); });
    rejects(huge, none, 'truncated');
    expect(MAX_ACTIVATION_ELEMENTS).toBe(1 << 28);
    // values behind a valid checksum
    const t0 = ACTIVATION_HEADER_BYTES;
    rejects(edit((b, dv) => dv.setInt32(t0 + 4, V, true), true), { vocabSize: V }, 'targets', /target 50 at position 1/);
    rejects(edit((b, dv) => dv.setInt32(t0, -2, true), true), none, 'targets', /target -2/);
    const x0 = t0 + 4 * N;
    rejects(edit((b, dv) => dv.setFloat32(x0 + 8, Number.NaN, true), true), none, 'nonfinite', /index 2/);
    rejects(edit((b, dv) => dv.setFloat32(x0, Number.NEGATIVE_INFINITY, true), true), none, 'nonfinite');

    const h = message('f16', 'grads').bytes;
    const h0 = ACTIVATION_HEADER_BYTES;
    const hedit = (f: (dv: DataView) => void) => {
      const b = h.slice();
      f(new DataView(b.buffer));
      return reseal(b);
    };
    rejects(hedit((dv) => dv.setUint16(h0 + 6, 0x7c00, true)), none, 'nonfinite', /Infinity at index 3/);
    rejects(hedit((dv) => dv.setUint16(h0, 0xfe01, true)), none, 'nonfinite', /NaN/);
    rejects(hedit((dv) => dv.setInt8(33, -128)), none, 'header', /exponent -128/);
    rejects(hedit((dv) => dv.setInt8(33, -127)), none, 'nonfinite', /Infinity/); // halves · 2^127 overflow f32

    const q = message('int8', 'grads').bytes;
    const q0 = ACTIVATION_HEADER_BYTES;
    const qedit = (f: (dv: DataView) => void) => {
      const b = q.slice();
      f(new DataView(b.buffer));
      return reseal(b);
    };
    rejects(qedit((dv) => dv.setInt8(q0 + 4 * N + 5, -128)), none, 'value', /−128 at row 0, channel 5/);
    rejects(qedit((dv) => dv.setFloat32(q0 + 4, -1, true)), none, 'value', /row 1 has scale -1/);
    rejects(qedit((dv) => dv.setFloat32(q0 + 4, Number.NaN, true)), none, 'value');
    rejects(qedit((dv) => dv.setFloat32(q0 + 4, Number.POSITIVE_INFINITY, true)), none, 'value');
    rejects(qedit((dv) => { dv.setFloat32(q0, 3e38, true); dv.setInt8(q0 + 4 * N, 127); }), none, 'nonfinite');
    expect(() => peekActivationHeader('x' as never)).toThrow(ActivationError);
  });
});
