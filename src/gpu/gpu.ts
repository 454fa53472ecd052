import { BindGroupCache, UniformArena } from './bindings.ts';
import { BufferPool } from './buffers.ts';
import { GpuLostError, GpuValidationError, KernelInputError } from './errors.ts';
import type { Params } from './params.ts';
import { PipelineCache, type CompileProgress, type PipelineConstants, type ShaderSource } from './pipelines.ts';
import { BYTES_PER_ELEMENT, Tensor, shapeSize, type DType } from './tensor.ts';
import type { KernelTimer } from './kernel-timer.ts';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, llvmpipe, WARP): numbers are CPU numbers. */
  isSoftware: boolean;
}

export interface GpuFeatures {
  /** shader-f16 was requested and granted: kernels may use their f16 variants. */
  f16: boolean;
  /** subgroups was requested and granted: kernels may choose their subgroup variants. */
  subgroups: boolean;
  timestampQuery: boolean;
}

const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
const READBACK_USAGE = 0x01 /* MAP_READ */ | 0x08; /* COPY_DST */
const STAGING_USAGE = 0x04; /* COPY_SRC */
/** In-order uploads (a micro-batch's tokens) up to this size go through pooled staging buffers. */
const POOLED_UPLOAD_BYTES = 1 << 20;
const POOLED_STAGING_USAGE = 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */
/** Read-backs up to this size reuse pooled staging buffers. */
const POOLED_READBACK_BYTES = 64 * 1024;

export type TypedData = Float32Array | Uint32Array | Int32Array | Uint16Array;

/**
 * One device and everything recorded on it. Kernels append dispatches to one open command
 * encoder; `flush()` submits them all at once, so a training step is one submit.
 */
export class Gpu {
  readonly pipelines: PipelineCache;
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  /** Bind groups by what they bind: a step that repeats creates none. */
  readonly bindGroups: BindGroupCache;
  private readonly uniforms: UniformArena;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private errors: string[] = [];
  /** Staging buffers of in-order uploads, destroyed once their submit is queued. */
  private uploads: GPUBuffer[] = [];
  private lost: GpuLostError | null = null;
  private destroyed = false;
  /** Dispatches recorded since the last flush (for tests and profiling). */
  pendingDispatches = 0;
  /** Submits made so far. */
  submits = 0;
  /** While set (benchmarks), each dispatch runs in a pass of its own, stamped for GPU time per kernel class. */
  timer: KernelTimer | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: GPUAdapter,
    readonly info: AdapterSummary,
    readonly features: GpuFeatures,
    private readonly onDestroy: () => void = () => {},
  ) {
    this.limits = device.limits;
    this.pool = new BufferPool(device);
    this.bindGroups = new BindGroupCache(device);
    this.uniforms = new UniformArena(device, device.limits.minUniformBufferOffsetAlignment ?? 256);
    this.pipelines = new PipelineCache(device, (m) => this.errors.push(m));
    device.addEventListener?.('uncapturederror', (ev) => {
      this.errors.push((ev as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      if (this.destroyed || info.reason === 'destroyed') return;
      this.lost = new GpuLostError(info.reason ?? 'unknown', info.message);
    });
  }

  /** A cached compute pipeline for a shader's entry point, specialised by override constants. */
  pipeline(shader: ShaderSource, entryPoint: string, constants?: PipelineConstants): GPUComputePipeline {
    this.assertUsable();
    return this.pipelines.get(shader, entryPoint, constants);
  }

  /**
   * Compiles every pipeline `trace` asks for without blocking the event loop: `trace` runs
   * with dispatches not recorded (tensors, writes and copies are real, so give it scratch
   * work: a forward and backward whose results are thrown away), then the pipelines it
   * named compile on the driver's threads. Later dispatches find them cached. Resolves with
   * the number compiled.
   */
  async precompile(trace: () => void, onProgress?: CompileProgress): Promise<number> {
    this.assertUsable();
    const requests = this.pipelines.record(trace);
    await this.pipelines.compile(requests, onProgress);
    this.throwReported();
    return requests.length;
  }

  /** A tensor from the pool. Contents are undefined unless `data` is given. */
  tensor(shape: readonly number[], dtype: DType = 'f32', label = '', data?: TypedData | readonly number[]): Tensor {
    this.assertUsable();
    const size = shapeSize(shape);
    const bytes = size * BYTES_PER_ELEMENT[dtype];
    this.checkBindingSize(bytes, label || 'tensor');
    const buffer = this.pool.acquire(Math.max(4, bytes), STORAGE_USAGE, label);
    const t = new Tensor(this, buffer, shape, dtype, label);
    if (data) this.write(t, data);
    return t;
  }

  /** Uploads `data` into `t`, in program order with the commands recorded around it. */
  write(t: Tensor, data: TypedData | readonly number[]): void {
    this.assertUsable();
    const typed = Array.isArray(data) ? toTyped(data as readonly number[], t.dtype) : (data as TypedData);
    if (typed.length !== t.size) {
      throw new KernelInputError('write', `${t} holds ${t.size} elements but ${typed.length} were given`);
    }
    // writeBuffer takes sizes in multiples of 4: f16 with an odd count gets a padded copy.
    let bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (this.encoder) {
      // Commands recorded before this write must see the old contents and those after it the
      // new: queue.writeBuffer would land before all of them, so record an in-order copy.
      if (bytes.byteLength <= POOLED_UPLOAD_BYTES) {
        // A pooled staging buffer (free only once no unsubmitted command uses it), written now.
        const staging = this.pool.acquire(bytes.byteLength, POOLED_STAGING_USAGE, 'upload');
        this.device.queue.writeBuffer(staging, 0, bytes as Uint8Array<ArrayBuffer>);
        this.copy(staging, t, bytes.byteLength);
        this.pool.release(staging);
      } else {
        const staging = this.device.createBuffer({ size: bytes.byteLength, usage: STAGING_USAGE, mappedAtCreation: true, label: 'upload' });
        new Uint8Array(staging.getMappedRange()).set(bytes);
        staging.unmap();
        this.copy(staging, t, bytes.byteLength);
        this.uploads.push(staging);
      }
    } else {
      // The WebGPU spec takes any (Shared)ArrayBuffer view; @webgpu/types under DOM's lib
      // (TypeScript ≥ 5.7) narrows it to ArrayBuffer-backed views, hence the cast.
      this.device.queue.writeBuffer(t.buffer, t.offset, bytes as Uint8Array<ArrayBuffer>);
    }
  }

  /**
   * Appends one compute dispatch. Binding 0 is the params uniform, then `buffers` in order.
   * The params go into this submit's uniform arena (one writeBuffer at the flush) and the
   * bind group comes from the cache.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    params: Params | null,
    buffers: readonly (Tensor | GPUBuffer)[],
    workgroups: readonly [number, number?, number?],
  ): void {
    this.assertUsable();
    const [x, y = 1, z = 1] = workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new KernelInputError(pipeline.label, `dispatch of ${x}×${y}×${z} workgroups exceeds this GPU's limit of ${max} per dimension`);
    }
    if (x === 0 || y === 0 || z === 0 || this.pipelines.recording) return;
    const uniform = params ? this.uniforms.stage(params) : null;
    const bindGroup = this.bindGroups.get(pipeline, uniform, buffers.map(bindingOf));
    const stamps = this.timer?.passTimestamps(pipeline.label);
    if (stamps) this.endPass();
    const pass = stamps ? (this.pass = this.commandEncoder().beginComputePass({ timestampWrites: stamps })) : this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (stamps) this.endPass();
    this.pendingDispatches++;
  }

  /** Copies `bytes` between buffers, in order with the dispatches around it. */
  copy(src: Tensor | GPUBuffer, dst: Tensor | GPUBuffer, bytes?: number, srcOffset = 0, dstOffset = 0): void {
    this.assertUsable();
    const s = src instanceof Tensor ? src.buffer : src;
    const d = dst instanceof Tensor ? dst.buffer : dst;
    const n = bytes ?? (src instanceof Tensor ? src.byteLength : s.size);
    const from = srcOffset + (src instanceof Tensor ? src.offset : 0);
    const to = dstOffset + (dst instanceof Tensor ? dst.offset : 0);
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(s, from, d, to, Math.ceil(n / 4) * 4);
  }

  /** Zeroes a tensor (its view's range), in order with the commands around it. */
  clear(t: Tensor): void {
    this.assertUsable();
    this.endPass();
    this.commandEncoder().clearBuffer(t.buffer, t.offset, Math.min(Math.ceil(t.byteLength / 4) * 4, t.capacity));
  }

  /** Submits everything recorded since the last flush as one command buffer. */
  flush(): void {
    this.assertUsable();
    if (!this.encoder) return;
    this.endPass();
    this.uniforms.flush();
    this.timer?.beforeSubmit(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pendingDispatches = 0;
    this.submits++;
    this.pool.afterSubmit();
    this.uniforms.afterSubmit();
    // Destroying after submit is allowed: the implementation keeps them until the copies ran.
    for (const b of this.uploads) b.destroy();
    this.uploads.length = 0;
  }

  /** Flushes, waits for the GPU to finish, and throws any error the device reported. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwReported();
  }

  /** Reads a tensor back to the CPU (flushes first). */
  async read(t: Tensor): Promise<TypedData> {
    this.assertUsable();
    const bytes = Math.ceil(t.byteLength / 4) * 4;
    // Small read-backs (a step's loss and norm) reuse pooled buffers; large ones (checkpoints)
    // are made and destroyed, so the pool never holds big mappable buffers.
    const pooled = bytes <= POOLED_READBACK_BYTES;
    const staging = pooled
      ? this.pool.acquire(Math.max(4, bytes), READBACK_USAGE, 'readback')
      : this.device.createBuffer({ size: bytes, usage: READBACK_USAGE, label: 'readback' });
    this.copy(t, staging, bytes);
    this.flush();
    try {
      await staging.mapAsync(0x0001 /* GPUMapMode.READ */);
    } catch (e) {
      this.throwReported();
      throw e;
    }
    const copyOut = staging.getMappedRange(0, bytes).slice(0, t.byteLength);
    staging.unmap();
    if (pooled) this.pool.release(staging);
    else staging.destroy();
    this.throwReported();
    switch (t.dtype) {
      case 'f32':
        return new Float32Array(copyOut);
      case 'u32':
        return new Uint32Array(copyOut);
      case 'i32':
        return new Int32Array(copyOut);
      case 'f16':
        return new Uint16Array(copyOut);
    }
  }

  /** Reads an f32 tensor. */
  async readF32(t: Tensor): Promise<Float32Array> {
    if (t.dtype !== 'f32') throw new KernelInputError('readF32', `${t} is not f32`);
    return (await this.read(t)) as Float32Array;
  }

  releaseBuffer(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /** Bytes a single storage binding may hold on this device. */
  get maxBindingBytes(): number {
    return Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize);
  }

  checkBindingSize(bytes: number, what: string): void {
    if (bytes > this.maxBindingBytes) {
      throw new KernelInputError(
        what,
        `needs ${fmtBytes(bytes)} in one buffer but this GPU allows at most ${fmtBytes(this.maxBindingBytes)}; use a smaller model or batch`,
      );
    }
  }

  /** Releases the device. In Node this also lets the process exit. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.encoder = null;
    this.pass = null;
    this.bindGroups.clear();
    this.uniforms.destroy();
    this.pool.trim();
    this.device.destroy();
    this.onDestroy();
  }

  get isLost(): boolean {
    return this.lost !== null;
  }

  private throwReported(): void {
    if (this.lost) throw this.lost;
    if (this.errors.length) {
      const all = this.errors.splice(0);
      throw new GpuValidationError(all.join('\n'));
    }
  }

  private assertUsable(): void {
    if (this.lost) throw this.lost;
    if (this.destroyed) throw new Error('This GPU context was destroyed; open a new one.');
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }
}

/**
 * What a dispatch binds for a tensor: the whole buffer, or a view's range from its offset,
 * rounded up to whole vec4s (kernels view storage as vec4 arrays; arena views are 256-byte
 * aligned, so the rounding stays inside the view's padding).
 */
function bindingOf(b: Tensor | GPUBuffer): GPUBufferBinding {
  if (!(b instanceof Tensor)) return { buffer: b };
  if (!b.isView) return { buffer: b.buffer };
  return { buffer: b.buffer, offset: b.offset, size: Math.min(Math.ceil(Math.max(4, b.byteLength) / 16) * 16, b.capacity) };
}

function toTyped(data: readonly number[], dtype: DType): TypedData {
  switch (dtype) {
    case 'f32':
      return Float32Array.from(data);
    case 'u32':
      return Uint32Array.from(data);
    case 'i32':
      return Int32Array.from(data);
    case 'f16':
      throw new KernelInputError('write', 'f16 data must be given as a Uint16Array of half-float bits');
  }
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
