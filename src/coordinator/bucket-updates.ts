// Updates through an S3-compatible bucket (object-store.ts): members upload their signed
// update straight to the bucket and peers fetch committed ones from it, so the coordinator
// never carries those bytes to anyone.
//
//   round r announced to member m  → upload-url {round, url, validMs}: a presigned PUT on a
//                                    key unique to (r, m, a random nonce), valid until the
//                                    round's deadline plus UPLOAD_GRACE_S
//   m PUTs its envelope there, then uploaded {round, bytes} →
//     HEAD (missing, wrong size → refused, counted), GET of exactly that version, a server-side
//     copy of that version (checked by its ETag) to updates/<run>/<r>/<m>.bin, which nobody
//     else can write, then the same checks as an update sent over the WebSocket (signature,
//     sender, round, frame: coordinator.ts onBinary); refused, the copy is deleted
//   GET /update/<r>/<m>              → 307 to a presigned GET of that copy (DOWNLOAD_EXPIRES_S)
//
// The coordinator reads each update once (it keeps a disk copy for its validator, as with the
// disk store); it sends none. Every failure is a `rejected` to the member (what: bucket-…),
// counted; the member then sends its update over the WebSocket instead and the round goes on.
// Whoever fetches checks the bytes against the signed commit's hash before applying them.
import { randomBytes } from 'node:crypto';
import type { ServerMessage } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { maxEnvelopeBytes } from '../net/envelope.ts';
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
  /** The member's update as fetched: the same checks as one sent over the WebSocket; true when accepted (else refused and counted there). */
  accept(address: string, envelope: Uint8Array): boolean;
  /** Refuses and counts (the coordinator's `rejected`). */
  refuse(address: string, what: string, reason: string): void;
}

const slotOf = (round: number, address: string) => `${round}/${address}`;

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

  /** The member says its update of `round` (`bytes` long) is at its upload URL. */
  async uploaded(address: string, round: number, bytes: number): Promise<void> {
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
      const envelope = await this.store.get(key, this.maxEnvelopeBytes);
      if (!envelope) return refuse('bucket-missing', `your upload for round ${round} vanished before it was read`);
      // Copied where only the coordinator writes before it is accepted, so that the commit it
      // may close names an update already there.
      const final = `updates/${this.run}/${round}/${address}.bin`;
      try {
        await this.store.copy(key, final, found.etag);
      } catch (e) {
        // Overwritten since it was read (the URL is still valid): the bytes read are the ones kept.
        if (!(e instanceof ObjectStoreError && e.reason === 'changed')) throw e;
        await this.store.put(final, envelope);
      }
      if (!this.ctx.accept(address, envelope)) return void (await this.store.delete([final, key]));
      this.stored.set(slot, final);
      await this.store.delete([key]);
    } catch (e) {
      if (!(e instanceof ObjectStoreError)) throw e;
      refuse(`bucket-${e.reason}`, e.message);
    } finally {
      this.busy.delete(slot);
    }
  }

  /** A presigned GET of a stored update, or null when the bucket does not hold it (the coordinator serves its own copy). */
  async downloadUrl(round: number, sender: string): Promise<string | null> {
    const key = this.stored.get(slotOf(round, sender));
    return key ? this.store.presignGet(key, DOWNLOAD_EXPIRES_S) : null;
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
