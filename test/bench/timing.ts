// GPU timing for benchmarks: record the work, submit, wait for the queue, repeat; report the
// median. Wall-clock around onSubmittedWorkDone includes submit overhead, which is what a
// training step pays too.
import type { Gpu } from '../../src/gpu/gpu.ts';

export interface Timing {
  medianMs: number;
  minMs: number;
  reps: number;
}

export async function timeGpu(gpu: Gpu, record: () => void, { warmup = 2, reps = 5, maxSeconds = 20 } = {}): Promise<Timing> {
  for (let i = 0; i < warmup; i++) {
    record();
    await gpu.sync();
  }
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    record();
    await gpu.sync();
    times.push(performance.now() - t0);
    if (performance.now() - start > maxSeconds * 1000 && times.length >= 1) break;
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0], reps: times.length };
}

/** Same for work that finishes through its own promise (a peer library's op). */
export async function timeAsync(run: () => Promise<void>, { warmup = 2, reps = 5, maxSeconds = 20 } = {}): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
    if (performance.now() - start > maxSeconds * 1000 && times.length >= 1) break;
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], minMs: times[0], reps: times.length };
}
