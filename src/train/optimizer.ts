// The inner optimiser of one slice: global-norm clipping then AdamW, all on the GPU. The clip
// factor stays on the GPU (globalGradNorm writes [norm, scale]; adamwStep reads the scale),
// so a step needs no read-back. The moments live in arenas laid out like the slice's
// parameter and gradient arenas (parameterArenaSpecs): when the parameters and gradients
// given are those arenas' views, the norm and AdamW run over the arenas' spans — a few
// dispatches per step (one per chunk and weight-decay group) instead of one per tensor.
import { TensorArena, arenaOf } from '../gpu/arena.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Tensor } from '../gpu/tensor.ts';
import { adamwStep } from '../kernels/adamw.ts';
import { fill } from '../kernels/elementwise.ts';
import { globalGradNorm } from '../kernels/gradnorm.ts';
import type { ParamSpec } from '../model/config.ts';
import { parameterArenaSpecs } from '../model/slice.ts';

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
  private readonly arenas: { m: TensorArena; v: TensorArena };
  /** Parameter, gradient and moment spans that line up, when the parameters and gradients are arena views. */
  private readonly spans: FlatRun[] | null;
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
    const specs = parameterArenaSpecs(layout);
    const m = new TensorArena(gpu, specs, 'adam.m'); // zeroed
    let v: TensorArena;
    try {
      v = new TensorArena(gpu, specs, 'adam.v');
    } catch (e) {
      m.release();
      throw e;
    }
    this.arenas = { m, v };
    for (const spec of layout) {
      this.m.set(spec.name, m.tensors.get(spec.name)!);
      this.v.set(spec.name, v.tensors.get(spec.name)!);
    }
    this.spans = this.alignedSpans(layout, params, grads);
    this.gradNorm = gpu.tensor([2], 'f32', 'grad norm');
    fill(gpu, this.gradNorm, 0);
  }

  /** Dispatches of one update(): the flat path's when the arenas line up. */
  get flat(): boolean {
    return this.spans !== null;
  }

  /** The gradients the norm runs over: the arenas' flat runs (gaps are zero), or every tensor. */
  get normGradients(): Tensor[] {
    return this.spans ? this.spans.map((s) => s.grad) : this.layout.map((s) => this.grads.get(s.name)!);
  }

  /** Records clipping and one AdamW update of every parameter at learning rate `lr`. */
  update(lr: number): void {
    globalGradNorm(this.gpu, this.normGradients, this.gradNorm, { maxNorm: this.settings.clipNorm });
    this.applyUpdate(lr);
  }

  /**
   * Records one AdamW update at `lr` (step count + 1) clipped by the scale gradNorm[1] already
   * holds (update() computes it; a pipeline stage writes the pipeline's).
   */
  applyUpdate(lr: number): void {
    this.step++;
    const { beta1, beta2, eps, weightDecay } = this.settings;
    if (this.spans) {
      for (const s of this.spans) {
        const options = { lr, beta1, beta2, eps, weightDecay, decayEnd: s.decayEnd, step: this.step };
        adamwStep(this.gpu, s.param, s.grad, s.m, s.v, options, this.gradNorm);
      }
      return;
    }
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
    return this.gradNorm.byteLength + this.arenas.m.bytes + this.arenas.v.bytes;
  }

  destroy(): void {
    this.arenas.m.release();
    this.arenas.v.release();
    this.gradNorm.release();
    this.m.clear();
    this.v.clear();
  }

  /**
   * The spans of the parameter, gradient and moment arenas, when every parameter and gradient
   * given is its arena's view at the place the moments' plan puts it; else null (per tensor).
   */
  private alignedSpans(
    layout: readonly ParamSpec[],
    params: ReadonlyMap<string, Tensor>,
    grads: ReadonlyMap<string, Tensor>,
  ): AdamW['spans'] {
    if (layout.length === 0) return null;
    const pa = arenaOf(params.get(layout[0].name)!);
    const ga = arenaOf(grads.get(layout[0].name)!);
    const { m, v } = this.arenas;
    if (!pa || !ga || pa === ga || pa.planKey !== m.planKey || ga.planKey !== m.planKey) return null;
    if (pa.tensors.size !== layout.length || !layout.every((s) => pa.holds(s.name, params.get(s.name)!) && ga.holds(s.name, grads.get(s.name)!))) {
      return null;
    }
    // A decayed span and the undecayed span right after it in the same chunk are one run (the
    // gap between them is zero in every arena, so AdamW and the norm leave it zero).
    const runs: FlatRun[] = [];
    const arenas = [pa, ga, m, v];
    pa.spans.forEach((s, i) => {
      const last = runs[runs.length - 1];
      const decayed = s.group === 0;
      if (last && !decayed && last.decayEnd === last.param.size && last.param.buffer === s.tensor.buffer) {
        const size = (s.tensor.offset + s.tensor.byteLength - last.param.offset) / 4;
        const [param, grad, mm, vv] = arenas.map((a, k) => {
          const first = [last.param, last.grad, last.m, last.v][k];
          return new Tensor(this.gpu, a.spans[i].tensor.buffer, [size], 'f32', `${first.label} + undecayed`, first.offset, true);
        });
        runs[runs.length - 1] = { param, grad, m: mm, v: vv, decayEnd: last.decayEnd };
        return;
      }
      const t = arenas.map((a) => a.spans[i].tensor);
      runs.push({ param: t[0], grad: t[1], m: t[2], v: t[3], decayEnd: decayed ? s.tensor.size : 0 });
    });
    return runs;
  }
}

/** Parameter, gradient and moment views of one contiguous run: elements [0, decayEnd) take weight decay. */
interface FlatRun {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  decayEnd: number;
}
