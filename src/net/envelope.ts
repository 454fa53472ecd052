// The signed envelope every peer-to-peer message travels in (DESIGN.md, "Wire").
//
// Byte layout, little-endian, no alignment:
//   0   'TSNM'                 magic
//   4   u16 version            ENVELOPE_VERSION (1)
//   6   u8 type                KIND_CODES
//   7   u8 run length (1..255), UTF-8 run id
//       u32 round
//       u16 stage
//       u8 sender length (1..255), sender's ss58 address (canonical, prefix 42)
//       u32 payload length
//       32 bytes               blake2b-256 of the payload
//   ... payload
//   end 64 bytes               sr25519 signature by the sender over every byte before the
//                              payload (magic through hash), so the signature covers the
//                              payload through its hash and cannot be replayed as another type
//
// openEnvelope checks, in this order: size limit (before reading anything), magic, version,
// type, header structure, exact length, run id, signature, payload hash (the signature
// covers the hash: a forged envelope is refused before its payload is read); each failure is an
// EnvelopeError whose `reason` names the check. Stale rounds are the caller's business: the
// round is authenticated but what is current is not known here. Environment-free.
import { blake2AsU8a } from '@polkadot/util-crypto';
import { ByteReader, FormatError, exactUtf8, writeMagic, type FormatSpec } from '../base/format.ts';
import { SIGNATURE_BYTES, isValidAddress, verifySignature, type Hotkey } from '../wallet/keys.ts';

export const ENVELOPE_MAGIC = 'TSNM';
export const ENVELOPE_VERSION = 1;
export const HASH_BYTES = 32;
export const MAX_STRING_BYTES = 255;
/** The longest possible header (both strings at 255 bytes). */
export const MAX_HEADER_BYTES = 4 + 2 + 1 + (1 + MAX_STRING_BYTES) + 4 + 2 + (1 + MAX_STRING_BYTES) + 4 + HASH_BYTES;
export { SIGNATURE_BYTES };

/**
 * 'gather': a neighbour's have/want/refuse (src/protocol/peer-messages.ts) in the gather exchange; 'piece': one piece of an update it serves (src/net/pieces.ts);
 * 'checkpoint': which/holds/want/refuse about the run's checkpoint pieces (src/protocol/checkpoint-peer-messages.ts); 'checkpoint-range': a byte range of one of them.
 */
export type MessageKind = 'update' | 'weights-request' | 'weights' | 'activations' | 'activation-grads' | 'control' | 'gather' | 'piece' | 'checkpoint' | 'checkpoint-range';

/** Type byte of each kind. Codes are never reused: a new kind takes a new code. */
export const KIND_CODES: Readonly<Record<MessageKind, number>> = {
  update: 1, 'weights-request': 2, weights: 3, activations: 4, 'activation-grads': 5, control: 6, gather: 7, piece: 8, checkpoint: 9, 'checkpoint-range': 10,
};
const KIND_BY_CODE = new Map<number, MessageKind>(Object.entries(KIND_CODES).map(([k, c]) => [c, k as MessageKind]));

export interface EnvelopeHeader {
  kind: MessageKind;
  run: string;
  round: number;
  stage: number;
  sender: string;
  payloadLength: number;
  payloadHash: Uint8Array;
}

export type EnvelopeReason = 'size' | 'magic' | 'version' | 'kind' | 'truncated' | 'trailing' | 'run' | 'hash' | 'signature' | 'header';

/** An envelope cannot be sealed, or a received one is invalid; `reason` names the failed check. */
export class EnvelopeError extends FormatError<EnvelopeReason> {
  constructor(reason: EnvelopeReason, message: string) {
    super('EnvelopeError', reason, message);
  }
}

const ENVELOPE_FORMAT: FormatSpec = { name: 'envelope', truncated: (message) => new EnvelopeError('truncated', message) };
const utf8 = new TextEncoder();

/** The largest envelope that can carry `maxPayloadBytes`: a safe reassembly limit for it. */
export function maxEnvelopeBytes(maxPayloadBytes: number): number {
  return MAX_HEADER_BYTES + maxPayloadBytes + SIGNATURE_BYTES;
}

function headerString(s: string, what: string): Uint8Array {
  const b = typeof s === 'string' ? utf8.encode(s) : new Uint8Array(0);
  if (b.length < 1 || b.length > MAX_STRING_BYTES) throw new EnvelopeError('header', `sealEnvelope: the ${what} must be 1..${MAX_STRING_BYTES} bytes of UTF-8, got ${b.length}`);
  return b;
}

function checkInt(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new EnvelopeError('header', `sealEnvelope: ${what} must be an integer in 0..${max}, got ${v}`);
}

/** Wraps `payload` in an envelope signed by `key`. */
export function sealEnvelope(key: Hotkey, h: { kind: MessageKind; run: string; round: number; stage: number }, payload: Uint8Array): Uint8Array {
  if (!Object.hasOwn(KIND_CODES, h.kind)) throw new EnvelopeError('kind', `sealEnvelope: unknown message kind '${String(h.kind)}'`);
  const code = KIND_CODES[h.kind];
  const run = headerString(h.run, 'run id');
  const sender = headerString(key.address, 'sender address');
  checkInt(h.round, 0xffffffff, 'round');
  checkInt(h.stage, 0xffff, 'stage');
  checkInt(payload.length, 0xffffffff, 'the payload length');
  const headerLen = 7 + 1 + run.length + 4 + 2 + 1 + sender.length + 4 + HASH_BYTES;
  const out = new Uint8Array(headerLen + payload.length + SIGNATURE_BYTES);
  const dv = new DataView(out.buffer);
  writeMagic(out, ENVELOPE_MAGIC);
  dv.setUint16(4, ENVELOPE_VERSION, true);
  out[6] = code;
  let o = 7;
  out[o++] = run.length;
  out.set(run, o);
  o += run.length;
  dv.setUint32(o, h.round, true);
  dv.setUint16(o + 4, h.stage, true);
  o += 6;
  out[o++] = sender.length;
  out.set(sender, o);
  o += sender.length;
  dv.setUint32(o, payload.length, true);
  o += 4;
  out.set(blake2AsU8a(payload, 256), o);
  out.set(payload, headerLen);
  out.set(key.sign(out.subarray(0, headerLen)), headerLen + payload.length);
  return out;
}

interface Parsed {
  header: EnvelopeHeader;
  headerLen: number;
}

/** A u8 length (1..255) and that many bytes of UTF-8. */
function readString(r: ByteReader, what: string): string {
  const n = r.u8(`the length of its ${what}`);
  if (n < 1) throw new EnvelopeError('header', `envelope: empty ${what}`);
  const s = exactUtf8(r.take(n, `its ${what}`));
  if (s === null) throw new EnvelopeError('header', `envelope: the ${what} is not valid UTF-8`);
  return s;
}

/** Magic through exact length; `maxPayloadBytes` is checked against the declared length before anything is hashed. */
function parse(bytes: Uint8Array, maxPayloadBytes: number, len = bytes instanceof Uint8Array ? bytes.length : 0): Parsed {
  if (!(bytes instanceof Uint8Array)) throw new EnvelopeError('truncated', 'envelope: not a byte array');
  const r = new ByteReader(bytes, ENVELOPE_FORMAT);
  r.magic(ENVELOPE_MAGIC, (found) => new EnvelopeError('magic', `not a Tessera message (magic '${found}', expected '${ENVELOPE_MAGIC}')`));
  r.need(4, 'its version and type'); // before the version: a short envelope is 'truncated'
  const version = r.u16('its version');
  if (version !== ENVELOPE_VERSION) throw new EnvelopeError('version', `message format version ${version}, this Tessera reads version ${ENVELOPE_VERSION}`);
  const code = r.u8('its type');
  const kind = KIND_BY_CODE.get(code);
  if (!kind) throw new EnvelopeError('kind', `unknown message type ${code}`);
  const run = readString(r, 'run id');
  const round = r.u32('its round');
  const stage = r.u16('its stage');
  const sender = readString(r, 'sender address');
  if (!isValidAddress(sender)) throw new EnvelopeError('header', `envelope: sender '${sender.replace(/[^\x20-\x7e]/g, '?')}' is not a valid address`);
  r.need(4 + HASH_BYTES, 'its payload length and hash'); // before the size check: a short envelope is 'truncated'
  const payloadLength = r.u32('its payload length');
  if (payloadLength > maxPayloadBytes) throw new EnvelopeError('size', `payload of ${payloadLength} bytes exceeds the limit of ${maxPayloadBytes} bytes`);
  const payloadHash = r.take(HASH_BYTES, 'its payload hash').slice();
  const headerLen = r.offset;
  const total = headerLen + payloadLength + SIGNATURE_BYTES;
  if (len < total) throw new EnvelopeError('truncated', `envelope of ${len} bytes is shorter than the ${total} bytes its header declares`);
  if (len > total) throw new EnvelopeError('trailing', `envelope of ${len} bytes has ${len - total} bytes after its signature`);
  return { header: { kind, run, round, stage, sender, payloadLength, payloadHash }, headerLen };
}

/** The header of an envelope, checked for structure and length only: nothing is hashed or verified. */
export function peekEnvelope(bytes: Uint8Array): EnvelopeHeader {
  return parse(bytes, 0xffffffff).header;
}

/**
 * Checks what an envelope of `totalBytes` says about itself without its payload: `head`, its
 * first bytes (MAX_HEADER_BYTES, or all before the signature when it is shorter), and
 * `signature`, its last SIGNATURE_BYTES — size limit, structure, exact length, run id and the
 * signature over the header (which covers the payload through its hash). The payload is not
 * read: whoever reads it checks it against header.payloadHash (openEnvelope does). A bucket's
 * intake reads only these two ranges of an 18.6 MB update (bucket-updates.ts).
 */
export function openEnvelopeHeader(head: Uint8Array, signature: Uint8Array, totalBytes: number, expect: { run: string; maxPayloadBytes: number }): EnvelopeHeader {
  if (totalBytes > maxEnvelopeBytes(expect.maxPayloadBytes)) throw new EnvelopeError('size', `envelope of ${totalBytes} bytes exceeds the limit for a ${expect.maxPayloadBytes}-byte payload`);
  const { header, headerLen } = parse(head, expect.maxPayloadBytes, totalBytes);
  if (header.run !== expect.run) throw new EnvelopeError('run', `message for run '${header.run}', this peer is in run '${expect.run}'`);
  if (signature.length !== SIGNATURE_BYTES || !verifySignature(head.subarray(0, headerLen), signature, header.sender)) {
    throw new EnvelopeError('signature', `bad signature: the message was not signed by its sender ${header.sender}`);
  }
  return header;
}

/**
 * Checks an envelope completely and returns its header and payload (a view into `bytes`,
 * not a copy). Throws EnvelopeError unless every check passes.
 */
export function openEnvelope(bytes: Uint8Array, expect: { run: string; maxPayloadBytes: number }): { header: EnvelopeHeader; payload: Uint8Array } {
  if (bytes instanceof Uint8Array && bytes.length > maxEnvelopeBytes(expect.maxPayloadBytes)) {
    throw new EnvelopeError('size', `envelope of ${bytes.length} bytes exceeds the limit for a ${expect.maxPayloadBytes}-byte payload`);
  }
  const { header, headerLen } = parse(bytes, expect.maxPayloadBytes);
  if (header.run !== expect.run) throw new EnvelopeError('run', `message for run '${header.run}', this peer is in run '${expect.run}'`);
  // The signature covers the header only (the hash included), so it is checked first: a
  // forged envelope costs one verification, never a pass over a payload of up to 4 GiB.
  const signature = bytes.subarray(headerLen + header.payloadLength);
  if (!verifySignature(bytes.subarray(0, headerLen), signature, header.sender)) {
    throw new EnvelopeError('signature', `bad signature: the message was not signed by its sender ${header.sender}`);
  }
  const payload = bytes.subarray(headerLen, headerLen + header.payloadLength);
  const hash = blake2AsU8a(payload, 256);
  for (let i = 0; i < HASH_BYTES; i++) {
    if (hash[i] !== header.payloadHash[i]) throw new EnvelopeError('hash', `payload does not match the hash in its header (sender ${header.sender})`);
  }
  return { header, payload };
}
