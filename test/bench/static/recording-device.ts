// A WebGPU device that records what the engine asks of it and executes nothing: the seam is
// `new Gpu(device, adapter, …)` (src/gpu/gpu.ts), so the real kernels, LayerSlice, AdamW and
// LocalTrainer record a real training step on it. It has a real GPU's limits (gpu-classes.ts)
// so tiles and grids are chosen as on that GPU.
//
// Memory: storage buffers are sizes only. Host memory backs only uniform buffers (their
// contents are decoded per dispatch: M, N, K of a matmul), mapped ranges (zero-filled,
// allocated when asked for and at most MAX_MAPPED_BYTES: a training step reads back a few
// floats), so the 1b preset records in a few MB.
//
// Readbacks: a mapAsync resolves when the host submits more work (the GPU had something to do
// while the host waited: overlapped) or, failing that, when the event loop goes idle (the
// host waited on a drained queue: blocking). Both are counted.

/** The largest mapped range handed out: a step's read-backs are a few floats. */
const MAX_MAPPED_BYTES = 64 << 20;
/** Uniform buffers larger than this are not shadowed (none is; a guard against misuse). */
const MAX_SHADOWED_UNIFORM = 4 << 20;
const UNIFORM = 0x40;

export interface RecordedBinding {
  binding: number;
  bufferId: number;
  bufferSize: number;
  usage: number;
  offset: number;
  size: number;
}

export interface RecordedDispatch {
  /** The pipeline's label: `shader|entryPoint|constants` (PipelineCache's key). */
  pipeline: string;
  shader: string;
  entryPoint: string;
  constants: Record<string, number>;
  /** The shader's WGSL (shared, not copied). */
  code: string;
  workgroups: [number, number, number];
  bindings: RecordedBinding[];
  /** Binding 0's contents as they were when the dispatch's submit was queued. */
  uniform: DataView | null;
}

/** Host-side API calls, counted since the last `takeHostWork()`. */
export interface HostWork {
  dispatches: number;
  copies: number;
  clears: number;
  submits: number;
  writeBuffers: number;
  writeBufferBytes: number;
  buffersCreated: number;
  stagingBuffersCreated: number;
  bindGroupsCreated: number;
  bindGroupLayoutLookups: number;
  bindGroupLayoutsCreated: number;
  pipelinesCreated: number;
  commandEncoders: number;
  computePasses: number;
  mapAsyncs: number;
  /** Read-backs resolved only once the host went idle with nothing new submitted. */
  blockingReadbacks: number;
  /** onSubmittedWorkDone waits (always a drain). */
  blockingSyncs: number;
}

function emptyHostWork(): HostWork {
  return {
    dispatches: 0, copies: 0, clears: 0, submits: 0, writeBuffers: 0, writeBufferBytes: 0, buffersCreated: 0, stagingBuffersCreated: 0,
    bindGroupsCreated: 0, bindGroupLayoutLookups: 0, bindGroupLayoutsCreated: 0, pipelinesCreated: 0, commandEncoders: 0,
    computePasses: 0, mapAsyncs: 0, blockingReadbacks: 0, blockingSyncs: 0,
  };
}

interface PipelineInfo {
  shader: string;
  code: string;
  entryPoint: string;
  constants: Record<string, number>;
}

/** What a recorded submit held, in order. */
export interface RecordedSubmit {
  dispatches: RecordedDispatch[];
  copies: number;
}

class RecordingBuffer {
  readonly __brand = 'GPUBuffer';
  mapState: GPUBufferMapState = 'unmapped';
  private mapped: ArrayBuffer | null = null;
  /** Uniform contents (host copy), or null for buffers recorded by size only. */
  readonly shadow: Uint8Array | null;
  constructor(
    private readonly dev: RecordingDevice,
    readonly id: number,
    readonly size: number,
    readonly usage: number,
    readonly label: string,
    mappedAtCreation: boolean,
  ) {
    this.shadow = usage & UNIFORM && size <= MAX_SHADOWED_UNIFORM ? new Uint8Array(size) : null;
    if (mappedAtCreation) this.mapState = 'mapped';
  }
  getMappedRange(offset = 0, size = this.size - offset): ArrayBuffer {
    if (this.mapState !== 'mapped') throw new Error(`recording device: buffer ${this.label} is not mapped`);
    if (size > MAX_MAPPED_BYTES) {
      throw new Error(`recording device: a mapped range of ${size} bytes (${this.label}) is over its ${MAX_MAPPED_BYTES}-byte bound`);
    }
    this.mapped ??= new ArrayBuffer(size);
    return this.mapped;
  }
  mapAsync(): Promise<void> {
    return this.dev.pendingMap(this).then(() => {
      this.mapState = 'mapped';
    });
  }
  unmap(): void {
    this.mapState = 'unmapped';
    this.mapped = null;
  }
  destroy(): void {
    this.mapped = null;
    this.dev.destroyed(this);
  }
}

class RecordingPass {
  private pipeline: PipelineInfo & { label: string } | null = null;
  private group: { entries: GPUBindGroupEntry[] } | null = null;
  constructor(private readonly dev: RecordingDevice, private readonly out: RecordedDispatch[]) {}
  setPipeline(p: GPUComputePipeline): void {
    this.pipeline = this.dev.pipelineInfo(p);
  }
  setBindGroup(index: number, group: GPUBindGroup): void {
    if (index !== 0) throw new Error('recording device: only bind group 0 is used by the engine');
    this.group = group as unknown as { entries: GPUBindGroupEntry[] };
  }
  dispatchWorkgroups(x: number, y = 1, z = 1): void {
    if (!this.pipeline || !this.group) throw new Error('recording device: dispatch without a pipeline and bind group');
    const bindings: RecordedBinding[] = this.group.entries.map((e) => {
      const r = e.resource as GPUBufferBinding;
      const buf = r.buffer as unknown as RecordingBuffer;
      const offset = r.offset ?? 0;
      return { binding: e.binding, bufferId: buf.id, bufferSize: buf.size, usage: buf.usage, offset, size: r.size ?? buf.size - offset };
    });
    const { label, shader, code, entryPoint, constants } = this.pipeline;
    this.out.push({ pipeline: label, shader, code, entryPoint, constants, workgroups: [x, y, z], bindings, uniform: null });
    this.dev.work.dispatches++;
  }
  end(): void {}
}

class RecordingEncoder {
  readonly dispatches: RecordedDispatch[] = [];
  copies = 0;
  constructor(private readonly dev: RecordingDevice) {}
  beginComputePass(): RecordingPass {
    this.dev.work.computePasses++;
    return new RecordingPass(this.dev, this.dispatches);
  }
  copyBufferToBuffer(): void {
    this.copies++;
    this.dev.work.copies++;
  }
  clearBuffer(): void {
    this.dev.work.clears++;
  }
  finish(): RecordingEncoder {
    return this;
  }
}

/** The GPUDevice subset the engine uses (src/gpu), recording instead of executing. */
export class RecordingDevice {
  readonly __brand = 'GPUDevice';
  readonly lost: Promise<GPUDeviceLostInfo> = new Promise(() => {});
  readonly queue: GPUQueue;
  work: HostWork = emptyHostWork();
  /** Every submit so far (cleared by takeSubmits). */
  private submits: RecordedSubmit[] = [];
  private nextId = 1;
  private liveBufferBytes = 0;
  private readonly pipelines = new WeakMap<object, PipelineInfo & { label: string }>();
  private readonly modules = new WeakMap<object, { label: string; code: string }>();
  private readonly waiting: { resolve: () => void }[] = [];
  /** The shadowed (uniform) buffers by id, to read their contents at submit. */
  private readonly shadowed = new Map<number, RecordingBuffer>();

  constructor(readonly limits: GPUSupportedLimits, readonly features: GPUSupportedFeatures = new Set() as unknown as GPUSupportedFeatures) {
    this.queue = {
      writeBuffer: (buffer: GPUBuffer, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset = 0, size?: number) => {
        const b = buffer as unknown as RecordingBuffer;
        const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
        const n = size ?? bytes.byteLength - dataOffset;
        this.work.writeBuffers++;
        this.work.writeBufferBytes += n;
        b.shadow?.set(bytes.subarray(dataOffset, dataOffset + n), offset);
      },
      submit: (buffers: GPUCommandBuffer[]) => {
        for (const cb of buffers) this.recordSubmit(cb as unknown as RecordingEncoder);
      },
      onSubmittedWorkDone: (): Promise<void> => {
        this.work.blockingSyncs++;
        return Promise.resolve();
      },
    } as unknown as GPUQueue;
  }

  /** Host bytes this device holds for buffers (uniform shadows): stays small for any preset. */
  get hostBytes(): number {
    return this.liveBufferBytes;
  }

  takeHostWork(): HostWork {
    const w = this.work;
    this.work = emptyHostWork();
    return w;
  }

  takeSubmits(): RecordedSubmit[] {
    return this.submits.splice(0);
  }

  addEventListener(): void {}
  destroy(): void {}

  createBuffer(d: GPUBufferDescriptor): GPUBuffer {
    const b = new RecordingBuffer(this, this.nextId++, d.size, d.usage, d.label ?? '', d.mappedAtCreation === true);
    this.work.buffersCreated++;
    if (d.mappedAtCreation) this.work.stagingBuffersCreated++;
    if (b.shadow) {
      this.liveBufferBytes += b.shadow.byteLength;
      this.shadowed.set(b.id, b);
    }
    return b as unknown as GPUBuffer;
  }

  destroyed(b: RecordingBuffer): void {
    if (b.shadow && this.shadowed.delete(b.id)) this.liveBufferBytes -= b.shadow.byteLength;
  }

  createShaderModule(d: GPUShaderModuleDescriptor): GPUShaderModule {
    const m = { label: d.label ?? '', getCompilationInfo: async () => ({ messages: [] }) };
    this.modules.set(m, { label: d.label ?? '', code: d.code });
    return m as unknown as GPUShaderModule;
  }

  createBindGroupLayout(d: GPUBindGroupLayoutDescriptor): GPUBindGroupLayout {
    this.work.bindGroupLayoutsCreated++;
    return { label: d.label ?? '', entries: d.entries } as unknown as GPUBindGroupLayout;
  }

  createPipelineLayout(d: GPUPipelineLayoutDescriptor): GPUPipelineLayout {
    return { label: d.label ?? '', bindGroupLayouts: d.bindGroupLayouts } as unknown as GPUPipelineLayout;
  }

  createComputePipeline(d: GPUComputePipelineDescriptor): GPUComputePipeline {
    this.work.pipelinesCreated++;
    const module = this.modules.get(d.compute.module as unknown as object);
    if (!module) throw new Error('recording device: pipeline from a module this device did not create');
    const layout = d.layout;
    const p = {
      label: d.label ?? '',
      getBindGroupLayout: (index: number) => {
        this.work.bindGroupLayoutLookups++;
        if (layout !== 'auto') return (layout as unknown as { bindGroupLayouts: GPUBindGroupLayout[] }).bindGroupLayouts[index];
        return { label: `${d.label} auto layout ${index}` } as unknown as GPUBindGroupLayout;
      },
    };
    const constants: Record<string, number> = {};
    for (const [k, v] of Object.entries(d.compute.constants ?? {})) constants[k] = Number(v);
    this.pipelines.set(p, { label: p.label, shader: module.label, code: module.code, entryPoint: d.compute.entryPoint ?? '', constants });
    return p as unknown as GPUComputePipeline;
  }

  async createComputePipelineAsync(d: GPUComputePipelineDescriptor): Promise<GPUComputePipeline> {
    return this.createComputePipeline(d);
  }

  createBindGroup(d: GPUBindGroupDescriptor): GPUBindGroup {
    this.work.bindGroupsCreated++;
    return { label: d.label ?? '', entries: [...d.entries] } as unknown as GPUBindGroup;
  }

  createCommandEncoder(): GPUCommandEncoder {
    this.work.commandEncoders++;
    return new RecordingEncoder(this) as unknown as GPUCommandEncoder;
  }

  /** The shader source and override constants of a pipeline this device created. */
  pipelineInfo(p: GPUComputePipeline): PipelineInfo & { label: string } {
    const info = this.pipelines.get(p as unknown as object);
    if (!info) throw new Error(`recording device: pipeline ${p.label} was not created here`);
    return info;
  }

  pendingMap(buffer: RecordingBuffer): Promise<void> {
    this.work.mapAsyncs++;
    if (!(buffer.usage & 0x01)) throw new Error(`recording device: mapAsync on ${buffer.label}, which is not MAP_READ`);
    return new Promise<void>((resolve) => {
      const entry = { resolve };
      this.waiting.push(entry);
      // Idle check: nothing new submitted by the time the event loop comes round → blocking.
      setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        this.work.blockingReadbacks++;
        resolve();
      }, 0);
    });
  }

  private recordSubmit(enc: RecordingEncoder): void {
    this.work.submits++;
    // Uniform contents as of this submit: queue.writeBuffer calls before it have landed.
    for (const d of enc.dispatches) {
      const u = d.bindings.find((b) => b.binding === 0 && b.usage & UNIFORM);
      if (!u) continue;
      const buf = this.shadowed.get(u.bufferId);
      if (buf?.shadow) d.uniform = new DataView(buf.shadow.slice(u.offset, u.offset + u.size).buffer);
    }
    this.submits.push({ dispatches: enc.dispatches, copies: enc.copies });
    // Work queued behind a pending read-back keeps the GPU busy: those maps are overlapped.
    for (const w of this.waiting.splice(0)) w.resolve();
  }
}
