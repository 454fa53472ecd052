// The wire format of one micro-batch's hand-off between pipeline stages: the [B, T, C] f32
// activations a stage sends forward, or the activation gradients it sends back, in one of
// three encodings, plus (forward only) the micro-batch's next-token targets, so the last
// stage needs no data shard.
//
// Byte layout, little-endian, no alignment:
//   0   'TSPA'        magic
//   4   u16 version   ACTIVATION_VERSION (1)
//   6   u8 mode       0 = f32, 1 = f16 (IEEE binary16, round to nearest even), 2 = int8
//   7   u8 kind       0 = activations (forward), 1 = grads (∂loss/∂activations, backward)
//   8   u32 round
//   12  u32 step      optimiser step within the round's inner loop
//   16  u32 micro     micro-batch id within the step
//   20  u32 B         sequences
//   24  u32 T         tokens per sequence
//   28  u32 C         channels
//   32  u8 flags      bit 0: targets follow (set on every activations message, never on grads);
//                     other bits 0
//   33  i8 exponent   f16 only (0 otherwise): the message's power-of-two scale e, see below
//   34  2 bytes       reserved, 0
//   36  payload:
//         targets, when flagged: B·T × i32, each −1 (ignored) or a token id
//         f32:  B·T·C × f32
//         f16:  B·T·C × u16 (binary16 bits h); value = half(h) · 2^−e, where the sender picks
//               e = clamp(14 − ⌊log2 absmax⌋, −127, 127) (0 for an all-zero tensor), so the
//               largest magnitude lands in [2^14, 2^15): nothing overflows, and small tensors
//               — activation gradients carry 1/(B·T·M) and shrink with the batch — keep 11
//               significant bits instead of sinking into f16's subnormals (below 2^−14 ≈ 6e−5)
//               or to 0 (below 2^−25). Scaling by a power of two is exact both ways (within f32's range).
//         int8: B·T × f32 per-row scales (row = one token's C channels), then B·T·C × i8;
//               value = q · scale, q in −127..127 (symmetric: −128 never sent),
//               scale = absmax(row) / 127 (0 for an all-zero row)
//   end u32 CRC32 of every byte before it
//
// decodeActivations checks, in order: the size limit (before anything is read), magic,
// version, the header's fields, the expectations (kind, mode, round, step, micro, shape,
// targets present), the exact length computed from the checked shape (so nothing is
// allocated before the length is known to be right), the CRC, then every value: targets in
// [−1, vocab), int8 scales finite and ≥ 0, no −128 code, and no NaN or ±Inf after decoding
// in any mode. Each failure is an ActivationError whose `reason` names the check.
// Encoding refuses non-finite input: the sender learns it at once.
// CPU typed-array code: activations are read back from the GPU to be sent anyway.
// Environment-free.
import { crc32 } from '../base/crc32.ts';
import { ByteReader, FormatError, writeMagic, type FormatSpec } from '../base/format.ts';
import { f16BitsToF32, f32ToF16Bits } from './binary16.ts';

export const ACTIVATION_MAGIC = 'TSPA';
export const ACTIVATION_VERSION = 1;
/** Bytes before the payload. */
export const ACTIVATION_HEADER_BYTES = 36;
/** Elements of one message's tensor at most (B·T·C): 2^28, 1 GiB of f32. */
export const MAX_ACTIVATION_ELEMENTS = 1 << 28;
export const FLAG_TARGETS = 1;

export type ActivationMode = 'f32' | 'f16' | 'int8';
export type ActivationKind = 'activations' | 'grads';
export const ACTIVATION_MODES: readonly ActivationMode[] = ['f32', 'f16', 'int8'];
const KINDS: readonly ActivationKind[] = ['activations', 'grads'];

export type ActivationReason =
  | 'size' | 'truncated' | 'magic' | 'version' | 'header' | 'kind' | 'mode' | 'round' | 'step'
  | 'micro' | 'shape' | 'targets' | 'length' | 'crc' | 'value' | 'nonfinite';

/** A hand-off cannot be encoded, or a received one is invalid; `reason` names the failed check. */
export class ActivationError extends FormatError<ActivationReason> {
  constructor(reason: ActivationReason, message: string) {
    super('ActivationError', reason, message);
  }
}

const ACTIVATION_FORMAT: FormatSpec = { name: 'hand-off', truncated: (message) => new ActivationError('truncated', message) };

export interface ActivationHeader {
  mode: ActivationMode;
  kind: ActivationKind;
  round: number;
  step: number;
  micro: number;
  B: number;
  T: number;
  C: number;
  hasTargets: boolean;
  /** f16's power-of-two scale e (value = half · 2^−e); 0 in the other modes. */
  exponent: number;
}

export interface ActivationMessage extends Omit<ActivationHeader, 'hasTargets' | 'exponent'> {
  /** [B, T, C] row-major f32 (after decoding: what the receiver computes with). */
  data: Float32Array;
  /** B·T next-token targets, −1 ignored; activations only. */
  targets?: Int32Array;
}

export interface ActivationExpectations {
  kind?: ActivationKind;
  /** Accept only this encoding (default: any). */
  mode?: ActivationMode;
  round?: number;
  step?: number;
  micro?: number;
  /** The shape the receiver's slice takes. */
  B?: number;
  T?: number;
  C?: number;
  /** Targets must be present (true) or absent (false); default: activations ⇔ targets. */
  targets?: boolean;
  /** Targets must lie in [−1, vocabSize). */
  vocabSize?: number;
  /** Messages longer than this are rejected before anything else is read. */
  maxBytes?: number;
}

// ---- f16 scale (the halves themselves: binary16.ts) ----

/** The f16 exponent e of a tensor with largest magnitude `absmax` (see the header). */
export function f16Exponent(absmax: number): number {
  if (!(absmax > 0)) return 0;
  let e = Math.floor(Math.log2(absmax));
  while (2 ** e > absmax) e--; // exact ⌊log2⌋ despite log2's rounding
  while (2 ** (e + 1) <= absmax) e++;
  return Math.max(-127, Math.min(127, 14 - e));
}

// ---- sizes ----

const MODE_CODES: Record<ActivationMode, number> = { f32: 0, f16: 1, int8: 2 };

function checkDim(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new ActivationError('header', `${what} must be a positive u32, got ${v}`);
}

/** Payload bytes of the tensor part in `mode` for N = B·T rows of C. */
function tensorBytes(mode: ActivationMode, N: number, C: number): number {
  if (mode === 'f32') return 4 * N * C;
  if (mode === 'f16') return 2 * N * C;
  return 4 * N + N * C;
}

/** The exact byte length of a message of this shape and mode (targets on activations). */
export function activationMessageBytes(mode: ActivationMode, B: number, T: number, C: number, withTargets: boolean): number {
  const N = B * T;
  return ACTIVATION_HEADER_BYTES + (withTargets ? 4 * N : 0) + tensorBytes(mode, N, C) + 4;
}

// ---- encode ----

export interface EncodeActivationInput extends Omit<ActivationMessage, 'data'> {
  data: Float32Array;
}

/** Encodes one hand-off; throws ActivationError ('header', 'size', 'shape', 'targets', 'nonfinite', …). */
export function encodeActivations(msg: EncodeActivationInput): Uint8Array {
  const { mode, kind, round, step, micro, B, T, C, data, targets } = msg;
  if (!ACTIVATION_MODES.includes(mode)) throw new ActivationError('mode', `unknown mode '${String(mode)}' (known: ${ACTIVATION_MODES.join(', ')})`);
  if (!KINDS.includes(kind)) throw new ActivationError('kind', `unknown kind '${String(kind)}'`);
  for (const [v, what] of [[round, 'round'], [step, 'step'], [micro, 'micro']] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new ActivationError('header', `${what} must be a u32, got ${v}`);
  }
  checkDim(B, 'B');
  checkDim(T, 'T');
  checkDim(C, 'C');
  const N = B * T;
  if (N * C > MAX_ACTIVATION_ELEMENTS) throw new ActivationError('size', `B·T·C = ${N * C} exceeds ${MAX_ACTIVATION_ELEMENTS} elements`);
  if (!(data instanceof Float32Array) || data.length !== N * C) {
    throw new ActivationError('shape', `data must be a Float32Array of B·T·C = ${N * C} values, got ${data?.length}`);
  }
  const withTargets = kind === 'activations';
  if (withTargets) {
    if (!(targets instanceof Int32Array) || targets.length !== N) {
      throw new ActivationError('targets', `an activations message carries B·T = ${N} targets (Int32Array), got ${targets?.length}`);
    }
    for (let i = 0; i < N; i++) {
      if (targets[i] < -1) throw new ActivationError('targets', `target ${targets[i]} at position ${i} (must be −1 or a token id)`);
    }
  } else if (targets !== undefined) {
    throw new ActivationError('targets', 'a grads message carries no targets');
  }
  let absmax = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new ActivationError('nonfinite', `${kind} value ${v} at index ${i} cannot be sent`);
    absmax = Math.max(absmax, Math.abs(v));
  }

  const out = new Uint8Array(activationMessageBytes(mode, B, T, C, withTargets));
  const dv = new DataView(out.buffer);
  writeMagic(out, ACTIVATION_MAGIC);
  dv.setUint16(4, ACTIVATION_VERSION, true);
  out[6] = MODE_CODES[mode];
  out[7] = KINDS.indexOf(kind);
  dv.setUint32(8, round, true);
  dv.setUint32(12, step, true);
  dv.setUint32(16, micro, true);
  dv.setUint32(20, B, true);
  dv.setUint32(24, T, true);
  dv.setUint32(28, C, true);
  out[32] = withTargets ? FLAG_TARGETS : 0;
  const e = mode === 'f16' ? f16Exponent(absmax) : 0;
  dv.setInt8(33, e);
  let o = ACTIVATION_HEADER_BYTES;
  if (withTargets) {
    for (let i = 0; i < N; i++, o += 4) dv.setInt32(o, targets![i], true);
  }
  if (mode === 'f32') {
    for (let i = 0; i < data.length; i++, o += 4) dv.setFloat32(o, data[i], true);
  } else if (mode === 'f16') {
    const up = 2 ** e;
    // data[i]·2^e is exact in f64, and f32ToF16Bits rounds it once (it takes any double
    // that is exactly an f32, which a power-of-two multiple of an f32 within range is)
    for (let i = 0; i < data.length; i++, o += 2) dv.setUint16(o, f32ToF16Bits(data[i] * up), true);
  } else {
    const scalesAt = o;
    const codesAt = o + 4 * N;
    for (let r = 0; r < N; r++) {
      const row = r * C;
      let absmax = 0;
      for (let c = 0; c < C; c++) absmax = Math.max(absmax, Math.abs(data[row + c]));
      const scale = Math.fround(absmax / 127);
      dv.setFloat32(scalesAt + 4 * r, scale, true);
      if (scale === 0) continue; // codes stay 0
      for (let c = 0; c < C; c++) {
        const q = Math.max(-127, Math.min(127, Math.round(data[row + c] / scale)));
        dv.setInt8(codesAt + row + c, q);
      }
    }
    o = codesAt + N * C;
  }
  dv.setUint32(o, crc32(out.subarray(0, o)), true);
  return out;
}

// ---- decode ----

/**
 * Reads and checks the fixed header only (magic, version, field values; no expectations, no
 * length or CRC): for routing a message by its micro-batch id before decoding it.
 */
export function peekActivationHeader(bytes: Uint8Array, maxBytes?: number): ActivationHeader {
  if (!(bytes instanceof Uint8Array)) throw new ActivationError('truncated', 'a message must be a Uint8Array');
  const len = bytes.length;
  if (maxBytes !== undefined && len > maxBytes) throw new ActivationError('size', `message of ${len} bytes exceeds the limit of ${maxBytes} bytes`);
  const r = new ByteReader(bytes, ACTIVATION_FORMAT);
  r.magic(ACTIVATION_MAGIC, (found) => new ActivationError('magic', `not a pipeline hand-off (magic '${found}', expected '${ACTIVATION_MAGIC}')`));
  const version = r.u16('its version');
  if (version !== ACTIVATION_VERSION) {
    throw new ActivationError('version', `hand-off format version ${version}, this Tessera reads version ${ACTIVATION_VERSION}`);
  }
  r.need(ACTIVATION_HEADER_BYTES + 4 - r.offset, 'its header and checksum');
  // Every field is in range now; read in order, checked in the order the codec has always used.
  const modeCode = r.u8('its mode');
  const kindCode = r.u8('its kind');
  const round = r.u32('its round');
  const step = r.u32('its step');
  const micro = r.u32('its micro-batch id');
  const B = r.u32('its shape');
  const T = r.u32('its shape');
  const C = r.u32('its shape');
  const flags = r.u8('its flags');
  const exponent = r.i8('its exponent');
  const reserved = r.take(2, 'its reserved bytes');
  if (modeCode >= ACTIVATION_MODES.length) throw new ActivationError('header', `unknown mode ${modeCode} in the header`);
  if (kindCode >= KINDS.length) throw new ActivationError('header', `unknown kind ${kindCode} in the header`);
  if ((flags & ~FLAG_TARGETS) !== 0) throw new ActivationError('header', `unknown flags 0x${flags.toString(16)} in the header`);
  if (reserved[0] !== 0 || reserved[1] !== 0) throw new ActivationError('header', 'reserved header bytes are not 0');
  if (modeCode !== MODE_CODES.f16 && exponent !== 0) throw new ActivationError('header', `exponent ${exponent} in a ${ACTIVATION_MODES[modeCode]} message (f16 only)`);
  if (exponent < -127) throw new ActivationError('header', `f16 exponent ${exponent} is outside −127..127`);
  const h: ActivationHeader = {
    mode: ACTIVATION_MODES[modeCode], kind: KINDS[kindCode], round, step, micro, B, T, C,
    hasTargets: (flags & FLAG_TARGETS) !== 0,
    exponent,
  };
  if (h.B < 1 || h.T < 1 || h.C < 1) throw new ActivationError('header', `zero dimension in [${h.B}, ${h.T}, ${h.C}]`);
  if (h.B * h.T * h.C > MAX_ACTIVATION_ELEMENTS) {
    throw new ActivationError('size', `[${h.B}, ${h.T}, ${h.C}] exceeds ${MAX_ACTIVATION_ELEMENTS} elements`);
  }
  if (h.hasTargets !== (h.kind === 'activations')) {
    throw new ActivationError('targets', h.hasTargets ? 'a grads message must not carry targets' : 'an activations message must carry targets');
  }
  return h;
}

/**
 * Parses and validates one hand-off; throws ActivationError (nothing is returned) unless every
 * check passes (see the header of this file for the order).
 */
export function decodeActivations(bytes: Uint8Array, expect: ActivationExpectations = {}): ActivationMessage {
  const h = peekActivationHeader(bytes, expect.maxBytes);
  // expectations, before the length (a wrong shape is reported as a wrong shape)
  if (expect.kind !== undefined && h.kind !== expect.kind) throw new ActivationError('kind', `expected ${expect.kind}, got ${h.kind}`);
  if (expect.mode !== undefined && h.mode !== expect.mode) throw new ActivationError('mode', `expected mode ${expect.mode}, got ${h.mode}`);
  if (expect.round !== undefined && h.round !== expect.round) throw new ActivationError('round', `message of round ${h.round}, expected round ${expect.round}`);
  if (expect.step !== undefined && h.step !== expect.step) throw new ActivationError('step', `message of step ${h.step}, expected step ${expect.step}`);
  if (expect.micro !== undefined && h.micro !== expect.micro) throw new ActivationError('micro', `message of micro-batch ${h.micro}, expected ${expect.micro}`);
  for (const d of ['B', 'T', 'C'] as const) {
    if (expect[d] !== undefined && h[d] !== expect[d]) {
      throw new ActivationError('shape', `message is [${h.B}, ${h.T}, ${h.C}], expected [${expect.B ?? h.B}, ${expect.T ?? h.T}, ${expect.C ?? h.C}]`);
    }
  }
  const wantTargets = expect.targets ?? (h.kind === 'activations');
  if (wantTargets !== h.hasTargets) throw new ActivationError('targets', wantTargets ? 'targets are missing' : 'unexpected targets');
  const N = h.B * h.T;
  const C = h.C;
  const len = bytes.length;
  const expected = activationMessageBytes(h.mode, h.B, h.T, C, h.hasTargets);
  if (len < expected) throw new ActivationError('truncated', `message of ${len} bytes, its header says ${expected}`);
  if (len > expected) throw new ActivationError('length', `message of ${len} bytes, ${len - expected} more than its header says (${expected})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crc = crc32(bytes.subarray(0, len - 4));
  const sent = dv.getUint32(len - 4, true);
  if (crc !== sent) throw new ActivationError('crc', `checksum 0x${sent.toString(16)} does not match the content (0x${crc.toString(16)})`);

  let o = ACTIVATION_HEADER_BYTES;
  let targets: Int32Array | undefined;
  if (h.hasTargets) {
    const V = expect.vocabSize;
    targets = new Int32Array(N);
    for (let i = 0; i < N; i++, o += 4) {
      const t = dv.getInt32(o, true);
      if (t < -1 || (V !== undefined && t >= V)) throw new ActivationError('targets', `target ${t} at position ${i} is outside [−1, ${V ?? '2^31'})`);
      targets[i] = t;
    }
  }
  const data = new Float32Array(N * C);
  if (h.mode === 'f32') {
    for (let i = 0; i < data.length; i++, o += 4) data[i] = dv.getFloat32(o, true);
  } else if (h.mode === 'f16') {
    const down = 2 ** -h.exponent;
    for (let i = 0; i < data.length; i++, o += 2) data[i] = f16BitsToF32(dv.getUint16(o, true)) * down;
  } else {
    const codesAt = o + 4 * N;
    for (let r = 0; r < N; r++) {
      const scale = dv.getFloat32(o + 4 * r, true);
      if (!(scale >= 0) || !Number.isFinite(scale)) throw new ActivationError('value', `row ${r} has scale ${scale}, must be finite and ≥ 0`);
      const row = r * C;
      for (let c = 0; c < C; c++) {
        const q = dv.getInt8(codesAt + row + c);
        if (q === -128) throw new ActivationError('value', `code −128 at row ${r}, channel ${c} (int8 is symmetric, −127..127)`);
        data[row + c] = q * scale;
      }
    }
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new ActivationError('nonfinite', `${h.kind} value ${data[i]} at index ${i}`);
  }
  const out: ActivationMessage = { mode: h.mode, kind: h.kind, round: h.round, step: h.step, micro: h.micro, B: h.B, T: h.T, C, data };
  if (targets) out.targets = targets;
  return out;
}

/**
 * A copy of an encoded hand-off with another micro-batch id (CRC recomputed): a stage that
 * re-sends a micro-batch to a second peer after the first vanished marks it as a new attempt,
 * so a stage further on that saw the first copy does not refuse it as a duplicate.
 */
export function withMicroId(bytes: Uint8Array, micro: number): Uint8Array {
  if (!Number.isInteger(micro) || micro < 0 || micro > 0xffffffff) throw new RangeError(`micro-batch id must be a u32, got ${micro}`);
  peekActivationHeader(bytes);
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  dv.setUint32(16, micro, true);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}
