// Simulated updates made cheaply: a few templates encoded once by the real encoder
// (update-generator.ts: random kept positions and values, the preset's real size; 1b: 2.2 s
// each), then per (peer, round) a copy of one template with the bytes that are valid for any
// value rewritten — the round field, and every tensor's packed 2-bit codes (wire-format.ts:
// any code 0..3 is valid; padding bits after the last code stay zero) from the peer's seeded
// stream — and the trailing CRC32 recomputed from the kept CRCs of the unchanged stretches
// (crc32-combine.ts). So an update costs a copy, ~3 MB of random codes and a CRC of those
// (1b: ~30 ms instead of 2.2 s), stays a valid encoding of exactly its template's size (a real encoding's: templates differ by a few bytes, their Rice-coded positions being random) that
// the real decoder accepts, and differs from every other (peer, round)'s in its payload hash.
//
// What it does not vary: the kept positions (index sets). Peers on the same template share
// them exactly, which the validator's copy check (scoring.ts findCopies, copy-history.ts)
// would flag; that check runs inside the GPU validator engine (validator.ts), which the
// simulation replaces by SimValidatorEngine (sim-engine.ts: no copy check), so it does not
// run here. The same recipe always gives the same bytes.
import { codeBytes } from '../sparseloco/bitpack.ts';
import { keptCount, UPDATE_HEADER_BYTES, INDEX_RICE } from '../sparseloco/wire.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { knownStretch, crc32Combine, type KnownStretch } from './crc32-combine.ts';
import { crc32 } from '../base/crc32.ts';
import { UpdateGenerator } from './update-generator.ts';

/** Where the round field is (wire-format.ts: u32 at byte 12). */
const ROUND_AT = 12;
const ROUND_BYTES = 4;
const CRC_BYTES = 4;
/** Seeds of the templates' own random streams (far from any peer's index + 1). */
const TEMPLATE_SEED = 0x7e4b_0000;

/** What makes one simulated update: which template, whose stream, which round. */
export interface UpdateRecipe {
  template: number;
  seed: number;
  round: number;
}

type Piece =
  | { kind: 'known'; start: number; length: number; stretch: KnownStretch }
  | { kind: 'round'; start: number; length: number }
  | { kind: 'codes'; start: number; length: number; values: number };

interface Template {
  bytes: Uint8Array;
  pieces: Piece[];
}

/** The peer's stream of code bytes: xorshift32 seeded from (seed, round); never 0. */
function codeStream(seed: number, round: number): () => number {
  let s = (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca77)) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

export class UpdateTemplates {
  private readonly templates: Template[];

  private constructor(templates: Uint8Array[], k: number) {
    this.templates = templates.map((bytes) => ({ bytes, pieces: pieces(bytes, k) }));
  }

  /** Encodes `count` templates with the real encoder (update-generator.ts) for the run's model. */
  static make(config: RunConfig, count: number, generator = new UpdateGenerator(config)): UpdateTemplates {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`the simulation needs at least one update template, got ${count}`);
    return new UpdateTemplates(Array.from({ length: count }, (_, t) => generator.update(0, TEMPLATE_SEED + t)), config.sparseloco.k);
  }

  get count(): number {
    return this.templates.length;
  }

  /** Bytes of the updates made from `template` (Rice-coded random positions: templates differ by a few bytes). */
  sizeOf(template: number): number {
    const t = this.templates[template];
    if (!t) throw new RangeError(`no update template ${template} (there are ${this.templates.length})`);
    return t.bytes.length;
  }

  /** The recipe of peer `seed`'s update of `round`: the template turns with the round so a peer's index sets change. */
  recipe(round: number, seed: number): UpdateRecipe {
    return { template: (seed + round) % this.templates.length, seed, round };
  }

  /** Peer `seed`'s update of `round` (the same arguments give the same bytes). */
  update(round: number, seed: number): Uint8Array {
    const r = this.recipe(round, seed);
    const out = new Uint8Array(this.sizeOf(r.template));
    this.write(r, out, 0);
    return out;
  }

  /**
   * The first `length` bytes of the update of `r` without making the rest (a ranged read of an
   * envelope's start: its header and the frame's first bytes), or null when rewritten codes
   * begin before `length` (the caller then makes it whole).
   */
  prefix(r: UpdateRecipe, length: number): Uint8Array | null {
    const t = this.templates[r.template];
    // Past the first codes (or into the trailing CRC) the bytes are the peer's own: made whole.
    if (t.pieces.some((p) => p.kind === 'codes' && p.start < length) || length > t.bytes.length - CRC_BYTES) return null;
    const out = t.bytes.slice(0, length);
    if (ROUND_AT + 4 <= length) new DataView(out.buffer).setUint32(ROUND_AT, r.round, true);
    else if (ROUND_AT < length) return null;
    return out;
  }

  /** Writes the update of `r` into `out` at `offset` (a store regenerating an envelope's payload in place). */
  write(r: UpdateRecipe, out: Uint8Array, offset: number): void {
    const size = this.sizeOf(r.template);
    const t = this.templates[r.template];
    if (!Number.isInteger(r.round) || r.round < 0 || r.round > 0xffff_ffff) throw new RangeError(`round ${r.round} is not a u32`);
    const u = out.subarray(offset, offset + size);
    if (u.length !== size) throw new RangeError(`an update needs ${size} bytes at ${offset}, the buffer has ${out.length - offset}`);
    u.set(t.bytes);
    new DataView(u.buffer, u.byteOffset, u.byteLength).setUint32(ROUND_AT, r.round, true);
    const next = codeStream(r.seed, r.round);
    let crc = 0;
    for (const p of t.pieces) {
      if (p.kind === 'known') {
        crc = crc32Combine(crc, p.stretch.crc, p.stretch.append);
        continue;
      }
      const bytes = u.subarray(p.start, p.start + p.length);
      if (p.kind === 'codes') fillCodes(bytes, p.values, next);
      crc = crc32(bytes, crc);
    }
    new DataView(u.buffer, u.byteOffset, u.byteLength).setUint32(size - CRC_BYTES, crc, true);
  }
}

/** Random codes for `values` 2-bit values; the padding bits after the last stay zero (the decoder checks them). */
function fillCodes(bytes: Uint8Array, values: number, next: () => number): void {
  let i = 0;
  for (; i + 4 <= bytes.length; i += 4) {
    const w = next();
    bytes[i] = w;
    bytes[i + 1] = w >>> 8;
    bytes[i + 2] = w >>> 16;
    bytes[i + 3] = w >>> 24;
  }
  for (let w = next(); i < bytes.length; i++, w >>>= 8) bytes[i] = w;
  if (values & 3) bytes[bytes.length - 1] &= (1 << (2 * (values & 3))) - 1;
}

/** The template's pieces in byte order: the round field, each tensor's codes, and the known stretches between. */
function pieces(bytes: Uint8Array, k: number): Piece[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = dv.getUint16(18, true);
  // The tensor table (wire-format.ts): name, rank, dims, 4 × f32 table, coding, Rice p, [Rice length].
  const entries: { n: number; indexLen: number }[] = [];
  let o = UPDATE_HEADER_BYTES;
  for (let t = 0; t < count; t++) {
    o += 1 + bytes[o];
    const rank = bytes[o++];
    const shape = Array.from({ length: rank }, (_, d) => dv.getUint32(o + 4 * d, true));
    o += 4 * rank + 16;
    const coding = bytes[o];
    o += 2;
    const n = keptCount(shape, k);
    let indexLen = Math.ceil((n * 12) / 8);
    if (coding === INDEX_RICE) {
      indexLen = dv.getUint32(o, true);
      o += 4;
    }
    entries.push({ n, indexLen });
  }
  const rewritten: Piece[] = [{ kind: 'round', start: ROUND_AT, length: ROUND_BYTES }];
  for (const e of entries) {
    o += e.indexLen;
    rewritten.push({ kind: 'codes', start: o, length: codeBytes(e.n), values: e.n });
    o += codeBytes(e.n);
  }
  if (o !== bytes.length - CRC_BYTES) throw new Error(`update template layout ends at ${o}, the encoding at ${bytes.length - CRC_BYTES}: the wire format changed under update-templates.ts`);
  const out: Piece[] = [];
  let at = 0;
  for (const p of rewritten) {
    if (p.start > at) out.push({ kind: 'known', start: at, length: p.start - at, stretch: knownStretch(bytes.subarray(at, p.start)) });
    if (p.length > 0) out.push(p);
    at = p.start + p.length;
  }
  if (at < o) out.push({ kind: 'known', start: at, length: o - at, stretch: knownStretch(bytes.subarray(at, o)) });
  return out;
}
