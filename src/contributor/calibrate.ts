// What a contributor reports on joining a pipelined run, so the coordinator can place it in
// a stage (src/coordinator/stages.ts): its memory budget and its training speed here, from a
// short calibration — one layer's forward and backward timed after a warm-up one (a
// contributor of a pipelined run may not hold the whole model). Environment-free.
import type { Gpu } from '../gpu/gpu.ts';
import { LayerSlice } from '../model/slice.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { Capacity } from '../protocol/messages.ts';
import { parseRunConfig, runModel, type RunConfig } from '../protocol/run-config.ts';

/** The capacity to report to the coordinator at `httpBase`, or undefined for a run of one stage (or an unreadable run). */
export async function measureCapacity(gpu: Gpu, http: HttpClient, httpBase: string, memoryBytes: number, onCompile?: (done: number, total: number) => void): Promise<Capacity | undefined> {
  const bytes = await http.get(`${httpBase}/run`).catch(() => null);
  if (!bytes) return undefined;
  let config: RunConfig;
  try {
    config = parseRunConfig(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return undefined; // the welcome's config is checked (and its error reported) later
  }
  if (config.stages === 1) return undefined;
  return { memoryBytes, tokensPerSecond: await calibrate(gpu, config, onCompile) };
}

/**
 * Tokens per second of a whole-model training step here, estimated from one layer. Its
 * kernels compile first without blocking the event loop (`onCompile` reports them): the
 * timed steps then measure training, not the driver's compiler.
 */
export async function calibrate(gpu: Gpu, config: RunConfig, onCompile?: (done: number, total: number) => void): Promise<number> {
  const cfg = runModel(config);
  const slice = LayerSlice.create(gpu, cfg, 0, 1, { batch: config.batch, seqLen: config.seq });
  try {
    slice.initialize(config.seed);
    const n = config.batch * config.seq;
    const tokens = new Int32Array(n);
    const step = () => {
      slice.forward({ tokens });
      if (slice.output) slice.backward({ dOut: slice.output, accumulate: false });
      else slice.backward({ accumulate: false, lossScale: 1 });
    };
    await gpu.precompile(step, onCompile);
    let ms = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      step();
      await gpu.readF32(slice.grads.get(slice.layout[0].name)!);
      ms = performance.now() - t0;
    }
    return Math.round((n * 1000) / Math.max(ms * cfg.layers, 1e-3));
  } finally {
    slice.destroy();
  }
}
