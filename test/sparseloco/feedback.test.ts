import { describe, expect, it } from 'vitest';
import { ErrorFeedback, applySparse } from '../../src/sparseloco/feedback.ts';
import { chunkGrid, flatIndex, keptInChunk, type ChunkGrid } from '../../src/kernels/chunks.ts';
import { topkRef } from '../../src/kernels/topk.ts';
import { scatterAddRef } from '../../src/kernels/scatter.ts';
import type { ParamSpec } from '../../src/model/config.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { expectClose, randn, rejects, testGpu } from '../helpers/gpu.ts';

const spec = (name: string, shape: number[]): ParamSpec => ({
  name, shape, size: shape.reduce((a, b) => a * b, 1), weightDecay: shape.length === 2, init: { kind: 'normal', std: 0.02 },
});
const LAYOUT = [spec('w', [130, 200]), spec('norm', [300]), spec('v', [5000]), spec('one', [1, 1])];

function upload(gpu: Gpu, data: Map<string, Float32Array>): Map<string, Tensor> {
  return new Map([...data].map(([name, d]) => [name, gpu.tensor(LAYOUT.find((s) => s.name === name)!.shape, 'f32', name, d)]));
}

/** The CPU top-k of e (float64) as flat indices and values, chunk by chunk. */
function cpuSelect(e: Float64Array, g: ChunkGrid, k: number): { indices: number[]; values: number[]; local: number[] } {
  const ref = topkRef(e, g, k);
  const out = { indices: [] as number[], values: [] as number[], local: [] as number[] };
  for (let c = 0; c < g.count; c++) {
    for (let s = 0; s < keptInChunk(g, c, k); s++) {
      out.local.push(ref.local[c * k + s]);
      out.indices.push(flatIndex(g, c, ref.local[c * k + s]));
      // The reference keeps e's float64 value (topkRef rounds to f32 only to rank).
      out.values.push(e[flatIndex(g, c, ref.local[c * k + s])]);
    }
  }
  return out;
}

describe('ErrorFeedback', () => {
  it.each(['gpu', 'cpu'] as const)('two rounds match a float64 simulation of e (β·e + Δ, top-k on the %s, subtract)', async (topk) => {
    const gpu = await testGpu();
    const beta = 0.95;
    const k = 64;
    const ef = new ErrorFeedback(gpu, LAYOUT, { beta, k, topk });
    expect(ef.topkOn).toBe(topk);
    const eRef = new Map<string, Float64Array>(LAYOUT.map((s) => [s.name, new Float64Array(s.size)]));
    let seed = 1;
    for (let round = 0; round < 2; round++) {
      const startData = new Map(LAYOUT.map((s) => [s.name, randn(s.size, seed++, 0.02)]));
      const deltaData = new Map(LAYOUT.map((s) => [s.name, randn(s.size, seed++, 1e-3)]));
      const nowData = new Map(LAYOUT.map((s) => [s.name, startData.get(s.name)!.map((v, i) => v - deltaData.get(s.name)![i])]));
      const start = upload(gpu, startData);
      const now = upload(gpu, nowData);
      ef.accumulate(start, now);
      for (const s of LAYOUT) {
        const e = eRef.get(s.name)!;
        const st = startData.get(s.name)!;
        const nw = nowData.get(s.name)!;
        for (let i = 0; i < s.size; i++) e[i] = beta * e[i] + (st[i] - nw[i]);
      }
      const selection = await ef.select();
      expect(selection.map((t) => t.name)).toEqual(LAYOUT.map((s) => s.name));
      const sent = [];
      for (const sel of selection) {
        const g = ef.grids.get(sel.name)!;
        const ref = cpuSelect(eRef.get(sel.name)!, g, k);
        expect(sel.k).toBe(k);
        expect(sel.grid).toBe(g);
        expect(Array.from(sel.local)).toEqual(ref.local);
        expectClose(`round ${round} ${sel.name} selected values`, sel.values, ref.values, 1e-6);
        // What is "sent" differs from e (as quantisation makes it): 0.8 of each value.
        const values = sel.values.map((v) => 0.8 * v);
        const indices = Uint32Array.from(ref.indices);
        sent.push({ name: sel.name, indices, values });
        eRef.set(sel.name, scatterAddRef(eRef.get(sel.name)!, indices, values, -1));
      }
      ef.subtract(sent);
      for (const s of LAYOUT) expectClose(`round ${round} e ${s.name}`, await gpu.readF32(ef.e.get(s.name)!), eRef.get(s.name)!, 1e-6);
      for (const t of [...start.values(), ...now.values()]) t.release();
    }
    // Checkpoint round trip.
    const state = await ef.readState();
    expect([...state.keys()]).toEqual(LAYOUT.map((s) => `ef/${s.name}`));
    const other = new ErrorFeedback(gpu, LAYOUT, { beta, k });
    other.loadState(state);
    for (const s of LAYOUT) expect(await gpu.readF32(other.e.get(s.name)!)).toEqual(state.get(`ef/${s.name}`));
    expect(other.bytes).toBe(4 * LAYOUT.reduce((n, s) => n + s.size, 0));
    expect(() => other.loadState(new Map())).toThrow(/lacks error-feedback state ef\/w/);
    other.destroy();
    ef.destroy();
  });

  it('applySparse applies θ ← θ − α·Δ̄ at the given indices', async () => {
    const gpu = await testGpu();
    const g = chunkGrid([130, 200]);
    const thetaData = randn(g.rows * g.cols, 5, 0.02);
    const theta = new Map([['w', gpu.tensor([130, 200], 'f32', 'w', thetaData)]]);
    const indices = Uint32Array.from({ length: 2000 }, (_, i) => (i * 7919) % (130 * 200));
    const values = randn(2000, 6, 1e-3);
    applySparse(gpu, theta, [{ name: 'w', indices, values }], -0.7);
    expectClose('applySparse', await gpu.readF32(theta.get('w')!), scatterAddRef(thetaData, indices, values, -0.7), 1e-6);
  });

  it('rejects bad inputs before anything is recorded', async () => {
    const gpu = await testGpu();
    const ef = new ErrorFeedback(gpu, LAYOUT);
    await gpu.sync();
    const zeros = upload(gpu, new Map(LAYOUT.map((s) => [s.name, new Float32Array(s.size)])));
    await gpu.sync();
    const partial = new Map([...zeros].slice(1));
    rejects(gpu, () => ef.accumulate(partial, zeros), /thetaStart lacks w/);
    const wrong = new Map(zeros);
    wrong.set('norm', gpu.tensor([299]));
    rejects(gpu, () => ef.accumulate(zeros, wrong), /thetaNow norm must be f32 with 300 elements/);
    const ok = { name: 'norm', indices: Uint32Array.from([1, 2]), values: Float32Array.from([1, 2]) };
    rejects(gpu, () => ef.subtract([ok, { name: 'w', indices: Uint32Array.from([5, 5]), values: Float32Array.from([1, 2]) }]), /appears more than once/);
    rejects(gpu, () => ef.subtract([ok, { name: 'v', indices: Uint32Array.from([5000]), values: Float32Array.from([1]) }]), /out of range/);
    rejects(gpu, () => ef.subtract([{ name: 'nope', indices: new Uint32Array(0), values: new Float32Array(0) }]), /no tensor named nope/);
    rejects(gpu, () => ef.subtract([{ name: 'w', indices: Uint32Array.from([1]), values: new Float32Array(2) }]), /1 indices but 2 values/);
    rejects(gpu, () => ef.subtract([ok, ok]), /updated twice/);
    rejects(gpu, () => applySparse(gpu, ef.e, [ok], Number.POSITIVE_INFINITY), /scale must be finite/);
    expect(() => new ErrorFeedback(gpu, LAYOUT, { k: 0 })).toThrow(/k must be an integer/);
    expect(() => new ErrorFeedback(gpu, LAYOUT, { beta: 1.5 })).toThrow(/beta must be in/);
    expect(ef.topkOn).toBe(gpu.info.isSoftware ? 'cpu' : 'gpu');
    ef.destroy();
  });
});
