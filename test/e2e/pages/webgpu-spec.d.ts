// @webgpu/types 0.1.x types writeBuffer's data as `BufferSource | SharedArrayBuffer`; with
// DOM's lib (TypeScript ≥ 5.7) BufferSource excludes views whose buffer is ArrayBufferLike, so
// the engine's `queue.writeBuffer(buf, 0, new Uint8Array(typed.buffer, …))` (src/gpu/gpu.ts)
// fails the web type-check although the WebGPU spec takes any AllowSharedBufferSource. This
// overload states the spec's signature. It belongs in src/ (or a cast in gpu.ts); it lives here
// until then, because this folder is the first browser code to import the engine.
interface GPUQueue {
  writeBuffer(buffer: GPUBuffer, bufferOffset: GPUSize64, data: AllowSharedBufferSource, dataOffset?: GPUSize64, size?: GPUSize64): undefined;
}
