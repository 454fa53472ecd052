// What Tessera's binary formats share — the signed envelope (net/envelope.ts), the pipeline
// hand-off (pipeline/activation-codec.ts), the SparseLoCo update (sparseloco/wire-*.ts),
// checkpoints (train/checkpoint.ts) and token shards (train/shards.ts):
//   - FormatError: invalid bytes, or input that cannot be encoded; `reason` names the failed
//     check. Each format subclasses it (EnvelopeError, UpdateError, …) with its own reasons.
//   - ByteReader: little-endian reads, each checked against the end of the bytes; a short
//     input throws the format's 'truncated' error naming the format, the field and the offset.
//   - a 4-byte ASCII magic at offset 0, read with ByteReader.magic and written with writeMagic.
// Every format keeps its own layout, checks and their order; these are only the parts that
// were written five times. Environment-free.

/** Bytes that are not a valid instance of a format, or input it cannot encode. */
export class FormatError<Reason extends string = string> extends Error {
  /** The check that failed: 'magic', 'version', 'truncated', 'crc', … (per format). */
  readonly reason: Reason;
  constructor(name: string, reason: Reason, message: string) {
    super(message);
    this.name = name;
    this.reason = reason;
  }
}

/** What a ByteReader needs to know about the format it reads. */
export interface FormatSpec {
  /** What the bytes are called in messages: 'update', 'envelope', 'token shard', … */
  readonly name: string;
  /** The format's error for input that ends too early, given the message. */
  truncated(message: string): Error;
}

export const MAGIC_BYTES = 4;

/**
 * Whether this machine stores numbers little-endian, as every format here does: then a typed
 * array over the bytes reads the values without a copy.
 */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A sequential little-endian reader over `bytes` that never reads past their end. */
export class ByteReader {
  /** The next byte to read. */
  offset: number;
  /** The same bytes, for reads at known offsets inside a range already checked with need(). */
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array, private readonly format: FormatSpec, offset = 0) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Throws the format's truncation error unless `count` bytes follow the offset; `what` names them. */
  need(count: number, what: string): void {
    if (this.offset + count > this.bytes.length) {
      throw this.format.truncated(`${this.format.name} of ${this.bytes.length} bytes is truncated inside ${what} (${count} bytes at offset ${this.offset})`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.offset++];
  }

  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.offset++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.offset, true);
    this.offset += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return v;
  }

  /** The next `count` bytes as a view (not a copy). */
  take(count: number, what: string): Uint8Array {
    this.need(count, what);
    const out = this.bytes.subarray(this.offset, this.offset + count);
    this.offset += count;
    return out;
  }

  skip(count: number, what: string): void {
    this.need(count, what);
    this.offset += count;
  }

  /**
   * Reads the 4-byte magic; a different one throws `wrong(found)`, where `found` is the four
   * bytes as text with anything unprintable shown as '?'.
   */
  magic(expected: string, wrong: (found: string) => Error): void {
    const b = this.take(MAGIC_BYTES, 'its magic');
    const found = String.fromCharCode(b[0], b[1], b[2], b[3]);
    if (found !== expected) throw wrong(found.replace(/[^\x20-\x7e]/g, '?'));
  }
}

/** Writes a 4-character ASCII magic at `out[offset]`. */
export function writeMagic(out: Uint8Array, magic: string, offset = 0): void {
  for (let i = 0; i < MAGIC_BYTES; i++) out[offset + i] = magic.charCodeAt(i);
}

/**
 * Text that is exactly `raw` in UTF-8, or null when `raw` is not valid UTF-8 (the decoder's
 * replacement characters would not encode back to the same bytes). Names and ids read from
 * the wire go through this, so one string has one encoding.
 */
export function exactUtf8(raw: Uint8Array): string | null {
  const s = utf8Decoder.decode(raw);
  const again = utf8Encoder.encode(s);
  if (again.length !== raw.length) return null;
  for (let i = 0; i < again.length; i++) if (again[i] !== raw[i]) return null;
  return s;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');
