import { GpuValidationError } from './errors.ts';

/** A WGSL module as loaded from shaders/: its file name (for labels and cache keys) and text. */
export interface ShaderSource {
  readonly name: string;
  readonly code: string;
}

export type PipelineConstants = Record<string, number>;

/** One pipeline a kernel asks for: what `get()` compiles. */
export interface PipelineRequest {
  readonly shader: ShaderSource;
  readonly entryPoint: string;
  readonly constants: PipelineConstants;
}

/** Called as each pipeline of a compile() finishes: `done` of `total`, the one just compiled. */
export type CompileProgress = (done: number, total: number, label: string) => void;

/**
 * Pipelines compiled at once by compile(). Drivers compile on threads of their own (Dawn
 * and browsers do); a few in flight keep them busy without queueing dozens behind one slow one.
 */
const COMPILES_IN_FLIGHT = 4;

/**
 * Compiles each (shader, entry point, override constants) once. Override constants
 * specialise a kernel at pipeline creation (tile sizes, transposes) without string pasting.
 *
 * `get()` compiles synchronously on a miss, which blocks the calling thread for as long as the
 * driver takes (seconds per kernel on a CPU "GPU", a minute for a whole model under load):
 * code that must stay responsive (a contributor's heartbeats) first runs its work under
 * record(), then compile()s what was recorded without blocking.
 */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private recorded: Map<string, PipelineRequest> | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly onCompileError: (message: string) => void,
  ) {}

  get(shader: ShaderSource, entryPoint: string, constants: PipelineConstants = {}): GPUComputePipeline {
    const key = pipelineKey(shader, entryPoint, constants);
    let pipeline = this.pipelines.get(key);
    if (pipeline) return pipeline;
    if (this.recorded) {
      this.recorded.set(key, { shader, entryPoint, constants });
      return placeholder(key);
    }
    pipeline = this.device.createComputePipeline(this.descriptor(key, { shader, entryPoint, constants }));
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  /** True inside record(): `get()` returns stand-ins that must not be dispatched. */
  get recording(): boolean {
    return this.recorded !== null;
  }

  /**
   * Runs `work` with every pipeline it asks for that is not compiled yet recorded instead of
   * compiled; returns those requests. The pipelines `work` gets are stand-ins: the caller
   * (Gpu.dispatch) records no dispatch while recording.
   */
  record(work: () => void): PipelineRequest[] {
    if (this.recorded) throw new Error('PipelineCache.record: already recording');
    const recorded = (this.recorded = new Map());
    try {
      work();
    } finally {
      this.recorded = null;
    }
    return [...recorded.values()];
  }

  /**
   * Compiles the requests not cached yet without blocking the calling thread
   * (createComputePipelineAsync), a few at a time: reports 0 of the total, then each as it
   * finishes (nothing when all are cached).
   */
  async compile(requests: readonly PipelineRequest[], onProgress?: CompileProgress): Promise<void> {
    const todo = new Map<string, PipelineRequest>();
    for (const r of requests) {
      const key = pipelineKey(r.shader, r.entryPoint, r.constants);
      if (!this.pipelines.has(key)) todo.set(key, r);
    }
    const queue = [...todo.entries()];
    const total = queue.length;
    let done = 0;
    if (total > 0) onProgress?.(0, total, '');
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [key, request] = next;
        this.pipelines.set(key, await this.compileOne(key, request));
        onProgress?.(++done, total, key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(COMPILES_IN_FLIGHT, total) }, worker));
  }

  get size(): number {
    return this.pipelines.size;
  }

  private async compileOne(key: string, request: PipelineRequest): Promise<GPUComputePipeline> {
    const descriptor = this.descriptor(key, request);
    if (typeof this.device.createComputePipelineAsync !== 'function') {
      // Without the async form, compile one per turn of the event loop at least.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return this.device.createComputePipeline(descriptor);
    }
    try {
      return await this.device.createComputePipelineAsync(descriptor);
    } catch (e) {
      throw new GpuValidationError(`compiling ${key}: ${(e as Error).message}`);
    }
  }

  private descriptor(key: string, r: PipelineRequest): GPUComputePipelineDescriptor {
    return { label: key, layout: 'auto', compute: { module: this.module(r.shader), entryPoint: r.entryPoint, constants: r.constants } };
  }

  private module(shader: ShaderSource): GPUShaderModule {
    let module = this.modules.get(shader.name);
    if (!module) {
      module = this.device.createShaderModule({ label: shader.name, code: shader.code });
      this.modules.set(shader.name, module);
      // Compile errors also surface as validation errors; this names the file and line.
      void module.getCompilationInfo?.().then((info) => {
        for (const m of info.messages) {
          if (m.type === 'error') this.onCompileError(`shaders/${shader.name}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`);
        }
      });
    }
    return module;
  }
}

function pipelineKey(shader: ShaderSource, entryPoint: string, constants: PipelineConstants): string {
  const keys = Object.keys(constants).sort();
  return `${shader.name}|${entryPoint}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
}

/** What get() hands out while recording: it carries the label, and nothing may use it. */
function placeholder(label: string): GPUComputePipeline {
  return {
    label,
    __brand: 'GPUComputePipeline',
    getBindGroupLayout() {
      throw new Error(`pipeline ${label} was only recorded (PipelineCache.record), not compiled`);
    },
  } as unknown as GPUComputePipeline;
}
