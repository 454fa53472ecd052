// The inner optimiser of one slice: global-norm clipping then AdamW, all on the GPU. The clip
// factor stays on the GPU (globalGradNorm writes [norm, scale]; adamwStep reads the scale),
// so a step needs no read-back.
import type { Gpu } from '../gpu/gpu.ts';
import type { Tensor } from '../gpu/tensor.ts';
import { adamwStep } from '../kernels/adamw.ts';
import { fill } from '../kernels/elementwise.ts';
import { globalGradNorm } from '../kernels/gradnorm.ts';
import type { ParamSpec } from '../model/config.ts';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay for tensors whose ParamSpec says weightDecay. */
  weightDecay: number;
  /** Global gradient-norm clip threshold. */
  clipNorm: number;
}

export const DEFAULT_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };

export class AdamW {
  readonly m = new Map<string, Tensor>();
  readonly v = new Map<string, Tensor>();
  /** [‖g‖, clip scale] of the last step, on the GPU. */
  readonly gradNorm: Tensor;
  /** Steps taken (the next step is step + 1). */
  step = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly layout: readonly ParamSpec[],
    private readonly params: ReadonlyMap<string, Tensor>,
    private readonly grads: ReadonlyMap<string, Tensor>,
    readonly settings: AdamWSettings = DEFAULT_ADAMW,
  ) {
    for (const spec of layout) {
      for (const [moments, kind] of [[this.m, 'adam.m'], [this.v, 'adam.v']] as const) {
        const t = gpu.tensor(spec.shape, 'f32', `${kind}/${spec.name}`);
        fill(gpu, t, 0);
        moments.set(spec.name, t);
      }
    }
    this.gradNorm = gpu.tensor([2], 'f32', 'grad norm');
  }

  /** Records clipping and one AdamW update of every parameter at learning rate `lr`. */
  update(lr: number): void {
    const grads = this.layout.map((s) => this.grads.get(s.name)!);
    globalGradNorm(this.gpu, grads, this.gradNorm, { maxNorm: this.settings.clipNorm });
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.settings;
    for (const spec of this.layout) {
      adamwStep(
        this.gpu,
        this.params.get(spec.name)!,
        this.grads.get(spec.name)!,
        this.m.get(spec.name)!,
        this.v.get(spec.name)!,
        { lr, beta1, beta2, eps, weightDecay: spec.weightDecay ? weightDecay : 0, step: this.step },
        this.gradNorm,
      );
    }
  }

  /** Moments for a checkpoint, named 'adam.m/<param>' and 'adam.v/<param>'. */
  async readState(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [prefix, moments] of [['adam.m', this.m], ['adam.v', this.v]] as const) {
      for (const [name, t] of moments) out.set(`${prefix}/${name}`, await this.gpu.readF32(t));
    }
    return out;
  }

  /** Restores moments written by readState, and the step count. */
  loadState(state: ReadonlyMap<string, Float32Array>, step: number): void {
    for (const [prefix, moments] of [['adam.m', this.m], ['adam.v', this.v]] as const) {
      for (const [name, t] of moments) {
        const data = state.get(`${prefix}/${name}`);
        if (!data) throw new Error(`checkpoint lacks optimiser state ${prefix}/${name}`);
        this.gpu.write(t, data);
      }
    }
    this.step = step;
  }

  /** Bytes of optimiser state on the GPU. */
  get bytes(): number {
    let n = this.gradNorm.byteLength;
    for (const t of this.m.values()) n += 2 * t.byteLength;
    return n;
  }

  destroy(): void {
    for (const t of [...this.m.values(), ...this.v.values(), this.gradNorm]) t.release();
    this.m.clear();
    this.v.clear();
  }
}
