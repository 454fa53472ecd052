import { describe, expect, it } from 'vitest';
import { EMPTY_SLOT, selectTopK, topkCpu, topkPerChunk, topkRef } from '../../src/kernels/topk.ts';
import { chunkGrid, keptInChunk, type ChunkGrid } from '../../src/kernels/chunks.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { poisoned, randn, rejects, testGpu, tooSmall } from '../helpers/gpu.ts';

async function runTopk(gpu: Gpu, data: Float32Array, g: ChunkGrid, k: number): Promise<{ local: Uint32Array; values: Float32Array }> {
  const x = gpu.tensor(g.shape, 'f32', 'x', data);
  const local = gpu.tensor([g.count, k], 'u32', 'local');
  gpu.write(local, new Uint32Array(g.count * k).fill(0x7777));
  const values = poisoned(gpu, [g.count, k], 'values');
  topkPerChunk(gpu, x, g, k, local, values);
  const out = { local: (await gpu.read(local)) as Uint32Array, values: await gpu.readF32(values) };
  x.release();
  local.release();
  values.release();
  return out;
}

function expectExact(label: string, out: { local: Uint32Array; values: Float32Array }, data: Float32Array, g: ChunkGrid, k: number): void {
  const ref = topkRef(data, g, k);
  let localMismatch = 0;
  let valueMismatch = 0;
  const outBits = new Uint32Array(out.values.buffer, out.values.byteOffset, out.values.length);
  const refBits = new Uint32Array(Float32Array.from(ref.values).buffer);
  for (let i = 0; i < ref.local.length; i++) {
    if (out.local[i] !== ref.local[i]) localMismatch++;
    if (outBits[i] !== refBits[i]) valueMismatch++;
  }
  console.log(`topk ${label}: ${g.count} chunks, k=${k}, ${ref.local.length} slots, mismatches local ${localMismatch} values ${valueMismatch}`);
  expect(localMismatch).toBe(0);
  expect(valueMismatch).toBe(0);
  // The CPU path of select() gives the same entries, compacted.
  const compact = compactRef(ref, g, k);
  const cpu = topkCpu(data, g, k);
  expect(Array.from(cpu.local)).toEqual(compact.local);
  expect(new Uint32Array(cpu.values.buffer)).toEqual(new Uint32Array(Float32Array.from(compact.values).buffer));
}

function compactRef(ref: { local: Uint32Array; values: Float64Array }, g: ChunkGrid, k: number): { local: number[]; values: number[] } {
  const local: number[] = [];
  const values: number[] = [];
  for (let c = 0; c < g.count; c++) {
    for (let s = 0; s < keptInChunk(g, c, k); s++) {
      local.push(ref.local[c * k + s]);
      values.push(ref.values[c * k + s]);
    }
  }
  return { local, values };
}

describe('topk per chunk', () => {
  const shapes = [[256, 64], [65, 130], [172, 64], [10000], [5], [1, 1]];
  it.each(shapes.flatMap((s) => [64, 1, 4096, 3].map((k) => [s, k] as const)))('%j k=%i matches the reference bit for bit', async (shape, k) => {
    const gpu = await testGpu();
    const g = chunkGrid(shape);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = randn(n, n * 31 + k);
    expectExact(`${JSON.stringify(shape)}`, await runTopk(gpu, data, g, k), data, g, k);
  });

  it.each([64, 3, 1000])('many exact ties (values in {−1, 0, 1}), k=%i: lower local index wins', async (k) => {
    const gpu = await testGpu();
    const g = chunkGrid([130, 200]);
    const r = randn(130 * 200, 7 + k);
    const data = r.map((v) => (v > 0.6 ? 1 : v < -0.6 ? -1 : 0));
    const out = await runTopk(gpu, data, g, k);
    expectExact(`ties k=${k}`, out, data, g, k);
    // A chunk of all zeros keeps its first k local indices.
    const zeros = new Float32Array(64 * 64);
    const z = await runTopk(gpu, zeros, chunkGrid([64, 64]), k);
    expect(Array.from(z.local)).toEqual(Array.from({ length: k }, (_, i) => i));
  });

  it('ties straddling digit boundaries and signed zeros', async () => {
    const gpu = await testGpu();
    const g = chunkGrid([4096]);
    // Magnitudes differing only in the lowest mantissa bits, with both signs, plus -0 and +0.
    const bits = new Uint32Array(4096);
    for (let i = 0; i < 4096; i++) bits[i] = (0x3f800000 + ((i * 37) % 5)) | (i % 3 === 0 ? 0x80000000 : 0);
    for (let i = 0; i < 4096; i += 7) bits[i] = i % 2 ? 0x80000000 : 0;
    const data = new Float32Array(bits.buffer);
    for (const k of [1, 64, 900, 2000, 4095]) expectExact(`near-ties k=${k}`, await runTopk(gpu, data, g, k), data, g, k);
  });

  it('fills the unused slots of small chunks with EMPTY_SLOT and 0', async () => {
    const gpu = await testGpu();
    const g = chunkGrid([5]);
    const data = Float32Array.from([3, -1, 0.5, -7, 2]);
    const out = await runTopk(gpu, data, g, 8);
    expect(Array.from(out.local)).toEqual([0, 1, 2, 3, 4, EMPTY_SLOT, EMPTY_SLOT, EMPTY_SLOT]);
    expect(Array.from(out.values)).toEqual([3, -1, 0.5, -7, 2, 0, 0, 0]);
  });

  it('selectTopK compacts to keptInChunk entries per chunk, in chunk order', async () => {
    const gpu = await testGpu();
    const g = chunkGrid([65, 130]);
    const data = randn(65 * 130, 99);
    const k = 64;
    const sel = await selectTopK(gpu, gpu.tensor(g.shape, 'f32', 'x', data), g, k);
    const { local, values } = compactRef(topkRef(data, g, k), g, k);
    expect(sel.local).toBeInstanceOf(Uint16Array);
    expect(Array.from(sel.local)).toEqual(local);
    expect(Array.from(sel.values)).toEqual(values);
  });

  it('rejects bad inputs before dispatch', async () => {
    const gpu = await testGpu();
    const g = chunkGrid([100, 70]);
    const x = gpu.tensor(g.shape);
    const local = gpu.tensor([g.count, 64], 'u32');
    const values = gpu.tensor([g.count, 64]);
    rejects(gpu, () => topkPerChunk(gpu, x, g, 0, local, values), /k must be an integer/);
    rejects(gpu, () => topkPerChunk(gpu, x, g, 4097, local, values), /k must be an integer/);
    rejects(gpu, () => topkPerChunk(gpu, x, g, 32, local, values), /outLocal must hold/);
    rejects(gpu, () => topkPerChunk(gpu, values, g, 64, local, x), /x must hold/);
    rejects(gpu, () => topkPerChunk(gpu, x, g, 64, values, local), /outLocal must be u32/);
    rejects(gpu, () => topkPerChunk(gpu, x, chunkGrid([100, 71]), 64, local, values), /x must hold/);
    rejects(gpu, () => topkPerChunk(gpu, x, { ...g, blockRows: 128, down: 1, count: 2 }, 64, local, values), /exceed 4096/);
    rejects(gpu, () => topkPerChunk(gpu, x, { ...g, count: g.count + 1 }, 64, local, values), /inconsistent/);
    rejects(gpu, () => topkPerChunk(gpu, tooSmall(gpu, [100, 70]), g, 64, local, values), /too small/);
    await expect(selectTopK(gpu, x, g, 0)).rejects.toThrow(/k must be/);
    expect(gpu.pendingDispatches).toBe(0);
  });
});
