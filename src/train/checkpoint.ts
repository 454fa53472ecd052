// Checkpoints: a model slice's parameters and optimiser state, the training position, and
// free-form metadata, as one self-checking byte string. Environment-free; the stores that
// keep them live in src/node/checkpoint-files.ts (files) and checkpoint-idb.ts (IndexedDB).
//
// Layout (integers little-endian):
//
//   offset  size  field
//   0       4     magic 'TCKP'
//   4       4     format version (1)
//   8       4     J: byte length of the JSON header
//   12      4     CRC32 of bytes [16, D): the JSON header and its padding
//   16      J     JSON header (UTF-8), then zero bytes up to D = a multiple of 64
//   D       …     tensor data: float32 little-endian, each tensor at D + offset, offsets
//                 multiples of 64, in header order, zero padding between
//   E−4     4     CRC32 of bytes [D, E−4): the data section
//
// The JSON header: { format, model, from, to, step, dataPosition, meta, dataBytes,
// tensors: [{ name, offset, length }] } with E = D + dataBytes + 4 exactly. Every byte is
// covered by a CRC or checked for its value, so corruption anywhere is reported.
//
// Tensor names are free-form; the trainer's convention is 'param/<name>' for parameters
// (names from model/config.ts parameterLayout) and '<state>/<name>' for optimiser state,
// e.g. 'adam.m/blocks.0.wq', 'adam.v/blocks.0.wq'.
import { crc32 } from '../base/crc32.ts';
import { ByteReader, FormatError, HOST_LITTLE_ENDIAN, writeMagic } from '../base/format.ts';
import { hex32 } from '../base/hex.ts';
import { validateConfig, validateSlice, type ModelConfig } from '../model/config.ts';

export interface Checkpoint {
  format: 1;
  /** The whole model's config (the slice is [from, to)). */
  model: ModelConfig;
  /** First layer of the slice held. */
  from: number;
  /** One past the last layer of the slice held. */
  to: number;
  /** Optimiser steps taken. */
  step: number;
  /** Where training is in its data (round, inner step, sampler key…): any JSON. */
  dataPosition: unknown;
  /** Parameters and optimiser state, e.g. 'param/embedding', 'adam.m/embedding'. */
  tensors: Map<string, Float32Array>;
  /** Anything else worth keeping (JSON): run id, loss, time, … */
  meta: Record<string, unknown>;
}

export const CHECKPOINT_MAGIC = 'TCKP';
export const CHECKPOINT_FORMAT = 1;
const ALIGN = 64;
const PREFIX = 16;

export type CheckpointReason =
  | 'magic' | 'version' | 'truncated' | 'length' | 'header-crc' | 'data-crc' | 'header' | 'input' | 'name' | 'missing';

/** A checkpoint is unreadable or cannot be written; `reason` says which check failed. */
export class CheckpointError extends FormatError<CheckpointReason> {
  constructor(reason: CheckpointReason, message: string) {
    super('CheckpointError', reason, message);
  }
}

/** Where checkpoints are kept: files (Node), IndexedDB (browsers, Electron). */
export interface CheckpointStore {
  /** Stores c under name, replacing any previous one atomically. */
  save(name: string, c: Checkpoint): Promise<void>;
  /** The checkpoint, or null when there is none; throws CheckpointError when it is corrupt. */
  load(name: string): Promise<Checkpoint | null>;
  /** Names of the stored checkpoints, sorted. */
  list(): Promise<string[]>;
  /** Deletes it (no error when absent). */
  remove(name: string): Promise<void>;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checkpoint names are 1–128 characters of [A-Za-z0-9._-], not starting with '.', '_' or '-'. */
export function validateCheckpointName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new CheckpointError('name', `invalid checkpoint name '${String(name)}': use 1–128 characters of A–Z a–z 0–9 . _ -, starting with a letter or digit`);
  }
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

interface TensorEntry {
  name: string;
  offset: number;
  length: number;
}

interface Header {
  format: 1;
  model: ModelConfig;
  from: number;
  to: number;
  step: number;
  dataPosition: unknown;
  meta: Record<string, unknown>;
  dataBytes: number;
  tensors: TensorEntry[];
}

function checkFields(c: Pick<Checkpoint, 'format' | 'model' | 'from' | 'to' | 'step' | 'meta' | 'dataPosition'>, fail: (what: string) => CheckpointError): void {
  if (c.format !== CHECKPOINT_FORMAT) throw fail(`format must be ${CHECKPOINT_FORMAT}, got ${String(c.format)}`);
  try {
    validateConfig(c.model);
    validateSlice(c.model, c.from, c.to);
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (!Number.isSafeInteger(c.step) || c.step < 0) throw fail(`step must be a safe integer ≥ 0, got ${String(c.step)}`);
  if (c.meta === null || typeof c.meta !== 'object' || Array.isArray(c.meta)) throw fail('meta must be an object');
  if (c.dataPosition === undefined) throw fail('dataPosition is missing (use null for none)');
}

/**
 * The checkpoint as a list of byte strings whose concatenation is the encoding: large
 * tensors are passed through as views (on little-endian hosts) instead of copied, so a
 * store can write a multi-GB checkpoint without a second copy in memory.
 */
export function encodeCheckpointParts(c: Checkpoint): Uint8Array[] {
  const fail = (what: string) => new CheckpointError('input', `encodeCheckpoint: ${what}`);
  checkFields(c, fail);
  if (!(c.tensors instanceof Map)) throw fail('tensors must be a Map<string, Float32Array>');
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of c.tensors) {
    if (typeof name !== 'string' || name.length === 0) throw fail('tensor names must be non-empty strings');
    if (!(t instanceof Float32Array)) throw fail(`tensor '${name}' must be a Float32Array`);
    entries.push({ name, offset, length: t.length });
    offset = align(offset + 4 * t.length);
  }
  const dataBytes = entries.length ? entries[entries.length - 1].offset + 4 * entries[entries.length - 1].length : 0;
  const header: Header = {
    format: 1, model: c.model, from: c.from, to: c.to, step: c.step,
    dataPosition: c.dataPosition, meta: c.meta, dataBytes, tensors: entries,
  };
  let json: Uint8Array;
  try {
    json = new TextEncoder().encode(JSON.stringify(header));
  } catch (e) {
    throw fail(`header is not JSON-serialisable: ${(e as Error).message}`);
  }
  const D = align(PREFIX + json.length);
  const head = new Uint8Array(D);
  const dv = new DataView(head.buffer);
  writeMagic(head, CHECKPOINT_MAGIC);
  dv.setUint32(4, CHECKPOINT_FORMAT, true);
  dv.setUint32(8, json.length, true);
  head.set(json, PREFIX);
  dv.setUint32(12, crc32(head.subarray(PREFIX)), true);

  const parts: Uint8Array[] = [head];
  let crc = 0;
  let written = 0;
  const push = (b: Uint8Array) => {
    if (b.length === 0) return;
    crc = crc32(b, crc);
    written += b.length;
    parts.push(b);
  };
  for (const e of entries) {
    if (e.offset > written) push(new Uint8Array(e.offset - written));
    const t = c.tensors.get(e.name)!;
    if (HOST_LITTLE_ENDIAN) {
      push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    } else {
      const b = new Uint8Array(t.byteLength);
      const bdv = new DataView(b.buffer);
      for (let i = 0; i < t.length; i++) bdv.setFloat32(4 * i, t[i], true);
      push(b);
    }
  }
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc, true);
  parts.push(tail);
  return parts;
}

/** Serialises a checkpoint into one byte string (see the layout above). */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const parts = encodeCheckpointParts(c);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Parses and validates a checkpoint: magic, format version, header checksum, header
 * fields (model config, slice, step, tensor table: names unique, offsets aligned, in order,
 * inside the data), exact length and data checksum, all before any tensor is allocated.
 * The tensors are fresh copies. `source` names the file in errors.
 */
export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  const fix = 'the file is corrupt or was cut short; load the previous checkpoint (.prev) or start from scratch';
  const r = new ByteReader(bytes, { name: 'checkpoint', truncated: (m) => new CheckpointError('truncated', `${source}: ${m}; ${fix}`) });
  r.magic(CHECKPOINT_MAGIC, (found) => new CheckpointError('magic', `${source}: not a Tessera checkpoint (magic '${found}', expected '${CHECKPOINT_MAGIC}'); check the path`));
  r.need(PREFIX + 4 - r.offset, 'its header'); // before the version: a short file is 'truncated'
  const version = r.u32('its format version');
  if (version !== CHECKPOINT_FORMAT) {
    throw new CheckpointError('version', `${source}: checkpoint format ${version}, this Tessera reads format ${CHECKPOINT_FORMAT}; upgrade Tessera or start from scratch`);
  }
  const J = r.u32('its JSON header length');
  const storedHeaderCrc = r.u32('its header checksum');
  const D = align(PREFIX + J);
  r.need(D + 4 - r.offset, 'its JSON header');
  const dv = r.view;
  const headerCrc = crc32(bytes.subarray(PREFIX, D));
  if (storedHeaderCrc !== headerCrc) {
    throw new CheckpointError('header-crc', `${source}: header checksum mismatch (stored ${hex32(storedHeaderCrc)}, computed ${hex32(headerCrc)}): ${fix}`);
  }
  const bad = (what: string) => new CheckpointError('header', `${source}: invalid header: ${what}; ${fix}`);
  for (let i = PREFIX + J; i < D; i++) if (bytes[i] !== 0) throw bad('non-zero padding after the JSON');
  let h: Header;
  try {
    h = JSON.parse(new TextDecoder('utf-8').decode(bytes.subarray(PREFIX, PREFIX + J))) as Header;
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (h === null || typeof h !== 'object') throw bad('not an object');
  checkFields(h, bad);
  if (!Number.isSafeInteger(h.dataBytes) || h.dataBytes < 0) throw bad(`dataBytes ${String(h.dataBytes)}`);
  if (!Array.isArray(h.tensors)) throw bad('tensors is not a list');
  const names = new Set<string>();
  let end = 0;
  for (const t of h.tensors) {
    if (t === null || typeof t !== 'object' || typeof t.name !== 'string' || t.name.length === 0) throw bad('a tensor without a name');
    if (names.has(t.name)) throw bad(`tensor '${t.name}' listed twice`);
    names.add(t.name);
    if (!Number.isSafeInteger(t.offset) || t.offset < end || t.offset % ALIGN !== 0) throw bad(`tensor '${t.name}' offset ${String(t.offset)} (must be a multiple of ${ALIGN}, ≥ ${end})`);
    if (!Number.isSafeInteger(t.length) || t.length < 0) throw bad(`tensor '${t.name}' length ${String(t.length)}`);
    end = t.offset + 4 * t.length;
    if (end > h.dataBytes) throw bad(`tensor '${t.name}' ends at ${end}, past the data (${h.dataBytes} bytes)`);
  }
  if (end !== h.dataBytes) throw bad(`data is ${h.dataBytes} bytes but the tensors end at ${end}`);
  const expected = D + h.dataBytes + 4;
  if (bytes.length < expected) throw new CheckpointError('truncated', `${source}: truncated: ${bytes.length} of ${expected} bytes; ${fix}`);
  if (bytes.length > expected) throw new CheckpointError('length', `${source}: ${bytes.length - expected} unexpected bytes after the end; ${fix}`);
  const storedDataCrc = dv.getUint32(expected - 4, true);
  const dataCrc = crc32(bytes.subarray(D, D + h.dataBytes));
  if (storedDataCrc !== dataCrc) {
    throw new CheckpointError('data-crc', `${source}: data checksum mismatch (stored ${hex32(storedDataCrc)}, computed ${hex32(dataCrc)}): ${fix}`);
  }

  const tensors = new Map<string, Float32Array>();
  const aligned = HOST_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0;
  for (const t of h.tensors) {
    const at = D + t.offset;
    if (aligned) {
      tensors.set(t.name, new Float32Array(bytes.buffer, bytes.byteOffset + at, t.length).slice());
    } else {
      const a = new Float32Array(t.length);
      for (let i = 0; i < t.length; i++) a[i] = dv.getFloat32(at + 4 * i, true);
      tensors.set(t.name, a);
    }
  }
  return { format: 1, model: h.model, from: h.from, to: h.to, step: h.step, dataPosition: h.dataPosition, tensors, meta: h.meta };
}
