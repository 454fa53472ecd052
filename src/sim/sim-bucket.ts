// A MODELLED bucket for `tessera simulate --store bucket`: an ObjectStore (the interface the
// coordinator's bucket intake runs on, bucket-updates.ts) that keeps, per object, a recipe and
// the object's size and SHA-256 — never its bytes. A simulated peer's update envelope is its
// header and signature (a few hundred bytes) plus the payload's recipe (update-templates.ts:
// template, seed, round); a read regenerates the exact bytes and checks them against the
// SHA-256 taken from the bytes the peer uploaded, so what the coordinator reads is what the
// peer made, byte for byte. 1,000 peers' 1b updates are 18.6 GB a round; this keeps ~1 MB.
//
// Presigned URLs are https://modelled-bucket.invalid/<key> (a name that never resolves): the
// simulated peers, in this process, PUT and GET through this object instead of a socket, with
// the transfer time from the link model (BUCKET_NODE: a well-provisioned store, as S3 is).
// The coordinator's own reads (get) wait their modelled transfer to it too. Everything is
// counted. An object written whole by put() (nothing a simulated peer writes: the coordinator's
// fallback when a copy fails) is kept as bytes.
import { createHash } from 'node:crypto';
import { SIGNATURE_BYTES } from '../net/envelope.ts';
import { ObjectStoreError, checkRange, type ObjectStore, type StoredObject } from '../coordinator/object-store.ts';
import type { LinkModel } from './link-model.ts';
import type { UpdateRecipe, UpdateTemplates } from './update-templates.ts';

export const MODELLED_BUCKET_ORIGIN = 'https://modelled-bucket.invalid/';
/** The bucket in the link model. */
export const BUCKET_NODE = -2;

export interface BucketRecord {
  bytes: number;
  sha256: string;
  /** The MD5 of the bytes: the object's ETag, as S3 gives it for an object PUT whole (the coordinator commits it: update-intake.ts). */
  md5: string;
  /** An envelope made by a simulated peer: its bytes before the payload, the payload's recipe, its signature. */
  made: { head: Uint8Array; recipe: UpdateRecipe; signature: Uint8Array } | null;
  /** An object written whole (put). */
  raw: Uint8Array | null;
}

export interface BucketCounters {
  /** Objects uploaded by peers (recipes) and written whole (put), and their bytes. */
  uploads: number;
  uploadBytes: number;
  /** Reads: by the coordinator (get) and by peers (download), and their bytes. */
  coordinatorReads: number;
  /** Ranged reads by the coordinator (an update's header and signature at intake); their bytes are in coordinatorReadBytes. */
  coordinatorRangeReads: number;
  coordinatorReadBytes: number;
  peerReads: number;
  peerReadBytes: number;
  /** Regenerations (each checked by SHA-256) and their time, ms. */
  regenerated: number;
  regenerateMs: number;
  copies: number;
  deletes: number;
  /** Objects held now, and the most held at once. */
  held: number;
  peakHeld: number;
}

export interface SimBucketOptions {
  templates: UpdateTemplates;
  /** The link model and the coordinator's node in it: the coordinator's reads wait their transfer. */
  links?: { model: LinkModel; coordinator: number };
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

export class SimBucket implements ObjectStore {
  readonly kind = 'modelled';
  readonly description = 'modelled bucket (tessera simulate: objects kept as recipes and regenerated on read, src/sim/sim-bucket.ts)';
  readonly counters: BucketCounters = { uploads: 0, uploadBytes: 0, coordinatorReads: 0, coordinatorRangeReads: 0, coordinatorReadBytes: 0, peerReads: 0, peerReadBytes: 0, regenerated: 0, regenerateMs: 0, copies: 0, deletes: 0, held: 0, peakHeld: 0 };
  private readonly objects = new Map<string, BucketRecord>();
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly etagOf = new WeakMap<BucketRecord, string>();

  constructor(private readonly o: SimBucketOptions) {
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, Math.max(0, ms))));
  }

  /** The key a presigned URL of this bucket names, or null for any other URL. */
  static keyOf(url: string): string | null {
    return url.startsWith(MODELLED_BUCKET_ORIGIN) ? decodeURIComponent(url.slice(MODELLED_BUCKET_ORIGIN.length)) : null;
  }

  /**
   * A simulated peer's envelope of `recipe`'s payload, as it uploaded it: the record it leaves
   * (SHA-256 of these bytes, its header and signature), to be stored by `upload` once the
   * modelled transfer is over. Taken right away so the peer need not hold 18.6 MB meanwhile.
   */
  recordOf(envelope: Uint8Array, recipe: UpdateRecipe): BucketRecord {
    const payloadBytes = this.o.templates.sizeOf(recipe.template);
    const headBytes = envelope.length - payloadBytes - SIGNATURE_BYTES;
    if (headBytes <= 0) throw new Error(`an envelope of ${envelope.length} bytes cannot carry template ${recipe.template}'s ${payloadBytes}-byte payload`);
    return { bytes: envelope.length, sha256: sha256(envelope), md5: md5(envelope), made: { head: envelope.slice(0, headBytes), recipe, signature: envelope.slice(envelope.length - SIGNATURE_BYTES) }, raw: null };
  }

  /** The PUT to a presigned URL finished: the object is there. */
  upload(key: string, record: BucketRecord): void {
    this.counters.uploads++;
    this.counters.uploadBytes += record.bytes;
    this.set(key, record);
  }

  /** A peer's GET of a presigned URL: the object's bytes, regenerated and checked, or null. */
  download(key: string): Uint8Array | null {
    const size = this.peerRead(key);
    return size === null ? null : this.bytesOf(key, this.objects.get(key)!);
  }

  /**
   * A peer's GET of a presigned URL, counted, its bytes not made: the object's size, or null.
   * (The process makes each distinct update's bytes once, for its one decode: sim-context.ts.)
   */
  peerRead(key: string): number | null {
    const r = this.objects.get(key);
    if (!r) return null;
    this.counters.peerReads++;
    this.counters.peerReadBytes += r.bytes;
    return r.bytes;
  }

  /** The bytes a record stands for (a peer sending its update another way after the bucket refused it). */
  bytesOfRecord(record: BucketRecord): Uint8Array {
    return this.bytesOf('(not stored)', record);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.counters.uploads++;
    this.counters.uploadBytes += bytes.length;
    this.set(key, { bytes: bytes.length, sha256: sha256(bytes), md5: md5(bytes), made: null, raw: bytes.slice() });
  }

  async get(key: string, maxBytes: number): Promise<Uint8Array | null> {
    const r = this.objects.get(key);
    if (!r) return null;
    if (r.bytes > maxBytes) throw new ObjectStoreError('too-large', `object ${key} is ${r.bytes} bytes, over the ${maxBytes} allowed`);
    if (this.o.links) {
      const t = this.o.links.model.transfer(BUCKET_NODE, this.o.links.coordinator, r.bytes, this.now());
      await this.sleep(t.done - this.now());
    }
    if (this.objects.get(key) !== r) throw new ObjectStoreError('changed', `object ${key} changed while it was read`);
    this.counters.coordinatorReads++;
    this.counters.coordinatorReadBytes += r.bytes;
    return this.bytesOf(key, r);
  }

  /** A ranged read by the coordinator (its intake reads an update's header and signature): from the record when the range lies there, else regenerated. */
  async getRange(key: string, start: number, end: number, etag: string): Promise<Uint8Array | null> {
    const r = this.objects.get(key);
    if (!r) return null;
    if (this.etagOf.get(r) !== etag) throw new ObjectStoreError('changed', `object ${key} changed before it was read`);
    checkRange(key, start, end, r.bytes);
    if (this.o.links) {
      const t = this.o.links.model.transfer(BUCKET_NODE, this.o.links.coordinator, end - start, this.now());
      await this.sleep(t.done - this.now());
    }
    if (this.objects.get(key) !== r) throw new ObjectStoreError('changed', `object ${key} changed while it was read`);
    this.counters.coordinatorRangeReads++;
    this.counters.coordinatorReadBytes += end - start;
    const made = r.made;
    if (made && end <= made.head.length) return made.head.slice(start, end);
    // The header and the payload's first bytes (the intake reads MAX_HEADER_BYTES): from the template, nothing regenerated.
    const prefix = made && start < made.head.length && end <= r.bytes - SIGNATURE_BYTES ? this.o.templates.prefix(made.recipe, end - made.head.length) : null;
    if (made && prefix) {
      const out = new Uint8Array(end);
      out.set(made.head, 0);
      out.set(prefix, made.head.length);
      return out.slice(start, end);
    }
    if (made && start >= r.bytes - SIGNATURE_BYTES) return made.signature.slice(start - (r.bytes - SIGNATURE_BYTES), end - (r.bytes - SIGNATURE_BYTES));
    return this.bytesOf(key, r).slice(start, end);
  }

  async head(key: string): Promise<StoredObject | null> {
    const r = this.objects.get(key);
    return r ? { bytes: r.bytes, etag: this.etagOf.get(r)! } : null;
  }

  async copy(from: string, to: string, etag: string): Promise<void> {
    const r = this.objects.get(from);
    if (!r || this.etagOf.get(r) !== etag) throw new ObjectStoreError('changed', `object ${from} changed or vanished before it was copied`);
    this.counters.copies++;
    this.set(to, r);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) if (this.objects.delete(k)) this.counters.deletes++;
    this.counters.held = this.objects.size;
  }

  async presignPut(key: string): Promise<string> {
    return MODELLED_BUCKET_ORIGIN + encodeURIComponent(key);
  }

  async presignGet(key: string): Promise<string> {
    return MODELLED_BUCKET_ORIGIN + encodeURIComponent(key);
  }

  /** The bytes of `key` as stored: regenerated from the recipe, checked against the uploaded bytes' SHA-256. */
  private bytesOf(key: string, r: BucketRecord): Uint8Array {
    if (r.raw) return r.raw.slice();
    const made = r.made!;
    const t0 = performance.now();
    const out = new Uint8Array(r.bytes);
    out.set(made.head, 0);
    this.o.templates.write(made.recipe, out, made.head.length);
    out.set(made.signature, r.bytes - SIGNATURE_BYTES);
    const hash = sha256(out);
    this.counters.regenerated++;
    this.counters.regenerateMs += performance.now() - t0;
    if (hash !== r.sha256) throw new Error(`modelled bucket: object ${key} regenerated from its recipe hashes ${hash.slice(0, 12)}, not ${r.sha256.slice(0, 12)} as uploaded — the update templates are not deterministic`);
    return out;
  }

  private set(key: string, r: BucketRecord): void {
    if (!key || key.includes('..')) throw new ObjectStoreError('key', `object key '${key.slice(0, 80)}' is not a path`);
    // A copy shares the record (the same bytes) and, as in S3, its ETag: the MD5 of the bytes.
    const record = this.etagOf.has(r) ? { ...r } : r;
    this.etagOf.set(record, `"${r.md5}"`);
    this.objects.set(key, record);
    this.counters.held = this.objects.size;
    this.counters.peakHeld = Math.max(this.counters.peakHeld, this.objects.size);
  }
}
