// Records training steps of a preset on the recording device: the real LayerSlice, AdamW and
// LocalTrainer, each step driven as training drives it, with fresh data every step.
import { Gpu } from '../../../src/gpu/gpu.ts';
import { preset, type PresetName } from '../../../src/model/config.ts';
import { LayerSlice } from '../../../src/model/slice.ts';
import { AdamW, DEFAULT_ADAMW } from '../../../src/train/optimizer.ts';
import { LocalTrainer, type PendingStep } from '../../../src/train/trainer.ts';
import { RECORDING_LIMITS } from './gpu-classes.ts';
import { RecordingDevice, type HostWork, type RecordedSubmit } from './recording-device.ts';

/** Batch shapes per preset: the issue's `small` step is 2048 rows (8×256). */
export const STATIC_SHAPES: Record<PresetName, { B: number; T: number }> = {
  tiny: { B: 8, T: 64 },
  small: { B: 8, T: 256 },
  base: { B: 8, T: 512 },
  '1b': { B: 4, T: 1024 },
};

/** Steps recorded: the first compiles pipelines and fills caches; the last is the steady state. */
export const RECORDED_STEPS = 5;

export interface RecordedStep {
  host: HostWork;
  submits: RecordedSubmit[];
}

export interface RecordedRun {
  preset: PresetName;
  B: number;
  T: number;
  gpu: Gpu;
  device: RecordingDevice;
  /** One entry per step; the host work counted from the end of the previous step's recording. */
  steps: RecordedStep[];
  /** Host bytes the recording device held at the end (uniform shadows only). */
  deviceHostBytes: number;
}

/** A recording Gpu with RECORDING_LIMITS. */
export function recordingGpu(): { gpu: Gpu; device: RecordingDevice } {
  const limits = { ...RECORDING_LIMITS } as unknown as GPUSupportedLimits;
  const device = new RecordingDevice(limits);
  const adapter = { limits, features: new Set(), info: {} } as unknown as GPUAdapter;
  const info = { vendor: 'recording', architecture: '', device: '', description: 'recording device (no execution)', isSoftware: false };
  const gpu = new Gpu(device as unknown as GPUDevice, adapter, info, { f16: false, subgroups: false, timestampQuery: false });
  return { gpu, device };
}

/** Deterministic tokens, different every (step, micro): the distinct-token count varies as in training. */
function batch(V: number, N: number, step: number, micro: number): { tokens: Int32Array; targets: Int32Array } {
  let s = (step * 7919 + micro * 104729 + 1) >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const row = new Int32Array(N + 1);
  for (let i = 0; i <= N; i++) row[i] = next() % V;
  return { tokens: row.subarray(0, N), targets: row.subarray(1) };
}

export async function recordSteps(name: PresetName, steps = RECORDED_STEPS): Promise<RecordedRun> {
  const { B, T } = STATIC_SHAPES[name];
  const cfg = preset(name);
  const { gpu, device } = recordingGpu();
  // No initialize(): parameter values do not change what is recorded, and the 1b preset's
  // values alone would be 4 GB of host memory.
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  const optimizer = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
  const trainer = new LocalTrainer(gpu, slice, optimizer, { batch: (s, m) => batch(cfg.vocabSize, B * T, s, m) }, {
    peak: 1e-3, warmup: 1, total: 1000, minRatio: 0.1,
  });
  await gpu.sync();
  device.takeHostWork();
  device.takeSubmits();
  const out: RecordedStep[] = [];
  // As LocalTrainer.trainSteps runs them: step i is recorded and submitted, then step i−1's
  // loss is awaited. Each window is one step's recording plus the previous step's read-back.
  let pending: PendingStep | null = null;
  for (let i = 0; i < steps; i++) {
    const next = trainer.beginStep();
    if (pending) await pending.result;
    out.push({ host: device.takeHostWork(), submits: device.takeSubmits() });
    pending = next;
  }
  await pending?.result;
  return { preset: name, B, T, gpu, device, steps: out, deviceHostBytes: device.hostBytes };
}
