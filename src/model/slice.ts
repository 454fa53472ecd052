// LayerSlice: the layers [from, to) of the model on the GPU — parameters, gradients, saved
// activations and scratch — with a recorded forward and backward that match
// src/model/reference.ts (the float64 ground truth it is tested against).
//
//   from = 0:  x = embedding[tokens]            (else x = the previous stage's activations)
//   blocks from … to−1 (src/model/block.ts)
//   to = L:    logits = rmsnorm(x)·finalNorm · headᵀ (head = embedding when tied), and the
//              mean cross-entropy over targets ≠ −1   (else the output x goes to the next stage)
//
// Everything is recorded into the Gpu's one open encoder: a forward and a backward make no
// submit, so k micro-batches plus the optimiser step are one submit (see src/train). Inputs are
// checked before the first command is recorded: a bad call throws and records nothing.
//
// Buffers. Residual stream res[0 … L'] (L' = to − from): res[0] is the embedding output (or a
// copy of the input x, so the caller may reuse its buffer), res[i+1] the output of block i;
// res[L'] is `output`. Per block the activations of BlockActivations. Last stage: the final
// norm's output and rstd, one row chunk of logits [R, Vp] (head.ts: the head and loss fused
// in chunks, recorded in the backward, or by the loss getter after a forward alone), the
// per-row losses and the mean. Gradients flow backwards through one [N, C]
// buffer updated in place (it is `inputGrad` when from > 0).
//
// Tied embeddings (config.ts): in the whole model the head's dW is written first (beta =
// accumulate ? 1 : 0) and the lookup's scatter-add is added on top; a last stage that does not
// start at 0 holds its own copy `embedding` and yields only the head's part.
//
// Legend (as in block.ts, src/kernels/README.md): B batch, T time, N = B·T rows, C channels,
// V vocabulary. [B, T, C] and [N, C] are the same row-major buffer.
//
// Over ~400 lines on purpose: one GPU object — its allocation, the forward and backward that
// use it, and their input checks, which must run before either records anything — reads best
// whole; the per-block maths is already in block.ts.
import { TensorArena, joinedView, type ArenaSpec } from '../gpu/arena.ts';
import { FusedHead, paddedVocab } from './head.ts';
import { NormReduce } from './norm-reduce.ts';
import { KernelInputError } from '../gpu/errors.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Tensor } from '../gpu/tensor.ts';
import { ATTENTION_MAX_D } from '../kernels/attention.ts';
import { crossEntropyScale, uploadTargets } from '../kernels/crossentropy.ts';
import {
  type EmbeddingIndexTensor, embeddingBackward, embeddingBackwardIndex, embeddingForward, embeddingIndexCapacity,
  uploadEmbeddingIndex, uploadTokens,
} from '../kernels/embedding.ts';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.ts';
import { SplitKGroup } from '../kernels/matmul-split-group.ts';
import {
  type BlockActivations, type BlockDims, type BlockScratch, type BlockTensors, TensorSet,
  allocBlockActivations, allocBlockScratch, blockBackward, blockForward, blockSplitKElements, type NormPartials, type PackedTensors,
} from './block.ts';
import {
  BLOCK_TENSORS, ConfigError, type ModelConfig, type ParamSpec, blockParamName, initParameters, parameterLayout,
} from './config.ts';

const K = 'LayerSlice';

export interface SliceShape {
  /** B: sequences per micro-batch. */
  batch: number;
  /** T: tokens per sequence (≤ cfg.seqLen). */
  seqLen: number;
  /** Packed q|k|v and gate|up projections (block.ts; default true). False: the split path, kept to compare against. */
  fused?: boolean;
  /** Rows per chunk of the fused head (head.ts; default from LOGITS_CHUNK_BYTES): tests. */
  headChunkRows?: number;
}

export interface SliceInput {
  /** Token ids, B·T (from = 0). */
  tokens?: Int32Array;
  /** Activations [B, T, C] f32 from the previous stage (from > 0). */
  x?: Tensor;
  /** Next-token targets, B·T, −1 ignored (to = L). */
  targets?: Int32Array;
}

export interface SliceBackwardOptions {
  /** ∂loss/∂output [B, T, C]; required when to < L. */
  dOut?: Tensor;
  /** Add into the gradients instead of overwriting them (micro-batch accumulation). */
  accumulate?: boolean;
  /** Multiplies d(loss), e.g. 1/k for k micro-batches; default 1. */
  lossScale?: number;
}

export interface SliceMemory {
  /** Bytes of the parameters. */
  parameters: number;
  /** Bytes of the parameter gradients. */
  gradients: number;
  /** Bytes kept from forward to backward: residual stream, per-block activations, head
   * activations (one row chunk of logits), and the uploaded tokens, targets and embedding index. */
  activations: number;
  /** Bytes of temporaries: the slice's own scratch plus the largest transient the kernels
   * take from the pool (rmsnorm dweight partials or attention row sums). */
  scratch: number;
  total: number;
}

/**
 * How a slice lays its parameters (and gradients, and AdamW its moments) out in arenas: the
 * tensors with weight decay together (group 0), then those without (group 1).
 */
export function parameterArenaSpecs(layout: readonly ParamSpec[]): ArenaSpec[] {
  return layout.map((s) => ({
    name: s.name, shape: s.shape, group: s.weightDecay ? 0 : 1, bundle: packedBundle(s.name), reserve: headPadding(s),
  }));
}

/** Zero rows kept after a [V, C] head (or tied embedding) so it reads as [paddedVocab(V), C]. */
function headPadding(s: ParamSpec): number | undefined {
  if ((s.name !== 'head' && s.name !== 'embedding') || s.shape.length !== 2) return undefined;
  return (paddedVocab(s.shape[0]) - s.shape[0]) * s.shape[1];
}

/** wq, wk, wv of a block lie back to back (one fused projection), and so do wGate and wUp. */
function packedBundle(name: string): string | undefined {
  const m = /^blocks\.(\d+)\.(wq|wk|wv|wGate|wUp)$/.exec(name);
  if (!m) return undefined;
  return `blocks.${m[1]}.${m[2] === 'wGate' || m[2] === 'wUp' ? 'gate|up' : 'q|k|v'}`;
}

/** The GPU model slice [from, to): see the header of this file. */
export class LayerSlice {
  readonly B: number;
  readonly T: number;
  readonly layout: readonly ParamSpec[];
  private readonly N: number;
  private readonly dims: BlockDims;
  private readonly paramMap = new Map<string, Tensor>();
  private readonly gradMap = new Map<string, Tensor>();
  private readonly sets: { acts: TensorSet; scratch: TensorSet; inputs: TensorSet };
  /** Parameters and gradients as views into flat arenas (AdamW and the norm run over their spans). */
  private paramArena: TensorArena | null = null;
  private gradArena: TensorArena | null = null;
  /** Upload targets kept for the slice's life (same buffers every step: bind groups stay cached). */
  private readonly inputBuffers: { tokens: Tensor | null; targets: Tensor | null; index: Tensor | null } = { tokens: null, targets: null, index: null };
  private readonly res: Tensor[] = [];
  private readonly acts: BlockActivations[] = [];
  /** All norms' weight gradients reduced in one dispatch (norm-reduce.ts), or null: each its own. */
  private readonly normReduce: NormReduce | null = null;
  /** Per block, packed views of its weights and gradients (fused path), or empty (split path). */
  private readonly packed: { w: PackedTensors; g: PackedTensors }[] = [];
  private readonly scratch: BlockScratch;
  private readonly head: FusedHead | null = null;
  /**
   * Split-K reductions of a backward, one dispatch per group (matmul-split-group.ts): the
   * head's input gradient chunks (reduced before the final norm reads them), and every weight
   * gradient (reduced after the last block, before the embedding adds onto a tied head).
   */
  private splitK: { head: SplitKGroup; weights: SplitKGroup } | null = null;
  /** The last forward's head (logits, losses) is not recorded yet: backward or the loss getter records it. */
  private headPending = false;
  /** The residual-stream gradient: dy of the block being differentiated; inputGrad when from > 0. */
  private readonly dRes: Tensor;
  // per forward
  private tokens: Tensor | null = null;
  private targets: Tensor | null = null;
  private targetsCpu: Int32Array | null = null;
  private index: EmbeddingIndexTensor | null = null;
  private state: 'empty' | 'forward' | 'backward' = 'empty';
  private destroyed = false;

  private constructor(
    private readonly gpu: Gpu,
    readonly cfg: ModelConfig,
    readonly from: number,
    readonly to: number,
    shape: SliceShape,
  ) {
    this.layout = parameterLayout(cfg, from, to); // validates cfg and [from, to)
    const B = shape.batch;
    const T = shape.seqLen;
    if (!Number.isInteger(B) || B < 1) throw new KernelInputError(K, `batch must be a positive integer, got ${B}`);
    if (!Number.isInteger(T) || T < 1 || T > cfg.seqLen) {
      throw new KernelInputError(K, `seqLen must be an integer in [1, ${cfg.seqLen}] (the config's seqLen), got ${T}`);
    }
    const { dim: C, heads: H, kvHeads: Hkv, mlpHidden: F, vocabSize: V } = cfg;
    const D = C / H;
    if (D > ATTENTION_MAX_D) throw new ConfigError('heads', `gives head size ${D}, over the attention kernel's maximum of ${ATTENTION_MAX_D}`);
    const N = B * T;
    if (N * Math.max(C, F, V) > 0xffffffff) throw new KernelInputError(K, `B·T = ${N} rows overflow 32-bit indexing for this model`);
    this.B = B;
    this.T = T;
    this.N = N;
    this.dims = { B, T, N, C, H, Hkv, D, F, ropeBase: cfg.ropeBase, eps: cfg.normEps };
    this.sets = { acts: new TensorSet(gpu), scratch: new TensorSet(gpu), inputs: new TensorSet(gpu) };
    try {
      const specs = parameterArenaSpecs(this.layout);
      this.paramArena = new TensorArena(gpu, specs, 'parameters');
      this.gradArena = new TensorArena(gpu, specs, 'gradients'); // zeroed, so a first backward may accumulate
      for (const spec of this.layout) {
        this.paramMap.set(spec.name, this.paramArena.tensors.get(spec.name)!);
        this.gradMap.set(spec.name, this.gradArena.tensors.get(spec.name)!);
      }
      if (shape.fused !== false) this.packViews();
      const fused = this.packed.length > 0;
      const a = this.sets.acts;
      for (let i = 0; i <= to - from; i++) this.res.push(a.make([B, T, C], `residual ${from + i}`));
      for (let l = from; l < to; l++) this.acts.push(allocBlockActivations(a, this.dims, l, fused));
      if (this.isLast) {
        this.head = new FusedHead(gpu, { N, C, V }, a, shape.headChunkRows);
      }
      this.scratch = allocBlockScratch(this.sets.scratch, this.dims, fused);
      const headSplits = this.head?.splitKElements() ?? { weights: 0, head: 0 };
      this.splitK = {
        head: new SplitKGroup(gpu, 'head input-gradient split-K partials', headSplits.head),
        weights: new SplitKGroup(gpu, 'weight-gradient split-K partials', (to - from) * blockSplitKElements(gpu, this.dims, fused) + headSplits.weights),
      };
      if (shape.fused !== false) {
        const norms = new Map(this.layout.filter((p) => /(^|\.)(attnNorm|mlpNorm|finalNorm)$/.test(p.name)).map((p) => [p.name, this.gradMap.get(p.name)!]));
        this.normReduce = NormReduce.plan(norms, N, C, this.sets.scratch);
      }
      const inputs = this.sets.inputs;
      if (from === 0) {
        this.inputBuffers.tokens = inputs.make([N], 'tokens', 'i32');
        this.inputBuffers.index = inputs.make([embeddingIndexCapacity(N, V)], 'embedding backward index', 'i32');
      }
      if (this.isLast) this.inputBuffers.targets = inputs.make([N], 'targets', 'i32');
      this.dRes = this.sets.scratch.make([B, T, C], from > 0 ? 'inputGrad' : 'residual grad');
    } catch (e) {
      this.releaseAll();
      throw e;
    }
  }

  /** Validates the config, slice and shape (ConfigError / KernelInputError) and allocates everything. */
  static create(gpu: Gpu, cfg: ModelConfig, from: number, to: number, shape: SliceShape): LayerSlice {
    if (!shape || typeof shape !== 'object') throw new KernelInputError(K, 'shape { batch, seqLen } is required');
    return new LayerSlice(gpu, cfg, from, to, shape);
  }

  get params(): ReadonlyMap<string, Tensor> {
    return this.paramMap;
  }

  get grads(): ReadonlyMap<string, Tensor> {
    return this.gradMap;
  }

  /** True when the blocks run the fused path (packed q|k|v and gate|up projections: block.ts). */
  get fused(): boolean {
    return this.packed.length > 0;
  }

  /** [B, T, C] hidden state after the last block, when to < L. */
  get output(): Tensor | null {
    return this.isLast ? null : this.res[this.res.length - 1];
  }

  /** [1] mean cross-entropy over the valid targets of the last forward, when to = L. */
  get loss(): Tensor | null {
    if (!this.head) return null;
    if (this.headPending) {
      // a forward without backward (evaluation): record the loss half of the head now
      this.head.recordLoss(this.paramMap.get(this.headName)!, this.targets!);
      this.headPending = false;
    }
    return this.head.lossMean;
  }

  /** ∂loss/∂x [B, T, C] of the last backward, when from > 0. */
  get inputGrad(): Tensor | null {
    return this.from > 0 ? this.dRes : null;
  }

  private get isLast(): boolean {
    return this.to === this.cfg.layers;
  }

  private get headName(): string {
    return this.cfg.tiedEmbeddings ? 'embedding' : 'head';
  }

  /** Seeded initialisation (initParameters), uploaded. */
  initialize(seed: number): void {
    this.setParameters(initParameters(this.cfg, this.layout, seed));
  }

  /** Uploads every parameter of `layout` (all required, sizes checked before any upload). */
  setParameters(values: ReadonlyMap<string, Float32Array>): void {
    this.assertLive();
    for (const spec of this.layout) {
      const v = values.get(spec.name);
      if (!v) throw new KernelInputError(K, `setParameters: missing parameter ${spec.name}`);
      if (!(v instanceof Float32Array)) throw new KernelInputError(K, `setParameters: ${spec.name} must be a Float32Array`);
      if (v.length !== spec.size) {
        throw new KernelInputError(K, `setParameters: ${spec.name} has ${v.length} elements, expected ${spec.size} ([${spec.shape.join(', ')}])`);
      }
    }
    for (const spec of this.layout) this.gpu.write(this.paramMap.get(spec.name)!, values.get(spec.name)!);
  }

  async readParameters(): Promise<Map<string, Float32Array>> {
    return this.readAll(this.paramMap);
  }

  async readGradients(): Promise<Map<string, Float32Array>> {
    return this.readAll(this.gradMap);
  }

  /** Records the forward pass (see SliceInput); `output` or `loss` holds its result. */
  forward(input: SliceInput): void {
    this.assertLive();
    if (!input || typeof input !== 'object') throw new KernelInputError(K, 'forward: input { tokens | x, targets } is required');
    const { N, B, T } = this;
    const { dim: C, vocabSize: V } = this.cfg;
    const first = this.from === 0;
    // ---- checks, before anything is recorded ----
    let indexCpu: ReturnType<typeof embeddingBackwardIndex> | null = null;
    if (first) {
      const tokens = input.tokens;
      if (!(tokens instanceof Int32Array)) throw new KernelInputError(K, 'forward: a slice starting at layer 0 needs input.tokens (Int32Array of B·T ids)');
      if (tokens.length !== N) throw new KernelInputError(K, `forward: tokens holds ${tokens.length} ids, expected B·T = ${B}·${T} = ${N}`);
      indexCpu = embeddingBackwardIndex(tokens, V); // checks every id is in [0, V)
    } else {
      const x = input.x;
      if (!(x instanceof Tensor)) {
        throw new KernelInputError(K, `forward: a slice starting at layer ${this.from} needs input.x, a [B, T, C] f32 tensor`);
      }
      if (x.dtype !== 'f32' || x.size !== N * C) {
        throw new KernelInputError(K, `forward: x must be [${B}, ${T}, ${C}] f32 (${N * C} elements), got ${x} (${x.size})`);
      }
      if (x.capacity < x.byteLength) throw new KernelInputError(K, `forward: x's buffer is too small for ${x}`);
      if (x.gpu !== this.gpu) throw new KernelInputError(K, 'forward: x lives on another GPU context; read it back and upload it here');
    }
    let targetsCpu: Int32Array | null = null;
    if (this.isLast) {
      const t = input.targets;
      if (!(t instanceof Int32Array)) throw new KernelInputError(K, 'forward: the last stage needs input.targets (Int32Array of B·T ids, −1 ignored)');
      if (t.length !== N) throw new KernelInputError(K, `forward: targets holds ${t.length} entries, expected B·T = ${N}`);
      targetsCpu = Int32Array.from(t);
    }

    // ---- uploads (targets first: uploadTargets validates before writing) ----
    const targets = targetsCpu ? uploadTargets(this.gpu, targetsCpu, V, 'targets', this.inputBuffers.targets!) : null; // [N] i32
    this.releaseInputs();
    this.targets = targets;
    this.targetsCpu = targetsCpu;
    if (first) {
      this.tokens = uploadTokens(this.gpu, input.tokens!, V, 'tokens', this.inputBuffers.tokens!); // [N] i32
      this.index = uploadEmbeddingIndex(this.gpu, indexCpu!, this.inputBuffers.index!); // each id's rows, for the backward
      // res[0] [N, C] = embedding [V, C] at the tokens
      embeddingForward(this.gpu, this.tokens, this.paramMap.get('embedding')!, this.res[0], { N, V, C });
    } else {
      // res[0] [B, T, C] = x, unless the caller wrote x into res[0] itself
      if (input.x!.buffer !== this.res[0].buffer) this.gpu.copy(input.x!, this.res[0], N * C * 4);
    }

    // ---- blocks: res[i] [N, C] → res[i+1] [N, C] ----
    for (let i = 0; i < this.acts.length; i++) {
      const w = this.blockTensors(this.paramMap, this.from + i);
      blockForward(this.gpu, this.dims, w, this.packed[i]?.w ?? null, this.res[i], this.res[i + 1], this.acts[i], this.scratch);
    }

    // ---- head and loss ----
    if (this.head) {
      const h = this.head;
      const x = this.res[this.res.length - 1]; // [N, C] the last block's output
      // xf [N, C] = rmsnorm(x)·finalNorm, rstdF [N]
      rmsnormForward(this.gpu, x, this.paramMap.get('finalNorm')!, h.xf, h.rstdF, { N, C, eps: this.cfg.normEps });
      // logits, losses and lossMean: recorded by backward() fused with their gradients (head.ts),
      // or by the loss getter when no backward follows
      this.headPending = true;
    }
    this.state = 'forward';
  }

  /** Records the backward of the last forward (see SliceBackwardOptions). */
  backward(opts: SliceBackwardOptions = {}): void {
    this.assertLive();
    const { N } = this;
    const { dim: C, vocabSize: V } = this.cfg;
    const accumulate = opts.accumulate ?? false;
    const lossScale = opts.lossScale ?? 1;
    // ---- checks ----
    if (this.state === 'empty') throw new KernelInputError(K, 'backward: no forward recorded yet');
    if (this.state === 'backward' && this.head) {
      throw new KernelInputError(K, 'backward: already run for this forward (its gradients were written); run forward again');
    }
    if (typeof lossScale !== 'number' || !Number.isFinite(lossScale)) throw new KernelInputError(K, `backward: lossScale must be a finite number, got ${lossScale}`);
    if (!this.isLast) {
      const d = opts.dOut;
      if (!(d instanceof Tensor)) {
        throw new KernelInputError(K, `backward: a slice ending before the last layer needs dOut, a [${this.B}, ${this.T}, ${C}] f32 tensor`);
      }
      if (d.dtype !== 'f32' || d.size !== N * C) {
        throw new KernelInputError(K, `backward: dOut must be [${this.B}, ${this.T}, ${C}] f32 (${N * C} elements), got ${d} (${d.size})`);
      }
      if (d.gpu !== this.gpu) throw new KernelInputError(K, 'backward: dOut lives on another GPU context; read it back and upload it here');
      if (d.buffer === this.dRes.buffer) throw new KernelInputError(K, 'backward: dOut must not be this slice\'s own inputGrad');
    }
    const gpu = this.gpu;
    const beta = accumulate ? 1 : 0;

    // ---- head: dRes [N, C] = ∂loss/∂x after the last block ----
    if (this.head) {
      const h = this.head;
      const scale = lossScale * crossEntropyScale(this.targetsCpu!);
      // losses, lossMean; d(head) [V, C] (+)= d(logits)ᵀ·xf; dn [N, C] = d(xf) = d(logits)·head, by row chunks
      h.recordTrain(this.paramMap.get(this.headName)!, this.gradMap.get(this.headName)!, this.targets!, this.scratch.dn, scale, beta, this.splitK!);
      this.headPending = false;
      // dRes [N, C] = ∂loss/∂x; d(finalNorm) [C] (+)=
      rmsnormBackward(
        gpu, this.res[this.res.length - 1], this.paramMap.get('finalNorm')!, h.rstdF, this.scratch.dn, this.dRes,
        this.gradMap.get('finalNorm')!, { N, C, eps: this.cfg.normEps }, { accumulate, partials: this.normReduce?.slots.get('finalNorm') },
      );
    } else {
      gpu.copy(opts.dOut!, this.dRes, N * C * 4); // dRes [B, T, C] = dOut
    }

    // ---- blocks, last to first: dRes [N, C] = ∂loss/∂res[i+1] → ∂loss/∂res[i] ----
    for (let i = this.acts.length - 1; i >= 0; i--) {
      const l = this.from + i;
      blockBackward(
        gpu, this.dims, this.blockTensors(this.paramMap, l), this.blockTensors(this.gradMap, l), this.packed[i] ?? null,
        this.res[i], this.acts[i], this.scratch, this.dRes, accumulate, this.normPartials(l), this.splitK!.weights,
      );
    }
    // every split weight gradient (+)= its partial sums (head's included), in one dispatch
    this.splitK!.weights.finish();
    // every norm's d(weight) (+)= its partial sums, in one dispatch
    this.normReduce?.record(gpu, accumulate);

    // ---- embedding lookup (a tied whole model adds onto the head's part written above) ----
    if (this.from === 0) {
      const tiedHere = this.cfg.tiedEmbeddings && this.isLast;
      // d(embedding) [V, C] (+)= dRes [N, C], each row added at its token's row
      embeddingBackward(gpu, this.index!, this.dRes, this.gradMap.get('embedding')!, { N, V, C }, { accumulate: accumulate || tiedHere });
    }
    this.state = 'backward';
  }

  /** Bytes on the GPU by kind (logical sizes; the pool rounds each buffer up to 256 bytes). */
  memory(): SliceMemory {
    const { N, B, T } = this;
    const { dim: C, heads: H } = this.cfg;
    const parameters = this.paramArena!.bytes;
    const gradients = this.gradArena!.bytes;
    // plus the upload buffers: tokens, targets and the embedding index (N + 2·min(N, V) + 1 i32)
    const activations = this.sets.acts.bytes + this.sets.inputs.bytes;
    // transients of the kernels: rmsnorm dweight partials [ceil(N/32), C], attention D_i [B, H, T]
    // plus the split-K groups' arenas (0 on a software adapter: its matmul never splits)
    const transient = 4 * Math.max(Math.ceil(N / 32) * C, B * H * T) + (this.splitK ? this.splitK.head.bytes + this.splitK.weights.bytes : 0);
    const scratch = this.sets.scratch.bytes + transient;
    return { parameters, gradients, activations, scratch, total: parameters + gradients + activations + scratch };
  }

  /** Releases every tensor; the slice cannot be used afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.releaseAll();
  }

  private releaseAll(): void {
    this.releaseInputs();
    for (const s of Object.values(this.sets)) s.release();
    this.paramArena?.release();
    this.gradArena?.release();
    this.splitK?.head.destroy();
    this.splitK?.weights.destroy();
  }

  /** Forgets the last forward's inputs (their buffers are the slice's own, released with it). */
  private releaseInputs(): void {
    this.tokens = null;
    this.targets = null;
    this.index = null;
    this.targetsCpu = null;
    this.state = 'empty';
  }

  private normPartials(layer: number): NormPartials | null {
    const slots = this.normReduce?.slots;
    if (!slots) return null;
    return { attn: slots.get(blockParamName(layer, 'attnNorm'))!, mlp: slots.get(blockParamName(layer, 'mlpNorm'))! };
  }

  /** Fills `packed` when every block's q|k|v and gate|up weights (and gradients) lie back to back. */
  private packViews(): void {
    const { C, F, Hkv, D } = this.dims;
    const views: { w: PackedTensors; g: PackedTensors }[] = [];
    for (let l = this.from; l < this.to; l++) {
      const pack = (map: Map<string, Tensor>): PackedTensors | null => {
        const t = this.blockTensors(map, l);
        const qkv = joinedView([t.wq, t.wk, t.wv], [C + 2 * Hkv * D, C], `blocks.${l}.q|k|v`);
        const gu = joinedView([t.wGate, t.wUp], [2 * F, C], `blocks.${l}.gate|up`);
        return qkv && gu ? { qkv, gu } : null;
      };
      const w = pack(this.paramMap);
      const g = pack(this.gradMap);
      if (!w || !g) return; // e.g. sizes off the arena's alignment: the split path for the whole slice
      views.push({ w, g });
    }
    this.packed.push(...views);
  }

  private blockTensors(map: Map<string, Tensor>, layer: number): BlockTensors {
    const out = {} as BlockTensors;
    for (const t of BLOCK_TENSORS) out[t] = map.get(blockParamName(layer, t))!;
    return out;
  }

  private async readAll(map: Map<string, Tensor>): Promise<Map<string, Float32Array>> {
    this.assertLive();
    const out = new Map<string, Float32Array>();
    for (const spec of this.layout) out.set(spec.name, await this.gpu.readF32(map.get(spec.name)!));
    return out;
  }

  private assertLive(): void {
    if (this.destroyed) throw new Error('LayerSlice: this slice was destroyed');
  }
}
