/** A WGSL module as loaded from shaders/: its file name (for labels and cache keys) and text. */
export interface ShaderSource {
  readonly name: string;
  readonly code: string;
}

export type PipelineConstants = Record<string, number>;

/**
 * Compiles each (shader, entry point, override constants) once. Override constants
 * specialise a kernel at pipeline creation (tile sizes, transposes) without string pasting.
 */
export class PipelineCache {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    private readonly device: GPUDevice,
    private readonly onCompileError: (message: string) => void,
  ) {}

  get(shader: ShaderSource, entryPoint: string, constants: PipelineConstants = {}): GPUComputePipeline {
    const keys = Object.keys(constants).sort();
    const key = `${shader.name}|${entryPoint}|${keys.map((k) => `${k}=${constants[k]}`).join(',')}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        label: key,
        layout: 'auto',
        compute: { module: this.module(shader), entryPoint, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.pipelines.size;
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
