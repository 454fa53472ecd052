import { describe, expect, it } from 'vitest';
import {
  attentionBackward,
  attentionBackwardRef,
  attentionForward,
  attentionForwardRef,
  attentionTiles,
  attentionVariant,
  tileBytes,
  type AttentionDims,
} from '../../src/kernels/attention.ts';
import { FA2_TILE_BYTES, fa2Threads, fa2TileBytes, fa2Tiles } from '../../src/kernels/attention-fa2.ts';
import {
  attentionNaiveBackward,
  attentionNaiveForward,
} from '../../src/kernels/attention-naive.ts';
import { KernelInputError } from '../../src/gpu/errors.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { expectClose, finiteDiff, poisoned, randn, testGpu } from '../helpers/gpu.ts';

// Bounds: 1e-5 relative for every output. The longest f32 sums here are dk and dv (over all
// later queries of every head in the group, up to 4·T = 1200 terms) and the D-term dots; they
// land near 5e-7, so no output needs a looser bound.
const FWD_BOUND = 1e-5;
const BWD_BOUND = 1e-5;

interface Case extends AttentionDims {
  name: string;
  /** Use the tiles a hardware adapter with this device's limits picks (a software one picks ≤ 16). */
  hardwareTiles?: boolean;
}

// Variant 2 (attention_fa2.wgsl) runs wherever D is a multiple of 4 up to 64; variant 1
// (attention.wgsl) takes the rest (D = 33, 128 here) and forced variant 1 tiles. Each distinct
// (D, tile) compiles its own pipelines, which is most of this file's time on SwiftShader, so
// the cases reuse a few shapes.
const CASES: Case[] = [
  { name: 'v2 T=1 MHA', B: 1, T: 1, H: 2, Hkv: 2, D: 8 },
  { name: 'v2 T=7 GQA', B: 2, T: 7, H: 4, Hkv: 2, D: 16 },
  { name: 'v2 T=65 MHA D=64', B: 2, T: 65, H: 2, Hkv: 2, D: 64 },
  { name: 'v2 T=65 GQA D=8', B: 1, T: 65, H: 4, Hkv: 2, D: 8 },
  { name: 'v2 T=300 MQA D=16 (several default blocks)', B: 1, T: 300, H: 4, Hkv: 1, D: 16 },
  // Small forced shapes: many query and key tiles, partial last tiles, rows that skip tiles.
  {
    name: 'v2 T=37 GQA D=12, 8 rows × 4-row tiles, scale 0.3',
    B: 2,
    T: 37,
    H: 4,
    Hkv: 2,
    D: 12,
    scale: 0.3,
    fa2Tiles: { forward: { rows: 8, tile: 4 }, dq: { rows: 8, tile: 4 }, dkdv: { rows: 4, tile: 8 } },
  },
  {
    name: 'v2 T=37 GQA D=12, 4 rows × 8-key tiles, keys split 2 ways',
    B: 1,
    T: 37,
    H: 4,
    Hkv: 2,
    D: 12,
    fa2Tiles: { forward: { rows: 4, tile: 8, split: 2 }, dq: { rows: 4, tile: 8, split: 2 }, dkdv: { rows: 4, tile: 8 } },
  },
  { name: 'v1 T=33 MQA D=33, the tiles a hardware adapter picks', B: 1, T: 33, H: 4, Hkv: 1, D: 33, hardwareTiles: true },
  { name: 'v1 T=20 D=128', B: 1, T: 20, H: 2, Hkv: 1, D: 128 },
  {
    name: 'v1 T=65 GQA D=33, tiles 8×4',
    B: 2,
    T: 65,
    H: 4,
    Hkv: 2,
    D: 33,
    tiles: { forward: { BR: 8, BC: 4 }, dq: { BR: 8, BC: 4 }, dkdv: { BR: 4, BC: 8 } },
  },
  {
    name: 'v1 T=33 MHA D=8, tiles 4×8, scale 0.3',
    B: 2,
    T: 33,
    H: 2,
    Hkv: 2,
    D: 8,
    scale: 0.3,
    tiles: { forward: { BR: 4, BC: 8 }, dq: { BR: 4, BC: 8 }, dkdv: { BR: 8, BC: 4 } },
  },
  // dK/dV split over queries (a hardware adapter's choice where key blocks are few), forced
  // here on the pipelines of the cases above (the split is a uniform): bwd_dkdv writes
  // partials, bwd_dq sums them. 3 ways over 2 heads × 1 tile leaves the last key block's
  // first split empty; 4 ways over the software tiles.
  {
    name: 'v2 T=37 GQA D=12, 4 rows × 8-key tiles, dK/dV queries split 3 ways',
    B: 1,
    T: 37,
    H: 4,
    Hkv: 2,
    D: 12,
    fa2Tiles: { forward: { rows: 4, tile: 8, split: 2 }, dq: { rows: 4, tile: 8, split: 2 }, dkdv: { rows: 4, tile: 8, split: 3 } },
  },
  {
    name: 'v2 T=65 GQA D=8, dK/dV queries split 4 ways',
    B: 2,
    T: 65,
    H: 4,
    Hkv: 2,
    D: 8,
    fa2Tiles: { forward: { rows: 16, tile: 16 }, dq: { rows: 16, tile: 16 }, dkdv: { rows: 16, tile: 16, split: 4 } },
  },
];

function inputs(d: AttentionDims, seed: number) {
  const nq = d.B * d.T * d.H * d.D;
  const nk = d.B * d.T * d.Hkv * d.D;
  return { q: randn(nq, seed), k: randn(nk, seed + 1), v: randn(nk, seed + 2), dout: randn(nq, seed + 3) };
}

type Forward = typeof attentionForward;
type Backward = typeof attentionBackward;

async function check(gpu: Gpu, label: string, d: AttentionDims, seed: number, fwd: Forward, bwd: Backward) {
  const x = inputs(d, seed);
  const { B, T, H, Hkv, D } = d;
  const q = gpu.tensor([B, T, H, D], 'f32', 'q', x.q);
  const k = gpu.tensor([B, T, Hkv, D], 'f32', 'k', x.k);
  const v = gpu.tensor([B, T, Hkv, D], 'f32', 'v', x.v);
  const dout = gpu.tensor([B, T, H, D], 'f32', 'dout', x.dout);
  const out = poisoned(gpu, [B, T, H, D], 'out');
  const lse = poisoned(gpu, [B, H, T], 'lse');
  const dq = poisoned(gpu, [B, T, H, D], 'dq');
  const dk = poisoned(gpu, [B, T, Hkv, D], 'dk');
  const dv = poisoned(gpu, [B, T, Hkv, D], 'dv');
  fwd(gpu, q, k, v, out, lse, d);
  bwd(gpu, q, k, v, out, lse, dout, dq, dk, dv, d);
  const [o, l, gq, gk, gv] = [await gpu.readF32(out), await gpu.readF32(lse), await gpu.readF32(dq), await gpu.readF32(dk), await gpu.readF32(dv)];
  const f = attentionForwardRef(x.q, x.k, x.v, d);
  const g = attentionBackwardRef(x.q, x.k, x.v, x.dout, d);
  expectClose(`${label} out`, o, f.out, FWD_BOUND);
  expectClose(`${label} lse`, l, f.lse, FWD_BOUND);
  expectClose(`${label} dq`, gq, g.dq, BWD_BOUND);
  expectClose(`${label} dk`, gk, g.dk, BWD_BOUND);
  expectClose(`${label} dv`, gv, g.dv, BWD_BOUND);
  for (const t of [q, k, v, dout, out, lse, dq, dk, dv]) t.release();
}

describe('attention (flash)', () => {
  it('picks tiles that fit this GPU', async () => {
    const gpu = await testGpu();
    for (const D of [8, 33, 64, 128]) {
      const t = attentionTiles(gpu, D);
      console.log(`D=${D} tiles: forward ${JSON.stringify(t.forward)} dq ${JSON.stringify(t.dq)} dkdv ${JSON.stringify(t.dkdv)}`);
      for (const s of [t.forward, t.dq, t.dkdv]) expect(s.BR * s.BC).toBeGreaterThan(0);
      if (gpu.info.isSoftware) for (const s of [t.forward, t.dq, t.dkdv]) expect(Math.max(s.BR, s.BC)).toBeLessThanOrEqual(16);
    }
  });

  it('finds tiles within the WebGPU minimum limits (16 KiB, 256 invocations) up to D = 128', () => {
    const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 };
    const small = { limits } as unknown as Gpu;
    for (const D of [1, 8, 33, 64, 100, 128]) {
      const t = attentionTiles(small, D);
      for (const kernel of ['forward', 'dq', 'dkdv'] as const) {
        expect(tileBytes(kernel, D, t[kernel]), `${kernel} D=${D}`).toBeLessThanOrEqual(16384);
      }
    }
  });

  it('runs variant 2 where D is a multiple of 4 up to 64 (every preset), variant 1 elsewhere or when its tiles are asked for', () => {
    const d = { B: 1, T: 8, H: 2, Hkv: 1 };
    for (const D of [4, 16, 64]) expect(attentionVariant('t', { ...d, D }), `D=${D}`).toBe(2);
    for (const D of [2, 33, 68, 128]) expect(attentionVariant('t', { ...d, D }), `D=${D}`).toBe(1);
    expect(attentionVariant('t', { ...d, D: 16, tiles: { forward: { BR: 4, BC: 4 } } })).toBe(1);
    expect(attentionVariant('t', { ...d, D: 16, variant: 1 })).toBe(1);
    expect(attentionVariant('t', { ...d, D: 16, fa2Tiles: { forward: { rows: 8, tile: 4 } } })).toBe(2);
    expect(() => attentionVariant('t', { ...d, D: 33, variant: 2 })).toThrow(/variant 2: head size D = 33 is not a multiple of 4/);
    expect(() => attentionVariant('t', { ...d, D: 128, variant: 2 })).toThrow(/over variant 2's maximum of 64/);
  });

  it('picks variant 2 shapes within 16 KiB of workgroup memory and 256 invocations, 64 rows where the grid still has 256 workgroups', () => {
    const limits = { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256 };
    const small = { limits, info: { isSoftware: false, vendor: 'nvidia', architecture: '', description: '' } } as unknown as Gpu;
    for (const D of [4, 16, 64]) {
      for (const [B, T, rows] of [[1, 64, 32], [8, 4096, 64]]) {
        const t = fa2Tiles(small, { B, T, H: 4, Hkv: 2, D });
        for (const k of ['forward', 'dq', 'dkdv'] as const) {
          expect(fa2TileBytes(k, D, t[k]), `${k} D=${D}`).toBeLessThanOrEqual(16384);
          expect(2 * t[k].tile * D * 4, `${k} D=${D} row tiles`).toBeLessThanOrEqual(FA2_TILE_BYTES);
          expect(fa2Threads(k, t[k])).toBeLessThanOrEqual(256);
        }
        expect(t.forward.rows, `B=${B} T=${T}`).toBe(rows);
        // Few rows (4·64 here) on a hardware adapter: 2 threads per query row in forward and
        // dq; dkdv's 4 key blocks (under the 256-workgroup target) split their queries 4 ways.
        expect([t.forward.split, t.dq.split, t.dkdv.split], `B=${B} T=${T}`).toEqual(T === 64 ? [2, 2, 4] : [undefined, undefined, undefined]);
      }
    }
    // D = 64: a 32-key tile of k and v is 16 KiB; D = 16 takes 64 keys.
    expect(fa2Tiles(small, { B: 1, T: 64, H: 1, Hkv: 1, D: 64 }).forward.tile).toBe(32);
    expect(fa2Tiles(small, { B: 1, T: 64, H: 1, Hkv: 1, D: 16 }).forward.tile).toBe(64);
    // A software adapter (a CPU) takes 16 rows and 16-row tiles at any size, never split.
    const cpu = { limits, info: { ...small.info, isSoftware: true } } as unknown as Gpu;
    for (const [B, T] of [[1, 64], [8, 4096]]) {
      const t = fa2Tiles(cpu, { B, T, H: 4, Hkv: 2, D: 64 });
      expect([t.forward, t.dq, t.dkdv]).toEqual([{ rows: 16, tile: 16 }, { rows: 16, tile: 16 }, { rows: 16, tile: 16 }]);
    }
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('forward and backward, %s', async (_name, c, i) => {
    const gpu = await testGpu();
    const dims = c.hardwareTiles ? { ...c, tiles: attentionTiles({ limits: gpu.limits } as Gpu, c.D) } : c;
    await check(gpu, c.name, dims, 100 + 10 * i, attentionForward, attentionBackward);
  });
});

describe('attention (naive, materialised)', () => {
  const naive: Case[] = [
    { name: 'naive T=1', B: 1, T: 1, H: 2, Hkv: 2, D: 8 },
    { name: 'naive T=33 GQA D=33', B: 2, T: 33, H: 4, Hkv: 2, D: 33 },
    { name: 'naive T=70 MQA D=16', B: 1, T: 70, H: 4, Hkv: 1, D: 16 },
  ];
  it.each(naive.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const gpu = await testGpu();
    await check(gpu, c.name, c, 500 + 10 * i, attentionNaiveForward, attentionNaiveBackward);
  });
});

describe('attention references', () => {
  it('backward reference matches finite differences of sum(out ∘ R)', () => {
    const d: AttentionDims = { B: 1, T: 4, H: 2, Hkv: 1, D: 3 };
    const x = inputs(d, 7);
    const R = Float64Array.from(x.dout);
    const q = Float64Array.from(x.q);
    const k = Float64Array.from(x.k);
    const v = Float64Array.from(x.v);
    const g = attentionBackwardRef(q, k, v, R, d);
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
      const { out } = attentionForwardRef(qq, kk, vv, d);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * R[i];
      return s;
    };
    const grads: [string, Float64Array, Float64Array, (a: Float64Array) => number][] = [
      ['dq', q, g.dq, (a) => loss(a, k, v)],
      ['dk', k, g.dk, (a) => loss(q, a, v)],
      ['dv', v, g.dv, (a) => loss(q, k, a)],
    ];
    for (const [name, arr, grad, f] of grads) {
      const fd = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) fd[i] = finiteDiff(f, arr, i);
      expectClose(`finite differences ${name}`, grad, fd, 1e-7);
    }
  });

  it('forward reference: T=1 copies v, lse is the one score', () => {
    const d: AttentionDims = { B: 1, T: 1, H: 2, Hkv: 1, D: 2, scale: 0.5 };
    const { out, lse } = attentionForwardRef([1, 2, 3, 4], [1, -1], [5, 6], d);
    expect(Array.from(out)).toEqual([5, 6, 5, 6]);
    expect(Array.from(lse)).toEqual([-0.5, -0.5]);
  });
});

describe('attention input checks', () => {
  it('rejects bad inputs before dispatch', async () => {
    const gpu = await testGpu();
    const d: AttentionDims = { B: 1, T: 5, H: 4, Hkv: 2, D: 8 };
    const q = gpu.tensor([1, 5, 4, 8]);
    const k = gpu.tensor([1, 5, 2, 8]);
    const v = gpu.tensor([1, 5, 2, 8]);
    const out = gpu.tensor([1, 5, 4, 8]);
    const lse = gpu.tensor([1, 4, 5]);
    const dout = gpu.tensor([1, 5, 4, 8]);
    const dq = gpu.tensor([1, 5, 4, 8]);
    const dk = gpu.tensor([1, 5, 2, 8]);
    const dv = gpu.tensor([1, 5, 2, 8]);
    const qi = gpu.tensor([1, 5, 4, 8], 'i32');
    await gpu.sync();
    const before = gpu.pendingDispatches;
    const fwdCases: [string, () => void, RegExp][] = [
      ['H % Hkv', () => attentionForward(gpu, q, k, v, out, lse, { ...d, Hkv: 3 }), /multiple of Hkv/],
      ['D > 128', () => attentionForward(gpu, q, k, v, out, lse, { ...d, D: 129 }), /maximum of 128/],
      ['T = 0', () => attentionForward(gpu, q, k, v, out, lse, { ...d, T: 0 }), /T must be a positive integer/],
      ['wrong k size', () => attentionForward(gpu, q, q, v, out, lse, d), /k must hold/],
      ['wrong lse size', () => attentionForward(gpu, q, k, v, out, dout, d), /lse must hold/],
      ['dtype', () => attentionForward(gpu, qi, k, v, out, lse, d), /q must be f32/],
      ['out aliases q', () => attentionForward(gpu, q, k, v, q, lse, d), /out and q must be different/],
      ['bad scale', () => attentionForward(gpu, q, k, v, out, lse, { ...d, scale: Number.NaN }), /scale/],
      ['bad tiles', () => attentionForward(gpu, q, k, v, out, lse, { ...d, tiles: { forward: { BR: 4096, BC: 64 } } }), /tiles\.forward/],
      ['bad variant', () => attentionForward(gpu, q, k, v, out, lse, { ...d, variant: 3 as 1 }), /variant must be/],
      ['variant 1 with fa2Tiles', () => attentionForward(gpu, q, k, v, out, lse, { ...d, variant: 1, fa2Tiles: { forward: { rows: 8, tile: 8 } } }), /fa2Tiles are variant 2/],
      ['both tile kinds', () => attentionForward(gpu, q, k, v, out, lse, { ...d, tiles: { forward: { BR: 4, BC: 4 } }, fa2Tiles: { forward: { rows: 8, tile: 8 } } }), /not both/],
      ['bad fa2Tiles', () => attentionForward(gpu, q, k, v, out, lse, { ...d, fa2Tiles: { forward: { rows: 8, tile: 128 } } }), /fa2Tiles\.forward.*at most 64/],
      ['split past the tile', () => attentionForward(gpu, q, k, v, out, lse, { ...d, fa2Tiles: { forward: { rows: 8, tile: 8, split: 3 } } }), /split 3 must divide/],
      ['split partials too many', () => attentionForward(gpu, q, k, v, out, lse, { ...d, fa2Tiles: { forward: { rows: 8, tile: 4, split: 2 } } }), /must fit/],
      ['fa2Tiles over the invocations', () => attentionForward(gpu, q, k, v, out, lse, { ...d, fa2Tiles: { forward: { rows: 4096, tile: 8 } } }), /threads per workgroup/],
      ['naive D > 128', () => attentionNaiveForward(gpu, q, k, v, out, lse, { ...d, D: 200 }), /maximum/],
      ['naive wrong v', () => attentionNaiveForward(gpu, q, k, q, out, lse, d), /v must hold/],
    ];
    const bwdCases: [string, () => void, RegExp][] = [
      ['dk aliases dv', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dk, d), /dk and dv must be different/],
      ['dq aliases dout', () => attentionBackward(gpu, q, k, v, out, lse, dout, dout, dk, dv, d), /dq and dout must be different/],
      ['wrong dv size', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dq, d), /dv must hold/],
      ['H % Hkv', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, { ...d, H: 5 }), /multiple of Hkv/],
      ['D not integer', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, { ...d, D: 7.5 }), /D must be/],
      ['bad fa2Tiles.dkdv', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, { ...d, fa2Tiles: { dkdv: { rows: 0, tile: 8 } } }), /fa2Tiles\.dkdv.*positive integers/],
      ['dkdv split too many', () => attentionBackward(gpu, q, k, v, out, lse, dout, dq, dk, dv, { ...d, fa2Tiles: { dkdv: { rows: 4, tile: 8, split: 5 } } }), /at most 4 ways/],
      ['naive dtype', () => attentionNaiveBackward(gpu, q, k, v, out, lse, qi, dq, dk, dv, d), /dout must be f32/],
    ];
    for (const [name, call, message] of [...fwdCases, ...bwdCases]) {
      expect(call, name).toThrow(KernelInputError);
      expect(call, name).toThrow(message);
      expect(gpu.pendingDispatches, name).toBe(before);
    }
    for (const t of [q, k, v, out, lse, dout, dq, dk, dv, qi]) t.release();
  });
});
