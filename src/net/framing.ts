// Large messages over a data channel (DESIGN.md, "Wire"): a message is cut into frames no
// larger than a chunk, each self-describing, and put back together on the other side.
//
// Frame layout, little-endian:
//   0   u8 FRAME_VERSION (1)
//   1   u32 message id           the sender's counter; ids are never reused on one link
//   5   u32 total length         of the whole message, the same in each of its frames
//   9   u32 offset               of this frame's data in the message
//   13  data                     1 .. chunkBytes − 13 bytes (0 only for an empty message)
//
// The Reassembler trusts nothing: every frame is checked (header, total against the limit
// before anything is allocated, range, order, how many messages are open), and a bad one is
// dropped and counted, never thrown. A bad frame also drops the message it belongs to — that
// sender's stream is broken, so the message could never be trusted — and later frames of a
// dropped or completed message are dropped too.
//
// A data channel is ordered and a sender frames each message front to back, so a message's
// frames must arrive in order (several messages may interleave): a frame that does not
// continue its message exactly where it stands is dropped ('overlap' when it repeats bytes
// held, 'order' when it skips ahead). Holding a message is then one counter, whatever order
// a hostile sender picks. Its buffer grows as its bytes arrive (×BUFFER_GROWTH, capped at its
// total), so a peer pins at most ~4× what it has sent plus MIN_BUFFER_BYTES per open message,
// not the total its first frame announces. Environment-free.

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 13;
/** Bytes of one frame, header included: safe across browsers and libwebrtc. */
export const DEFAULT_CHUNK_BYTES = 16 * 1024;
const MAX_U32 = 0xffffffff;
/** How many finished (completed or dropped) message ids are remembered to drop their stragglers. */
const REMEMBERED_IDS = 1024;
/** A message's first buffer, unless its total is smaller: one frame's worth, so small frames do not regrow it at once. */
export const MIN_BUFFER_BYTES = DEFAULT_CHUNK_BYTES;
/**
 * How much a message's buffer grows when its bytes outgrow it: a peer pins at most this many
 * times what it sent; ×4 costs an honest 64 MiB message ~1.2× the time of allocating it whole
 * up front (×2 cost ~2×: more fresh pages and copies).
 */
const BUFFER_GROWTH = 4;

export type FrameReason = 'header' | 'size' | 'range' | 'mismatch' | 'overlap' | 'order' | 'in-flight' | 'dropped' | 'duplicate';

/** frameMessage was given something it cannot frame. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

function checkFrameArgs(id: number, message: Uint8Array, chunkBytes: number): number {
  if (!Number.isInteger(id) || id < 0 || id > MAX_U32) throw new FrameError(`message id must be a u32, got ${id}`);
  if (message.length > MAX_U32) throw new FrameError(`message of ${message.length} bytes exceeds the 4 GiB frame format limit`);
  if (!Number.isInteger(chunkBytes) || chunkBytes <= FRAME_HEADER_BYTES) throw new FrameError(`chunkBytes must be an integer above the ${FRAME_HEADER_BYTES}-byte frame header, got ${chunkBytes}`);
  return chunkBytes - FRAME_HEADER_BYTES;
}

/** Frames of `message` one at a time, so a sender holds one frame's copy, not the message's. */
export function* iterateFrames(id: number, message: Uint8Array, chunkBytes = DEFAULT_CHUNK_BYTES): Generator<Uint8Array> {
  const room = checkFrameArgs(id, message, chunkBytes);
  let offset = 0;
  do {
    const n = Math.min(room, message.length - offset);
    const f = new Uint8Array(FRAME_HEADER_BYTES + n);
    const dv = new DataView(f.buffer);
    f[0] = FRAME_VERSION;
    dv.setUint32(1, id, true);
    dv.setUint32(5, message.length, true);
    dv.setUint32(9, offset, true);
    f.set(message.subarray(offset, offset + n), FRAME_HEADER_BYTES);
    yield f;
    offset += n;
  } while (offset < message.length);
}

/** Every frame of `message` (an empty message is one header-only frame). */
export function frameMessage(id: number, message: Uint8Array, chunkBytes = DEFAULT_CHUNK_BYTES): Uint8Array[] {
  return [...iterateFrames(id, message, chunkBytes)];
}

/** How many frames frameMessage makes. */
export function frameCount(messageBytes: number, chunkBytes = DEFAULT_CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(messageBytes / (chunkBytes - FRAME_HEADER_BYTES)));
}

export interface ReassemblyLimits {
  /** Longest message accepted; a frame announcing more is dropped before anything is allocated. */
  maxMessageBytes: number;
  /** A message still incomplete this long after its first frame is dropped by sweep(). */
  timeoutMs: number;
  /** Messages being reassembled at once; a frame opening one more is dropped. */
  maxInFlight: number;
}

export interface ReassemblyStats {
  framesDropped: number;
  messagesDropped: number;
  messagesCompleted: number;
  /** Dropped frames by FrameReason, and 'timeout': messages dropped by sweep(). */
  reasons: Record<string, number>;
}

interface Pending {
  /** The message's length, as its first frame announced. */
  total: number;
  /** Bytes 0..received of the message; grows as they arrive, up to `total`. */
  buf: Uint8Array;
  received: number;
  started: number;
}

export class Reassembler {
  readonly stats: ReassemblyStats = { framesDropped: 0, messagesDropped: 0, messagesCompleted: 0, reasons: {} };
  readonly #limits: ReassemblyLimits;
  readonly #now: () => number;
  readonly #pending = new Map<number, Pending>();
  /** Finished ids (insertion order = age) and whether each completed or was dropped. */
  readonly #finished = new Map<number, 'duplicate' | 'dropped'>();

  constructor(limits: ReassemblyLimits, now: () => number = () => performance.now()) {
    for (const k of ['maxMessageBytes', 'timeoutMs', 'maxInFlight'] as const) {
      const v = limits[k];
      if (typeof v !== 'number' || !(v >= 0)) throw new FrameError(`ReassemblyLimits.${k} must be a non-negative number, got ${v}`);
    }
    this.#limits = { ...limits };
    this.#now = now;
  }

  /** Messages being reassembled now. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** A complete message (a fresh Uint8Array), or null: incomplete, or the frame was dropped. */
  push(frame: Uint8Array): Uint8Array | null {
    if (!(frame instanceof Uint8Array) || frame.length < FRAME_HEADER_BYTES || frame[0] !== FRAME_VERSION) return this.#drop('header');
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = dv.getUint32(1, true);
    const total = dv.getUint32(5, true);
    const offset = dv.getUint32(9, true);
    const n = frame.length - FRAME_HEADER_BYTES;
    const done = this.#finished.get(id);
    if (done) return this.#drop(done);
    let p = this.#pending.get(id);
    if (!p) {
      // Every check that can fail on a new message's first frame runs before its buffer exists.
      if (total > this.#limits.maxMessageBytes) return this.#drop('size', id);
      if (offset + n > total || (n === 0 && total > 0)) return this.#drop('range', id);
      if (offset !== 0) return this.#drop('order', id);
      if (this.#pending.size >= this.#limits.maxInFlight) return this.#drop('in-flight', id);
      p = { total, buf: new Uint8Array(Math.min(total, Math.max(n, MIN_BUFFER_BYTES))), received: 0, started: this.#now() };
      this.#pending.set(id, p);
    } else if (total !== p.total) {
      return this.#drop('mismatch', id);
    } else if (offset + n > total || n === 0) {
      return this.#drop('range', id);
    } else if (offset !== p.received) {
      return this.#drop(offset < p.received ? 'overlap' : 'order', id);
    }
    const end = p.received + n;
    if (end > p.buf.length) {
      const grown = new Uint8Array(Math.min(total, Math.max(end, BUFFER_GROWTH * p.buf.length)));
      grown.set(p.buf.subarray(0, p.received));
      p.buf = grown;
    }
    p.buf.set(frame.subarray(FRAME_HEADER_BYTES), p.received);
    p.received = end;
    if (end < total) return null;
    this.#pending.delete(id);
    this.#finish(id, 'duplicate');
    this.stats.messagesCompleted++;
    return p.buf; // exactly `total` long: the buffer never grows past it
  }

  /** Drops messages whose first frame came more than timeoutMs ago; returns how many. */
  sweep(): number {
    const cutoff = this.#now() - this.#limits.timeoutMs;
    let dropped = 0;
    for (const [id, p] of this.#pending) {
      if (p.started > cutoff) continue;
      this.#pending.delete(id);
      this.#finish(id, 'dropped');
      this.stats.messagesDropped++;
      this.#count('timeout');
      dropped++;
    }
    return dropped;
  }

  /** Forgets every open message (their memory is released), without counting them. */
  clear(): void {
    this.#pending.clear();
  }

  #finish(id: number, how: 'duplicate' | 'dropped'): void {
    this.#finished.set(id, how);
    if (this.#finished.size > REMEMBERED_IDS) this.#finished.delete(this.#finished.keys().next().value!);
  }

  #count(reason: string): void {
    this.stats.reasons[reason] = (this.stats.reasons[reason] ?? 0) + 1;
  }

  /** Counts a dropped frame; with an id, its message is dropped too (once). */
  #drop(reason: FrameReason, id?: number): null {
    this.stats.framesDropped++;
    this.#count(reason);
    if (id !== undefined) {
      this.#pending.delete(id);
      this.#finish(id, 'dropped');
      this.stats.messagesDropped++;
    }
    return null;
  }
}
