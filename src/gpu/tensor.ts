import type { Gpu } from './gpu.ts';

export type DType = 'f32' | 'f16' | 'u32' | 'i32';

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, u32: 4, i32: 4 };

/**
 * A GPU buffer seen as a dense row-major array of `shape`, from byte `offset`. A view (a
 * tensor inside a TensorArena's buffer) is bound at its offset and never releases the buffer.
 */
export class Tensor {
  readonly size: number;
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
    readonly offset = 0,
    readonly isView = false,
  ) {
    this.size = shapeSize(shape);
  }

  /** Bytes from `offset` to the end of the buffer. */
  get capacity(): number {
    return this.buffer.size - this.offset;
  }

  /** Bytes the elements occupy (the buffer itself may be larger: pooled sizes are rounded). */
  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  /** Hands the buffer back to the pool; the tensor must not be used afterwards. */
  release(): void {
    if (!this.isView) this.gpu.releaseBuffer(this.buffer);
  }

  toString(): string {
    return `${this.label || 'tensor'}[${this.shape.join('×')}] ${this.dtype}`;
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}
