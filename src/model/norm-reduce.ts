// Every RMSNorm weight gradient of a slice reduced in one dispatch. Each norm's backward
// writes its partial sums into its own slot of one [count, rowBlocks, C] buffer; at the end
// of the slice's backward rmsnormDweightReduce sums them all into the gradient arena, where
// the norm gradients lie at a fixed stride (group 1 of parameterArenaSpecs: one per aligned
// place). Same sums in the same order as one reduce per norm: bit-identical, 1 dispatch
// instead of one per norm. Null (each norm reduces itself) when the places are not evenly
// spaced in one buffer or a slot would not start 256-byte aligned.
import { ARENA_ALIGN } from '../gpu/arena.ts';
import type { Gpu } from '../gpu/gpu.ts';
import { Tensor } from '../gpu/tensor.ts';
import { rmsnormDweightReduce, rmsnormRowBlocks } from '../kernels/rmsnorm.ts';
import type { TensorSet } from './block.ts';

export class NormReduce {
  private constructor(
    /** Each norm's partials slot [rowBlocks, C], by gradient name. */
    readonly slots: ReadonlyMap<string, Tensor>,
    private readonly partials: Tensor,
    private readonly dweights: Tensor,
    private readonly dims: { N: number; C: number; count: number; stride: number },
  ) {}

  /** grads: the norms' gradient views by name ([C] each). */
  static plan(grads: ReadonlyMap<string, Tensor>, N: number, C: number, set: TensorSet): NormReduce | null {
    const list = [...grads].sort((a, b) => a[1].offset - b[1].offset);
    if (list.length < 2) return null;
    const first = list[0][1];
    const strideBytes = list[1][1].offset - first.offset;
    const ok = list.every(([, t], i) => t.isView && t.buffer === first.buffer && t.offset === first.offset + i * strideBytes && t.size === C);
    const rowBlocks = rmsnormRowBlocks(N);
    if (!ok || strideBytes < 4 * C || (rowBlocks * C * 4) % ARENA_ALIGN !== 0) return null;
    const count = list.length;
    const stride = strideBytes / 4;
    const partials = set.make([count, rowBlocks, C], 'rmsnorm dweight partials (all norms)');
    const slots = new Map<string, Tensor>();
    for (const [i, [name]] of list.entries()) {
      slots.set(name, new Tensor(first.gpu, partials.buffer, [rowBlocks, C], 'f32', `${name} partials`, partials.offset + i * rowBlocks * C * 4, true));
    }
    const dweights = new Tensor(first.gpu, first.buffer, [(count - 1) * stride + C], 'f32', 'norm gradients', first.offset, true);
    return new NormReduce(slots, partials, dweights, { N, C, count, stride });
  }

  /** The one reduce, after every norm's backward of this step. */
  record(gpu: Gpu, accumulate: boolean): void {
    rmsnormDweightReduce(gpu, this.partials, this.dweights, { ...this.dims, accumulate });
  }
}
