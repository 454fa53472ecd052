import { describe, expect, it } from 'vitest';
import { GpuLostError, GpuValidationError, KernelInputError } from '../../src/gpu/errors.ts';
import { Gpu } from '../../src/gpu/gpu.ts';
import { Params } from '../../src/gpu/params.ts';
import { axpby, fill } from '../../src/kernels/elementwise.ts';
import { testGpu } from '../helpers/gpu.ts';

describe('Gpu', () => {
  it('reports the adapter and whether it is software', async () => {
    const gpu = await testGpu();
    expect(gpu.info.description.length + gpu.info.vendor.length).toBeGreaterThan(0);
    if (/swiftshader/i.test(gpu.info.description)) expect(gpu.info.isSoftware).toBe(true);
  });

  it('reuses a released buffer only after the commands using it are submitted', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([1000]);
    fill(gpu, a, 1);
    a.release();
    const b = gpu.tensor([1000]);
    expect(b.buffer).not.toBe(a.buffer); // still pending: a write into it would race
    gpu.flush();
    const c = gpu.tensor([1000]);
    expect(c.buffer).toBe(a.buffer);
    b.release();
    c.release();
    await gpu.sync();
  });

  it('keeps uploads in program order with recorded commands', async () => {
    const gpu = await testGpu();
    const t = gpu.tensor([300]);
    fill(gpu, t, 1); // recorded, not yet submitted
    gpu.write(t, new Float32Array(300).fill(2)); // must land after the fill
    const mid = gpu.tensor([300]);
    fill(gpu, mid, 0);
    const before = gpu.submits;
    const out = await gpu.readF32(t);
    expect(gpu.submits).toBe(before + 1);
    expect(out.every((v) => v === 2)).toBe(true);
    fill(gpu, t, 3);
    gpu.write(t, new Float32Array(300).fill(4));
    axpby(gpu, 1, t, 0, mid); // a command after the write reads the written data
    expect((await gpu.readF32(mid)).every((v) => v === 4)).toBe(true);
    t.release();
    mid.release();
  });

  it('caches pipelines by shader, entry point and constants', async () => {
    const gpu = await testGpu();
    const shader = { name: 'cache-test', code: 'override K: u32 = 1u;\n@group(0) @binding(0) var<storage, read_write> y: array<u32>;\n@compute @workgroup_size(1) fn main() { y[0] = K; }' };
    const p1 = gpu.pipeline(shader, 'main', { K: 3 });
    expect(gpu.pipeline(shader, 'main', { K: 3 })).toBe(p1);
    const p2 = gpu.pipeline(shader, 'main', { K: 4 });
    expect(p2).not.toBe(p1);
    const y = gpu.tensor([1], 'u32');
    gpu.dispatch(p2, null, [y], [1]);
    expect(Array.from(await gpu.read(y))).toEqual([4]);
  });

  it('names the shader file and line of a WGSL compile error', async () => {
    const gpu = await testGpu();
    const broken = { name: 'broken', code: '@compute @workgroup_size(1) fn main() { let x: u32 = undeclared; }' };
    gpu.pipeline(broken, 'main');
    const error = await gpu.sync().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(GpuValidationError);
    expect(String(error)).toMatch(/shaders\/broken\.wgsl:1:\d+: .*undeclared/);
  });

  it('refuses a tensor larger than the device allows, before allocating', async () => {
    const gpu = await testGpu();
    const tooMany = Math.floor(gpu.maxBindingBytes / 4) + 1;
    expect(() => gpu.tensor([tooMany])).toThrow(KernelInputError);
    expect(() => gpu.tensor([tooMany])).toThrow(/at most/);
  });

  it('refuses data of the wrong length', async () => {
    const gpu = await testGpu();
    const t = gpu.tensor([4]);
    expect(() => gpu.write(t, [1, 2, 3])).toThrow(/holds 4 elements but 3/);
  });

  it('refuses a dispatch beyond the per-dimension workgroup limit', async () => {
    const gpu = await testGpu();
    const shader = { name: 'noop', code: '@group(0) @binding(0) var<storage, read_write> y: array<u32>;\n@compute @workgroup_size(1) fn main() { y[0] = 1u; }' };
    const y = gpu.tensor([1], 'u32');
    expect(() => gpu.dispatch(gpu.pipeline(shader, 'main'), null, [y], [gpu.limits.maxComputeWorkgroupsPerDimension + 1])).toThrow(/exceeds this GPU's limit/);
  });

  it('turns device loss into a GpuLostError that says what to do', async () => {
    const real = await testGpu();
    let loseDevice!: (info: { reason: string; message: string }) => void;
    const lost = new Promise<{ reason: string; message: string }>((r) => (loseDevice = r));
    // The real device, seen through a view whose `lost` promise this test controls.
    const device = new Proxy(real.device, {
      get: (target, key) => {
        if (key === 'lost') return lost;
        const v = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const gpu = new Gpu(device as GPUDevice, real.adapter, real.info, real.features);
    gpu.tensor([4]);
    loseDevice({ reason: 'unknown', message: 'driver reset' });
    await new Promise((r) => setTimeout(r, 0));
    expect(gpu.isLost).toBe(true);
    expect(() => gpu.tensor([4])).toThrow(GpuLostError);
    expect(() => gpu.tensor([4])).toThrow(/driver reset.*checkpoint/);
  });
});

describe('Params', () => {
  it('packs scalars in order and rounds the size to 16 bytes', () => {
    const p = new Params().u32(7).f32(1.5).i32(-2);
    const v = new DataView(p.bytes);
    expect([v.getUint32(0, true), v.getFloat32(4, true), v.getInt32(8, true)]).toEqual([7, 1.5, -2]);
    expect(p.byteLength).toBe(16);
  });
  it('rejects a value that is not a u32', () => {
    expect(() => new Params().u32(-1)).toThrow(RangeError);
    expect(() => new Params().u32(1.5)).toThrow(RangeError);
  });
});
