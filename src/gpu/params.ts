/**
 * Packs a kernel's uniform parameters in WGSL struct order. Every field is 4 bytes
 * (u32, i32 or f32), so a struct of scalars has no padding between fields.
 */
export class Params {
  private readonly view: DataView;
  private offset = 0;
  constructor(readonly bytes = new ArrayBuffer(256)) {
    this.view = new DataView(bytes);
  }
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 parameter out of range: ${v}`);
    this.view.setUint32(this.offset, v, true);
    this.offset += 4;
    return this;
  }
  i32(v: number): this {
    this.view.setInt32(this.offset, v, true);
    this.offset += 4;
    return this;
  }
  f32(v: number): this {
    this.view.setFloat32(this.offset, v, true);
    this.offset += 4;
    return this;
  }
  /** Bytes used, rounded up to 16 as uniform structs are. */
  get byteLength(): number {
    return Math.max(16, Math.ceil(this.offset / 16) * 16);
  }
}
