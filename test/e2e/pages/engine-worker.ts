// Worker of browser-engine.test.ts: the engine on navigator.gpu inside a Web Worker, as the
// product hosts it. Opens the engine's Gpu, reports the adapter, and checks one matmul on the
// GPU against the float64 reference, all in the worker.
import { openGpu } from '../../../src/gpu/device.ts';
import type { Gpu } from '../../../src/gpu/gpu.ts';
import { matmul, matmulRef, type MatmulOptions } from '../../../src/kernels/matmul.ts';
import { serveWorker } from './worker-rpc.ts';

let gpu: Promise<Gpu> | null = null;
const openOnce = () => (gpu ??= openGpu(navigator.gpu));

/** Seeded normal samples (mulberry32 + Box–Muller), as test/helpers/gpu.ts makes them. */
function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform());
  return out;
}

const handlers = {
  async adapter() {
    const g = await openOnce();
    return { ...g.info, inWorker: typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined' };
  },

  async matmul(opts: MatmulOptions & { seed: number }) {
    const g = await openOnce();
    const { M, N, K } = opts;
    const a = randn(M * K, opts.seed);
    const b = randn(K * N, opts.seed + 1);
    const A = g.tensor([M * K], 'f32', 'A', a);
    const B = g.tensor([K * N], 'f32', 'B', b);
    const C = g.tensor([M * N], 'f32', 'C', new Float32Array(M * N).fill(Number.NaN)); // poisoned
    const t0 = performance.now();
    matmul(g, A, B, C, opts);
    const out = await g.readF32(C);
    const ms = performance.now() - t0;
    const ref = matmulRef(a, b, null, opts);
    let num = 0;
    let den = 0;
    let finite = true;
    for (let i = 0; i < ref.length; i++) {
      if (!Number.isFinite(out[i])) finite = false;
      num += (out[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    A.release();
    B.release();
    C.release();
    return { rel: finite ? Math.sqrt(num / den) : Number.POSITIVE_INFINITY, elements: out.length, ms };
  },

  async close() {
    if (gpu) (await gpu).destroy();
    gpu = null;
    return true;
  },
};

export type EngineWorker = typeof handlers;
serveWorker(handlers);
