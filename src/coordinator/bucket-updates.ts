// Updates through an S3-compatible bucket (object-store.ts): members upload their signed
// update straight to the bucket and peers fetch committed ones from it, so the coordinator
// never carries those bytes to anyone — nor reads them.
//
//   round r announced to member m  → upload-url {round, url, validMs}: a presigned PUT on a
//                                    key unique to (r, m, a random nonce), valid until the
//                                    round's deadline plus UPLOAD_GRACE_S
//   m PUTs its envelope there, then uploaded {round, bytes, pieces, piecesSignature} →
//     HEAD (missing, wrong size, over the run's bound → refused, counted), two ranged GETs of
//     that version: the envelope's header (≤ MAX_HEADER_BYTES) and its signature (the last
//     64 bytes), a server-side copy of that version (checked by its ETag) to
//     updates/<run>/<r>/<m>.bin, which nobody else can write, then the coordinator's checks:
//     structure, exact length, run, signature (it covers the payload's hash; a bad one counts
//     as an invalid update: coordinator.ts onSignedEnds), sender, round, stage, duplicate
//     (RoundClock.offerSignedEnds), and the author's signed piece root (update-intake.ts: one
//     more small signature; committed with the entry, beside the object's ETag — the
//     server's MD5 of the body — so replicas gather the update's pieces from neighbours and
//     can tell their copy is the bucket's); refused, the copy is deleted
//   GET /update/<r>/<m>              → 307 to a presigned GET of that copy (DOWNLOAD_EXPIRES_S)
//
// The body (18.6 MB at 1b) is not read, hashed or written by the coordinator at intake: 625
// bytes per update (the header's bound and the signature), whatever the model. Who reads it
// checks it against the signed hash: every replica before applying (store-read.ts; a body
// that does not match is applied as nothing by all alike, counted) and the validator before
// scoring (validator-reads.ts: a mismatch scores invalid, and so does a body whose piece
// root is not the one its author signed — replicas still apply its payload: gather.ts).
// The frame checks the WebSocket path makes (checksum, config, layout) are the decoders'
// then: an undecodable committed update is skipped by every replica and scored invalid.
// Every failure is a `rejected` to the member (what: bucket-…), counted; the member then sends
// its update over the WebSocket instead and the round goes on.
import { randomBytes } from 'node:crypto';
import type { ClientMessage, ServerMessage } from '../protocol/messages.ts';
import type { SignedRoot } from '../net/signed-root.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { MAX_HEADER_BYTES, SIGNATURE_BYTES, maxEnvelopeBytes } from '../net/envelope.ts';
import { ObjectStoreError, type ObjectStore } from './object-store.ts';

/** After the round's deadline an upload URL stays valid this long (a slow link's PUT may still finish). */
export const UPLOAD_GRACE_S = 60;
/** A download URL's life: one fetch, a few retries. */
export const DOWNLOAD_EXPIRES_S = 300;
/** The shortest upload URL handed out (a round whose deadline is near or past). */
const MIN_UPLOAD_EXPIRES_S = 60;

export interface BucketUpdatesContext {
  now(): number;
  log(line: string): void;
  sendTo(address: string, m: ServerMessage): void;
  /**
   * The member's update by the two ends of its envelope (`bytes` long, HEAD's Content-Length):
   * the header's checks (structure, length, run, signature: openEnvelopeHeader) and the
   * round's; true when accepted (else refused and counted there).
   */
  accept(address: string, ends: SignedEnds): boolean;
  /** Refuses and counts (the coordinator's `rejected`). */
  refuse(address: string, what: string, reason: string): void;
}

/** An envelope's first bytes (its header), its signature and its length: what the intake reads of it; and its author's signed piece root, when it sent one. */
export interface SignedEnds {
  head: Uint8Array;
  signature: Uint8Array;
  bytes: number;
  root?: SignedRoot;
  /** The object's ETag when it is an MD5 of the body (an S3 PUT of one part), lowercase hex; else undefined. */
  md5?: string;
}

/** An ETag that is the MD5 of the object's bytes (a single-part upload's, unencrypted): 32 hex digits, quotes aside. */
export function md5OfEtag(etag: string): string | undefined {
  const bare = etag.replace(/^"|"$/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(bare) ? bare : undefined;
}

type Uploaded = Extract<ClientMessage, { type: 'uploaded' }>;

const slotOf = (round: number, address: string) => `${round}/${address}`;
/** Where an accepted update stays (only the coordinator writes there). */
const finalKey = (run: string, round: number, address: string) => `updates/${run}/${round}/${address}.bin`;

export class BucketUpdates {
  /** Upload keys handed out, by "round/address". */
  private readonly uploads = new Map<string, string>();
  /** Accepted updates copied to their final key, by "round/address". */
  private readonly stored = new Map<string, string>();
  /** Intake of `uploaded` under way, by "round/address" (a second one is refused). */
  private readonly busy = new Set<string>();

  private readonly run: string;
  /** The largest update envelope the run accepts. */
  private readonly maxEnvelopeBytes: number;

  constructor(
    private readonly store: ObjectStore,
    config: Pick<RunConfig, 'run' | 'maxMessageBytes'>,
    private readonly ctx: BucketUpdatesContext,
  ) {
    this.run = config.run;
    this.maxEnvelopeBytes = maxEnvelopeBytes(config.maxMessageBytes);
  }

  /** Round `round` was announced to `address`: presign its upload URL and send it. */
  announced(address: string, round: number, deadline: number): void {
    const key = `uploads/${this.run}/${round}/${address}-${randomBytes(8).toString('hex')}.bin`;
    const expires = Math.max(MIN_UPLOAD_EXPIRES_S, Math.ceil((deadline - this.ctx.now()) / 1000) + UPLOAD_GRACE_S);
    this.uploads.set(slotOf(round, address), key);
    this.store.presignPut(key, expires).then(
      (url) => {
        if (url) this.ctx.sendTo(address, { type: 'upload-url', round, url, validMs: expires * 1000 });
      },
      (e: unknown) => this.ctx.log(`could not presign an upload URL for ${address} (round ${round}): ${(e as Error).message}`),
    );
  }

  /** The member says its update of `round` (`bytes` long, with its signed piece root when given) is at its upload URL. */
  async uploaded(address: string, m: Uploaded): Promise<void> {
    const { round, bytes } = m;
    const root = m.pieces !== undefined && m.piecesSignature !== undefined ? { pieces: m.pieces, piecesSignature: m.piecesSignature } : undefined;
    const slot = slotOf(round, address);
    const key = this.uploads.get(slot);
    const refuse = (what: string, reason: string) => this.ctx.refuse(address, what, `${reason}; send the update over the WebSocket instead`);
    if (!key) return refuse('bucket-no-slot', `no upload URL was given to you for round ${round}`);
    if (this.busy.has(slot) || this.stored.has(slot)) return refuse('bucket-duplicate', `round ${round}'s upload was already taken in`);
    if (bytes > this.maxEnvelopeBytes) return refuse('bucket-size', `an update of ${bytes} bytes is over the run's ${this.maxEnvelopeBytes}`);
    this.busy.add(slot);
    try {
      const found = await this.store.head(key);
      if (!found) return refuse('bucket-missing', `nothing at your upload URL for round ${round} (the PUT failed or the URL expired)`);
      if (found.bytes !== bytes) return refuse('bucket-size', `the object at your upload URL is ${found.bytes} bytes, you said ${bytes}`);
      if (found.bytes > this.maxEnvelopeBytes) return refuse('bucket-size', `an update of ${found.bytes} bytes is over the run's ${this.maxEnvelopeBytes}`);
      if (found.bytes <= SIGNATURE_BYTES) return refuse('bucket-size', `an object of ${found.bytes} bytes is no update envelope`);
      // The header and the signature only, both of that version: the signature covers the
      // payload through its hash, and whoever reads the payload checks it against that hash.
      const head = await this.store.getRange(key, 0, Math.min(MAX_HEADER_BYTES, found.bytes - SIGNATURE_BYTES), found.etag);
      const signature = await this.store.getRange(key, found.bytes - SIGNATURE_BYTES, found.bytes, found.etag);
      if (!head || !signature) return refuse('bucket-missing', `your upload for round ${round} vanished before it was read`);
      // Copied where only the coordinator writes before it is accepted, so that the commit it
      // may close names an update already there; the copy is of the version whose header was read.
      const final = finalKey(this.run, round, address);
      await this.store.copy(key, final, found.etag);
      // The ETag is the server's MD5 of the body (what a neighbour's copy is compared with: gather.ts); the copy keeps it.
      if (!this.ctx.accept(address, { head, signature, bytes: found.bytes, root, md5: md5OfEtag(found.etag) })) return void (await this.store.delete([final, key]));
      this.stored.set(slot, final);
      await this.store.delete([key]);
    } catch (e) {
      if (!(e instanceof ObjectStoreError)) throw e;
      refuse(`bucket-${e.reason}`, e.message);
    } finally {
      this.busy.delete(slot);
    }
  }

  /**
   * A presigned GET of a stored update, or null when the bucket does not hold it (the
   * coordinator serves its own copy: one sent over the WebSocket). `kept`: the coordinator's
   * record still names it. Taken in since this start, the answer is in memory; before it (a
   * restart), a HEAD of its final key says whether it came through the bucket.
   */
  async downloadUrl(round: number, sender: string, kept: boolean): Promise<string | null> {
    let key = this.stored.get(slotOf(round, sender)) ?? null;
    if (!key && kept && !this.uploads.has(slotOf(round, sender))) {
      const final = finalKey(this.run, round, sender);
      if (await this.store.head(final)) key = final;
    }
    return key ? this.store.presignGet(key, DOWNLOAD_EXPIRES_S) : null;
  }

  /** The stored update of (round, sender) read whole from the bucket (the validator's reads: validator-reads.ts), or null. */
  async read(round: number, sender: string): Promise<Uint8Array | null> {
    return this.store.get(finalKey(this.run, round, sender), this.maxEnvelopeBytes);
  }

  /**
   * Drops what the coordinator no longer keeps: upload keys of rounds before `current`, and
   * stored updates `kept` says are gone (the disk copy's retention decides, state-store.ts).
   */
  async prune(current: number, kept: (round: number, sender: string) => boolean): Promise<void> {
    const gone: string[] = [];
    for (const [slot, key] of this.uploads) {
      if (Number(slot.split('/')[0]) >= current) continue;
      this.uploads.delete(slot);
      if (!this.stored.has(slot)) gone.push(key); // never taken in: perhaps uploaded, never announced
    }
    for (const [slot, key] of this.stored) {
      const [round, sender] = slot.split('/');
      if (kept(Number(round), sender)) continue;
      this.stored.delete(slot);
      gone.push(key);
    }
    if (gone.length === 0) return;
    try {
      await this.store.delete(gone);
    } catch (e) {
      this.ctx.log(`could not delete ${gone.length} old object(s) from the bucket: ${(e as Error).message}`);
    }
  }
}
