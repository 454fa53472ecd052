// The outer step on the GPU: SparseLoCo replicas end identical and equal to θ_start − α·Δ̄
// computed on the CPU from the very messages they exchanged; a corrupted message is dropped
// and counted; dense DiLoCo's Nesterov step matches its CPU formula.
import { describe, expect, it } from 'vitest';
import { parameterLayout, type ModelConfig } from '../../src/model/config.ts';
import { aggregate } from '../../src/sparseloco/aggregate.ts';
import { DilocoOuter, SparseLoCoOuter } from '../../src/sparseloco/outer.ts';
import { decodeUpdate } from '../../src/sparseloco/wire.ts';
import { configHash } from '../../src/model/identity.ts';
import type { Tensor } from '../../src/gpu/tensor.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { expectClose, randn, testGpu } from '../helpers/gpu.ts';

const cfg: ModelConfig = {
  vocabSize: 37, dim: 32, layers: 1, heads: 2, kvHeads: 1, mlpHidden: 48, seqLen: 16,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: false,
};
const layout = parameterLayout(cfg);

/** Parameters of one replica: a shared start plus its own drift (as if it had trained). */
function replicaParams(gpu: Gpu, start: Map<string, Float32Array>, seed: number): Map<string, Tensor> {
  return new Map(layout.map((s, i) => {
    const drift = randn(s.size, seed * 100 + i, 0.05);
    const data = start.get(s.name)!.map((v, j) => v - drift[j]);
    return [s.name, gpu.tensor(s.shape, 'f32', s.name, data)];
  }));
}

describe('outer step', () => {
  it('SparseLoCo: replicas apply the aggregate of what was sent and end identical', async () => {
    const gpu = await testGpu();
    const start = new Map(layout.map((s, i) => [s.name, randn(s.size, 7 + i)]));
    // Each replica captures θ_start from params equal to `start`, then drifts.
    const params = [0, 1, 2].map(() => new Map(layout.map((s) => [s.name, gpu.tensor(s.shape, 'f32', s.name, start.get(s.name)!)])));
    const hash = configHash(cfg);
    const replicas = params.map((p) => new SparseLoCoOuter(gpu, layout, p, { alpha: 1, beta: 0.95, k: 64 }, hash));
    params.forEach((p, r) => {
      const drifted = replicaParams(gpu, start, r + 1);
      for (const s of layout) gpu.copy(drifted.get(s.name)!, p.get(s.name)!);
    });
    const messages: Uint8Array[] = [];
    for (const rep of replicas) messages.push(await rep.compress(0));

    // A fourth message, corrupted in transit: dropped and counted, never applied.
    const bad = messages[0].slice();
    bad[bad.length - 10] ^= 0xff;
    const reports = replicas.map((rep) => rep.applyUpdates([...messages, bad], 0));
    for (const report of reports) {
      expect(report.accepted).toBe(3);
      expect(report.rejected).toHaveLength(1);
      expect(report.rejected[0].index).toBe(3);
    }

    const expectLayout = layout.map((s) => ({ name: s.name, shape: s.shape }));
    const mean = aggregate(messages.map((m) => decodeUpdate(m, { configHash: hash, round: 0, layout: expectLayout }).tensors), expectLayout);
    const after = await Promise.all(params.map(async (p) => new Map(await Promise.all(layout.map(async (s) => [s.name, await gpu.readF32(p.get(s.name)!)] as const)))));
    for (const [i, s] of layout.entries()) {
      const expected = Float64Array.from(start.get(s.name)!);
      const m = mean[i];
      for (let j = 0; j < m.indices.length; j++) expected[m.indices[j]] -= m.values[j];
      expectClose(`θ ${s.name}`, after[0].get(s.name)!, expected, 1e-6);
      // Identical, bit for bit, on every replica.
      for (const other of after.slice(1)) expect(Array.from(other.get(s.name)!)).toEqual(Array.from(after[0].get(s.name)!));
    }
    for (const rep of replicas) rep.destroy();
  });

  it('SparseLoCo: a message for another round or model is rejected with its reason', async () => {
    const gpu = await testGpu();
    const start = new Map(layout.map((s, i) => [s.name, randn(s.size, 50 + i)]));
    const p = new Map(layout.map((s) => [s.name, gpu.tensor(s.shape, 'f32', s.name, start.get(s.name)!)]));
    const rep = new SparseLoCoOuter(gpu, layout, p, undefined, configHash(cfg));
    const stale = await rep.compress(3);
    const report = rep.applyUpdates([stale], 4);
    expect(report.accepted).toBe(0);
    expect(report.rejected[0].reason).toBe('round');
    rep.destroy();
  });

  it('DiLoCo: Nesterov outer step on the mean pseudo-gradient, then every replica restarts from it', async () => {
    const gpu = await testGpu();
    const start = new Map(layout.map((s, i) => [s.name, randn(s.size, 90 + i)]));
    const init = new Map(layout.map((s) => [s.name, gpu.tensor(s.shape, 'f32', s.name, start.get(s.name)!)]));
    const outer = new DilocoOuter(gpu, layout, init, { lr: 0.7, momentum: 0.9 });
    const replicas = [1, 2].map((r) => replicaParams(gpu, start, r));
    const read = async (m: Map<string, Tensor>, name: string) => gpu.readF32(m.get(name)!);
    const theta = new Map(layout.map((s) => [s.name, Float64Array.from(start.get(s.name)!)]));
    const v = new Map(layout.map((s) => [s.name, new Float64Array(s.size)]));
    for (let round = 0; round < 2; round++) {
      const now = await Promise.all(replicas.map(async (m) => new Map(await Promise.all(layout.map(async (s) => [s.name, await read(m, s.name)] as const)))));
      outer.step(replicas);
      for (const s of layout) {
        const t = theta.get(s.name)!;
        const vel = v.get(s.name)!;
        for (let j = 0; j < s.size; j++) {
          const delta = t[j] - (now[0].get(s.name)![j] + now[1].get(s.name)![j]) / 2;
          vel[j] = 0.9 * vel[j] + delta;
          t[j] -= 0.7 * (delta + 0.9 * vel[j]);
        }
        for (const m of replicas) expectClose(`round ${round} ${s.name}`, await read(m, s.name), t, 1e-5);
      }
      // The replicas drift again before the next round.
      for (const [r, m] of replicas.entries()) {
        for (const [i, s] of layout.entries()) {
          const cur = await read(m, s.name);
          const drift = randn(s.size, 1000 * (round + 1) + 10 * r + i, 0.05);
          gpu.write(m.get(s.name)!, cur.map((x, j) => x - drift[j]));
        }
      }
    }
    outer.destroy();
  });
});
