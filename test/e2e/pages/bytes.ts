// Byte payloads both ends of a transfer can rebuild and check (environment-free: used by the
// page and by the Node test).

/** n pseudo-random bytes from a seed (xorshift32): the receiver regenerates them to compare. */
export function patternBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** Index of the first differing byte, or -1 when equal (a length mismatch counts at the shorter end). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Splits a message into views of at most `size` bytes (a data channel caps one message). */
export function* chunks(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += size) yield bytes.subarray(o, Math.min(o + size, bytes.length));
}

/** Gathers chunks until `total` bytes have come, then resolves with them. */
export class Reassembler {
  readonly bytes: Uint8Array;
  received = 0;
  messages = 0;
  private done!: (b: Uint8Array) => void;
  readonly complete: Promise<Uint8Array>;

  constructor(readonly total: number) {
    this.bytes = new Uint8Array(total);
    this.complete = new Promise((r) => (this.done = r));
  }

  push(chunk: Uint8Array): void {
    if (this.received + chunk.length > this.total) throw new Error(`got ${this.received + chunk.length} bytes, expected ${this.total}`);
    this.bytes.set(chunk, this.received);
    this.received += chunk.length;
    this.messages++;
    if (this.received === this.total) this.done(this.bytes);
  }
}
