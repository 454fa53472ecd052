// Token shards: a flat binary file of token ids with a small self-checking header.
// Environment-free: bytes in, bytes out (src/node reads and writes the files).
//
// Layout (all integers little-endian):
//
//   offset  size  field
//   0       4     magic 'TSRD'
//   4       2     format version (1)
//   6       1     token width in bytes: 2 (u16) when vocabSize ≤ 65536, else 4 (u32)
//   7       1     n: length of the tokenizer name (1..64 ASCII characters of [A-Za-z0-9._-])
//   8       4     vocabSize (1..2^31−1)
//   12      8     token count, as low u32 then high u32 (< 2^53)
//   20      4     CRC32 of the payload
//   24      n     tokenizer name (ASCII), then zero bytes up to a multiple of 4
//   H−4     4     CRC32 of bytes [0, H−4): the header, name and padding included
//   H       …     payload: count ids of `width` bytes; the file ends exactly there
//
// H = 24 + align4(n) + 4 is a multiple of 4, so the payload starts aligned. Every byte is
// covered by one of the two CRCs or checked for its exact value, so any corruption of a
// file is reported (ShardError) rather than trained on.
import { crc32 } from '../base/crc32.ts';
import { ByteReader, FormatError, HOST_LITTLE_ENDIAN, writeMagic } from '../base/format.ts';
import { hex32 } from '../base/hex.ts';

export const SHARD_MAGIC = 'TSRD';
export const SHARD_VERSION = 1;
const FIXED = 24;
/** The shortest header: a tokenizer name of 1..4 characters. */
const MIN_HEADER = FIXED + 8;
const MAX_NAME = 64;
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface ShardMeta {
  /** The tokenizer that produced the ids ('bytes', 'gpt2'). */
  tokenizer: string;
  vocabSize: number;
}

export type TokenArray = Uint16Array | Uint32Array;

export type ShardReason =
  | 'magic' | 'version' | 'truncated' | 'length' | 'header-crc' | 'payload-crc' | 'header' | 'token-range' | 'input';

/** A shard is unreadable or a shard cannot be written; `reason` says which check failed. */
export class ShardError extends FormatError<ShardReason> {
  constructor(reason: ShardReason, message: string) {
    super('ShardError', reason, message);
  }
}

const REBUILD = 'rebuild it (tessera data build) or fetch it again';

/** Token width in bytes for a vocabulary: 2 when every id fits a u16, else 4. */
export function tokenWidth(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

function headerLength(nameBytes: number): number {
  return FIXED + ((nameBytes + 3) & ~3) + 4;
}

/** Serialises token ids and their metadata. Throws ShardError ('input') on an id ≥ vocabSize. */
export function encodeShard(tokens: ArrayLike<number>, meta: ShardMeta): Uint8Array {
  const V = meta.vocabSize;
  if (!Number.isInteger(V) || V < 1 || V > 2 ** 31 - 1) {
    throw new ShardError('input', `encodeShard: vocabSize must be an integer in [1, 2^31), got ${V}`);
  }
  if (typeof meta.tokenizer !== 'string' || !NAME_RE.test(meta.tokenizer)) {
    throw new ShardError('input', `encodeShard: tokenizer name must be 1..${MAX_NAME} characters of [A-Za-z0-9._-], got '${String(meta.tokenizer)}'`);
  }
  const name = Uint8Array.from(meta.tokenizer, (ch) => ch.charCodeAt(0));
  const width = tokenWidth(V);
  const n = tokens.length;
  const H = headerLength(name.length);
  const out = new Uint8Array(H + n * width);
  const dv = new DataView(out.buffer);
  // Payload first: checks every id while writing it.
  const payload = out.subarray(H);
  const ids = width === 2 ? new Uint16Array(out.buffer, H, n) : new Uint32Array(out.buffer, H, n);
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new ShardError('input', `encodeShard: token ${t} at position ${i} is outside the vocabulary [0, ${V}) of '${meta.tokenizer}'`);
    }
    ids[i] = t;
  }
  if (!HOST_LITTLE_ENDIAN) {
    for (let i = 0; i < n; i++) {
      if (width === 2) dv.setUint16(H + 2 * i, ids[i], true);
      else dv.setUint32(H + 4 * i, ids[i], true);
    }
  }
  writeMagic(out, SHARD_MAGIC);
  dv.setUint16(4, SHARD_VERSION, true);
  dv.setUint8(6, width);
  dv.setUint8(7, name.length);
  dv.setUint32(8, V, true);
  dv.setUint32(12, n >>> 0, true);
  dv.setUint32(16, Math.floor(n / 2 ** 32), true);
  dv.setUint32(20, crc32(payload), true);
  out.set(name, FIXED);
  dv.setUint32(H - 4, crc32(out.subarray(0, H - 4)), true);
  return out;
}

/** Reads only the header (validated, header CRC included); the payload is not checked. */
export function readShardHeader(bytes: Uint8Array, source = 'shard'): ShardMeta & { count: number; width: 2 | 4; headerBytes: number; payloadCrc: number } {
  const r = new ByteReader(bytes, { name: 'token shard', truncated: (m) => new ShardError('truncated', `${source}: ${m}; ${REBUILD}`) });
  r.magic(SHARD_MAGIC, (found) => new ShardError('magic', `${source}: not a token shard (magic '${found}', expected '${SHARD_MAGIC}'); check the path`));
  r.need(MIN_HEADER - r.offset, 'its header'); // before the version: a short file is 'truncated'
  const version = r.u16('its version');
  if (version !== SHARD_VERSION) {
    throw new ShardError('version', `${source}: shard format version ${version}, this Tessera reads version ${SHARD_VERSION}; rebuild the shard with this version (tessera data build) or upgrade Tessera`);
  }
  const width = r.u8('its token width');
  const nameLen = r.u8('its tokenizer name length');
  const vocabSize = r.u32('its vocabulary size');
  const lo = r.u32('its token count');
  const hi = r.u32('its token count');
  const payloadCrc = r.u32('its payload checksum');
  const H = headerLength(nameLen);
  r.need(H - r.offset, 'its tokenizer name and header checksum');
  const storedHeaderCrc = r.view.getUint32(H - 4, true);
  const headerCrc = crc32(bytes.subarray(0, H - 4));
  if (storedHeaderCrc !== headerCrc) {
    throw new ShardError('header-crc', `${source}: header checksum mismatch (stored ${hex32(storedHeaderCrc)}, computed ${hex32(headerCrc)}): the file is corrupt; ${REBUILD}`);
  }
  const count = hi * 2 ** 32 + lo;
  const bad = (what: string) => new ShardError('header', `${source}: invalid header: ${what}; ${REBUILD}`);
  if (nameLen < 1 || nameLen > MAX_NAME) throw bad(`tokenizer name length ${nameLen} not in 1..${MAX_NAME}`);
  if (vocabSize < 1 || vocabSize > 2 ** 31 - 1) throw bad(`vocabulary size ${vocabSize}`);
  if (width !== tokenWidth(vocabSize)) throw bad(`token width ${width} bytes does not match vocabulary ${vocabSize} (expected ${tokenWidth(vocabSize)})`);
  if (hi >= 2 ** 21) throw bad(`token count ${count} exceeds 2^53`);
  for (let i = FIXED + nameLen; i < H - 4; i++) if (bytes[i] !== 0) throw bad('non-zero padding after the tokenizer name');
  const tokenizer = String.fromCharCode(...bytes.subarray(FIXED, FIXED + nameLen));
  if (!NAME_RE.test(tokenizer)) throw bad('tokenizer name is not [A-Za-z0-9._-]');
  return { tokenizer, vocabSize, count, width: width as 2 | 4, headerBytes: H, payloadCrc };
}

/**
 * Parses and validates a shard: magic, version, header checksum, exact length, payload
 * checksum, then every id < vocabSize, all before the returned array is allocated. The
 * tokens are a fresh copy (never a view of `bytes`). `source` names the file in errors.
 */
export function decodeShard(bytes: Uint8Array, source = 'shard'): { meta: ShardMeta; tokens: TokenArray } {
  const h = readShardHeader(bytes, source);
  const expected = h.headerBytes + h.count * h.width;
  if (bytes.length < expected) {
    throw new ShardError('truncated', `${source}: truncated: ${bytes.length} bytes, the header promises ${h.count} tokens (${expected} bytes); ${REBUILD}`);
  }
  if (bytes.length > expected) {
    throw new ShardError('length', `${source}: ${bytes.length - expected} unexpected bytes after ${h.count} tokens: the token count does not match the file; ${REBUILD}`);
  }
  const payload = bytes.subarray(h.headerBytes);
  const crc = crc32(payload);
  if (crc !== h.payloadCrc) {
    throw new ShardError('payload-crc', `${source}: payload checksum mismatch (stored ${hex32(h.payloadCrc)}, computed ${hex32(crc)}): the file is corrupt; ${REBUILD}`);
  }
  // A view when aligned on a little-endian host, else an aligned copy; checked, then copied out.
  let view: TokenArray;
  if (HOST_LITTLE_ENDIAN && (bytes.byteOffset + h.headerBytes) % h.width === 0) {
    view = h.width === 2
      ? new Uint16Array(bytes.buffer, bytes.byteOffset + h.headerBytes, h.count)
      : new Uint32Array(bytes.buffer, bytes.byteOffset + h.headerBytes, h.count);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + h.headerBytes, payload.length);
    view = h.width === 2 ? new Uint16Array(h.count) : new Uint32Array(h.count);
    for (let i = 0; i < h.count; i++) view[i] = h.width === 2 ? dv.getUint16(2 * i, true) : dv.getUint32(4 * i, true);
  }
  const V = h.vocabSize;
  let first = -1;
  for (let i = 0; i < view.length; i++) {
    if (view[i] >= V) {
      first = i;
      break;
    }
  }
  if (first >= 0) {
    throw new ShardError('token-range', `${source}: token ${view[first]} at position ${first} is outside the vocabulary [0, ${h.vocabSize}) of '${h.tokenizer}'; the shard was written wrongly: ${REBUILD}`);
  }
  const tokens = view.buffer === bytes.buffer ? view.slice() : view;
  return { meta: { tokenizer: h.tokenizer, vocabSize: h.vocabSize }, tokens };
}
