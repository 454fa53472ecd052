// tfjs-backend-webgpu on OUR device: the peer library the benchmarks compare against runs in
// the same process, on the very same GPUDevice (a WebGPUBackend built on gpu.device), so a
// ratio compares kernels and schedules, not adapters.
//
// Two things make tfjs-backend-webgpu 4.22 run in Node here:
//   - its constructor checks for navigator.gpu, which Node 20 lacks (it uses nothing else of
//     it): a stub is installed for the duration of the constructor only;
//   - tfjs keys kernels by backend name, and the stock 'webgpu' backend's factory would look
//     for its own adapter: our backend is registered under its own name with copies of the
//     WebGPU backend's kernels.
import * as tf from '@tensorflow/tfjs-core';
import { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Gpu } from '../../src/gpu/gpu.ts';

export const TFJS_BACKEND = 'tessera-webgpu';

export type Tf = typeof tf;

/** The backend currently registered under TFJS_BACKEND, and the device it was built on. */
let current: { device: GPUDevice; backend: WebGPUBackend } | null = null;

/**
 * Registers (once per device) and selects a tfjs WebGPU backend running on gpu.device, and
 * returns tfjs. Calling it again for the same device only re-selects the backend; a different
 * device replaces it (the old backend's buffers are freed).
 */
export async function tfjsOnDevice(gpu: Gpu): Promise<Tf> {
  await tfjsBackendOn(gpu);
  return tf;
}

/** As tfjsOnDevice, returning the backend itself (for finishTfjs). */
export async function tfjsBackendOn(gpu: Gpu): Promise<WebGPUBackend> {
  if (current && current.device === gpu.device && tf.findBackend(TFJS_BACKEND) === current.backend) {
    if (tf.getBackend() !== TFJS_BACKEND && !(await tf.setBackend(TFJS_BACKEND))) {
      throw new Error('tfjs could not select its WebGPU backend');
    }
    return current.backend;
  }
  if (tf.findBackend(TFJS_BACKEND)) tf.removeBackend(TFJS_BACKEND);
  current = null;
  const g = globalThis as { navigator?: { gpu?: unknown } };
  const shimmed = !g.navigator?.gpu;
  const saved = g.navigator;
  if (shimmed) Object.defineProperty(globalThis, 'navigator', { value: { ...saved, gpu: {} }, configurable: true, writable: true });
  let backend: WebGPUBackend;
  try {
    backend = new WebGPUBackend(gpu.device, gpu.adapter.info);
  } finally {
    if (shimmed) Object.defineProperty(globalThis, 'navigator', { value: saved, configurable: true, writable: true });
  }
  for (const k of tf.getKernelsForBackend('webgpu')) {
    if (!tf.getKernel(k.kernelName, TFJS_BACKEND)) tf.registerKernel({ ...k, backendName: TFJS_BACKEND });
  }
  tf.registerBackend(TFJS_BACKEND, () => backend);
  if (!(await tf.setBackend(TFJS_BACKEND))) throw new Error('tfjs could not start its WebGPU backend on this device');
  current = { device: gpu.device, backend };
  return backend;
}

/** Removes our tfjs backend, freeing every buffer tfjs holds; the device itself stays ours. */
export function releaseTfjs(): void {
  if (tf.findBackend(TFJS_BACKEND)) tf.removeBackend(TFJS_BACKEND);
  current = null;
}

/** Submits what tfjs has recorded and waits for the device's queue, as gpu.sync() does for ours. */
export async function finishTfjs(backend: WebGPUBackend, gpu: Gpu): Promise<void> {
  if ((backend as unknown as { commandEncoder: unknown }).commandEncoder) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
  await gpu.device.queue.onSubmittedWorkDone();
}
