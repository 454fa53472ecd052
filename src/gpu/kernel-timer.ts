// GPU time per kernel class from `timestamp-query` (issue 20): while a KernelTimer is attached
// (`gpu.timer = new KernelTimer(gpu)`), each dispatch gets a compute pass of its own whose
// beginning and end the GPU stamps; at each flush the stamps are resolved into a buffer and
// read back without blocking, and `collect()` sums them by kernel class — the shader file and
// entry point, whatever the override constants (`matmul|matmul`, `attention_fa2|forward`).
// For benchmarks only: a pass per dispatch and the resolves cost time of their own, so nothing
// that trains attaches one. Without the feature there is nothing to time: `available` says so.
import type { Gpu } from './gpu.ts';

/** Dispatches timed per submit: what one query set holds (two stamps each); later ones go untimed, counted. */
export const TIMED_DISPATCHES_PER_SUBMIT = 2048;
const QUERY_USAGE = 0x200 /* QUERY_RESOLVE */ | 0x04; /* COPY_SRC */
const READBACK_USAGE = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */
const NS_PER_MS = 1e6;

export interface KernelClassTime {
  /** Shader file and entry point (`matmul|matmul`). */
  kernel: string;
  dispatches: number;
  /** GPU time summed over its dispatches, ms. */
  ms: number;
}

/** A pipeline's label is `shader|entry|constants` (PipelineCache): its class drops the constants. */
export function kernelClass(pipelineLabel: string): string {
  const [shader, entry] = pipelineLabel.split('|');
  return entry === undefined ? shader : `${shader}|${entry}`;
}

export class KernelTimer {
  readonly available: boolean;
  private readonly querySet: GPUQuerySet | null;
  private readonly resolveBuffer: GPUBuffer | null;
  /** The classes of this submit's timed dispatches, in order. */
  private pending: string[] = [];
  private readonly reads: Promise<void>[] = [];
  private readonly totals = new Map<string, { dispatches: number; ns: bigint }>();
  /** Dispatches past TIMED_DISPATCHES_PER_SUBMIT in one submit. */
  untimed = 0;

  constructor(private readonly gpu: Gpu) {
    this.available = gpu.features.timestampQuery;
    const count = 2 * TIMED_DISPATCHES_PER_SUBMIT;
    this.querySet = this.available ? gpu.device.createQuerySet({ type: 'timestamp', count, label: 'kernel timer' }) : null;
    this.resolveBuffer = this.available ? gpu.device.createBuffer({ size: count * 8, usage: QUERY_USAGE, label: 'kernel timer resolve' }) : null;
  }

  /** The timestamp writes of the pass for a dispatch of `pipelineLabel`, or undefined (not timed). */
  passTimestamps(pipelineLabel: string): GPUComputePassTimestampWrites | undefined {
    if (!this.querySet) return undefined;
    if (this.pending.length >= TIMED_DISPATCHES_PER_SUBMIT) {
      this.untimed++;
      return undefined;
    }
    const i = this.pending.length;
    this.pending.push(kernelClass(pipelineLabel));
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Called by the Gpu before it finishes a submit's encoder: resolves this submit's stamps into a read-back. */
  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (!this.querySet || !this.resolveBuffer || this.pending.length === 0) return;
    const classes = this.pending;
    this.pending = [];
    const bytes = classes.length * 16;
    const readback = this.gpu.device.createBuffer({ size: bytes, usage: READBACK_USAGE, label: 'kernel timer read-back' });
    encoder.resolveQuerySet(this.querySet, 0, 2 * classes.length, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, readback, 0, bytes);
    // Mapped once the submit has run; the host records the next step meanwhile.
    this.reads.push(
      Promise.resolve().then(async () => {
        await readback.mapAsync(1 /* READ */);
        const stamps = new BigUint64Array(readback.getMappedRange().slice(0));
        readback.unmap();
        readback.destroy();
        classes.forEach((kernel, i) => {
          const t = this.totals.get(kernel) ?? { dispatches: 0, ns: 0n };
          const end = stamps[2 * i + 1];
          const begin = stamps[2 * i];
          t.dispatches++;
          t.ns += end > begin ? end - begin : 0n; // a GPU may stamp a pass's end before its beginning: count it as 0
          this.totals.set(kernel, t);
        });
      }),
    );
  }

  /** Waits for every submitted stamp and returns the classes, most GPU time first. */
  async collect(): Promise<KernelClassTime[]> {
    this.gpu.flush();
    await Promise.all(this.reads.splice(0));
    return [...this.totals].map(([kernel, t]) => ({ kernel, dispatches: t.dispatches, ms: Number(t.ns) / NS_PER_MS })).sort((a, b) => b.ms - a.ms);
  }

  /** Forgets what was collected (e.g. after warm-up steps). */
  reset(): void {
    this.totals.clear();
    this.untimed = 0;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
  }
}
