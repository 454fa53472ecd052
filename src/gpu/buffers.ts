/**
 * Reuses GPU buffers by (usage, size). A buffer released while commands that use it are
 * still being recorded becomes reusable only after those commands are submitted:
 * queue.writeBuffer runs before any later submit, so handing it out earlier could let a
 * new upload overwrite data the pending commands still read.
 */
export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private readonly pendingFree: GPUBuffer[] = [];
  private bytesLive = 0;
  private bytesPooled = 0;
  peakBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  static roundSize(bytes: number): number {
    return Math.max(256, Math.ceil(bytes / 256) * 256);
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label = ''): GPUBuffer {
    const size = BufferPool.roundSize(bytes);
    const list = this.free.get(key(usage, size));
    const reused = list?.pop();
    if (reused) {
      this.bytesPooled -= size;
      this.bytesLive += size;
      return reused;
    }
    const buffer = this.device.createBuffer({ size, usage, label });
    this.bytesLive += size;
    this.peakBytes = Math.max(this.peakBytes, this.bytesLive + this.bytesPooled);
    return buffer;
  }

  /** Returns a buffer; it is handed out again only after the next submit. */
  release(buffer: GPUBuffer): void {
    this.pendingFree.push(buffer);
  }

  /** Called right after a submit: everything released before it may be reused now. */
  afterSubmit(): void {
    for (const b of this.pendingFree) {
      const k = key(b.usage, b.size);
      let list = this.free.get(k);
      if (!list) this.free.set(k, (list = []));
      list.push(b);
      this.bytesLive -= b.size;
      this.bytesPooled += b.size;
    }
    this.pendingFree.length = 0;
  }

  /** Frees every pooled buffer (not the live ones). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.bytesPooled = 0;
  }

  stats(): { liveBytes: number; pooledBytes: number; peakBytes: number } {
    return { liveBytes: this.bytesLive, pooledBytes: this.bytesPooled, peakBytes: this.peakBytes };
  }
}

function key(usage: number, size: number): string {
  return `${usage}:${size}`;
}
