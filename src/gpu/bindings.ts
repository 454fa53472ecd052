// Per-dispatch host work made (nearly) free for a step that repeats: every dispatch's
// uniform parameters go into a slot of one uniform buffer per submit, written with a single
// writeBuffer at the flush, and bind groups are cached by (pipeline, uniform slot, buffers),
// so a training step that records the same dispatches over the same buffers as the step
// before creates no bind group and looks up no layout.
import type { Params } from './params.ts';

const UNIFORM_USAGE = 0x40 /* UNIFORM */ | 0x08; /* COPY_DST */
/** Params are at most this many bytes (src/gpu/params.ts). */
const MAX_PARAM_BYTES = 256;
/** Slots of the first uniform arena; it doubles when a submit needs more (once, early). */
const INITIAL_SLOTS = 1024;
/** Bind groups kept; past this the cache starts again (a workload that never repeats). */
const MAX_CACHED_BIND_GROUPS = 16384;

export interface UniformSlot {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** One uniform buffer per submit; dispatch i of the submit uses slot i. */
export class UniformArena {
  private readonly stride: number;
  private buffer: GPUBuffer | null = null;
  private staging: Uint8Array = new Uint8Array(0);
  private used = 0;
  /** Arenas outgrown during the current submit: written, then destroyed after it. */
  private retired: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice, alignment: number) {
    this.stride = Math.ceil(MAX_PARAM_BYTES / alignment) * alignment;
  }

  /** Copies `params` into the next slot; the GPU sees it once flush() has run. */
  stage(params: Params): UniformSlot {
    if (!this.buffer || this.used === this.capacity) this.grow();
    const offset = this.used * this.stride;
    this.staging.set(new Uint8Array(params.bytes, 0, params.byteLength), offset);
    this.used++;
    return { buffer: this.buffer!, offset, size: params.byteLength };
  }

  /** Writes the staged slots (one writeBuffer); call right before the submit that uses them. */
  flush(): void {
    if (this.used > 0 && this.buffer) {
      this.device.queue.writeBuffer(this.buffer, 0, this.staging as Uint8Array<ArrayBuffer>, 0, this.used * this.stride);
    }
    this.used = 0;
  }

  /** After the submit: outgrown arenas may go (the implementation keeps them until it ran). */
  afterSubmit(): void {
    for (const b of this.retired) b.destroy();
    this.retired.length = 0;
  }

  destroy(): void {
    this.afterSubmit();
    this.buffer?.destroy();
    this.buffer = null;
  }

  private get capacity(): number {
    return this.staging.byteLength / this.stride;
  }

  private grow(): void {
    const slots = this.buffer ? 2 * this.capacity : INITIAL_SLOTS;
    if (this.buffer) {
      // Dispatches already recorded this submit read the old buffer: give it their slots now
      // (queue order puts this write before the submit), and keep it until that submit.
      this.flush();
      this.retired.push(this.buffer);
    }
    this.buffer = this.device.createBuffer({ size: slots * this.stride, usage: UNIFORM_USAGE, label: 'params arena' });
    this.staging = new Uint8Array(slots * this.stride);
    this.used = 0;
  }
}

/** Bind groups by what they bind, and each pipeline's layout, looked up once. */
export class BindGroupCache {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  /** Bind groups created (cache misses), for tests and profiling. */
  created = 0;

  constructor(private readonly device: GPUDevice) {}

  get(pipeline: GPUComputePipeline, uniform: UniformSlot | null, buffers: readonly GPUBufferBinding[]): GPUBindGroup {
    let key = `${this.id(pipeline)}`;
    if (uniform) key += `|u${this.id(uniform.buffer)}@${uniform.offset}+${uniform.size}`;
    for (const b of buffers) key += b.offset === undefined ? `|${this.id(b.buffer)}` : `|${this.id(b.buffer)}@${b.offset}+${b.size}`;
    let group = this.groups.get(key);
    if (group) return group;
    const entries: GPUBindGroupEntry[] = [];
    let binding = 0;
    if (uniform) entries.push({ binding: binding++, resource: { buffer: uniform.buffer, offset: uniform.offset, size: uniform.size } });
    for (const resource of buffers) entries.push({ binding: binding++, resource });
    group = this.device.createBindGroup({ layout: this.layout(pipeline), entries });
    if (this.groups.size >= MAX_CACHED_BIND_GROUPS) this.groups.clear();
    this.groups.set(key, group);
    this.created++;
    return group;
  }

  clear(): void {
    this.groups.clear();
  }

  private layout(pipeline: GPUComputePipeline): GPUBindGroupLayout {
    let layout = this.layouts.get(pipeline);
    if (!layout) this.layouts.set(pipeline, (layout = pipeline.getBindGroupLayout(0)));
    return layout;
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) this.ids.set(o, (id = this.nextId++));
    return id;
  }
}
