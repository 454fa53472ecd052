// Our update into the run's update store. With the coordinator's own store it goes over the
// WebSocket, as a binary frame. With a bucket store the coordinator hands each round's members
// a presigned PUT URL (`upload-url`): we PUT the envelope there with plain HTTP (fetch, in Node
// and in the browser alike: no S3 client here) and say `uploaded`, with our envelope's piece
// root signed by our hotkey (src/net/signed-root.ts); the coordinator reads the envelope's
// signed header from the bucket (not its body), checks it and the root's signature, and
// answers `accepted` as usual. The root goes into the commit, so replicas can take our
// update's pieces from neighbours rather than all of it from the bucket.
//
// Whatever goes wrong on the bucket's side — an expired URL, a refusing bucket, the
// coordinator's `rejected bucket-…` — is counted (Refusals) and the same envelope goes over the
// WebSocket instead, so the round goes on. Committed updates are fetched by gather.ts from
// GET /update/<round>/<sender>, which a bucket store answers with a redirect to a presigned
// GET; the bytes are checked against the signed commit's hash there. Environment-free.
import type { HttpClient } from '../protocol/http.ts';
import type { ClientMessage, ServerMessage } from '../protocol/messages.ts';
import { signPieceRoot } from '../net/signed-root.ts';
import type { PieceList } from '../net/pieces.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { Clock } from './waiting.ts';
import type { Refusals } from './inbox.ts';
import type { Traffic } from './traffic.ts';

type UploadUrl = Extract<ServerMessage, { type: 'upload-url' }>;

export interface UpdateUploadHost {
  /** Our hotkey: it signed the envelope, and signs its piece root. */
  key: Hotkey;
  http: HttpClient;
  clock: Clock;
  refusals: Refusals;
  traffic: Traffic;
  /** The coordinator's socket: a control message, or a binary frame (false when not connected). */
  coordinator(): { send(m: Extract<ClientMessage, { type: 'uploaded' }>): void; sendBinary(bytes: Uint8Array): boolean };
}

/** Where our update of a round went: the bucket (then `uploaded` was said) or the coordinator's socket. */
export type UploadPath = 'bucket' | 'coordinator' | 'none';

export class UpdateUploads {
  /** The latest upload URL, if any (one round at a time), and when it expires by our clock. */
  private url: (UploadUrl & { expiresAt: number }) | null = null;
  /** Our update sent to the bucket and not yet accepted: sent over the socket if the coordinator refuses it. */
  private pending: { round: number; envelope: Uint8Array } | null = null;

  constructor(private readonly h: UpdateUploadHost) {}

  /** The coordinator's presigned PUT for our update of `m.round`. */
  offer(m: UploadUrl): void {
    this.url = { ...m, expiresAt: this.h.clock.now() + m.validMs };
  }

  /** Sends our signed update of round r (its piece list, when made): to the bucket when we hold a URL for r, else (or when that fails) over the socket. */
  async send(r: number, envelope: Uint8Array, list?: PieceList): Promise<UploadPath> {
    const url = this.url?.round === r ? this.url : null;
    this.url = null;
    if (url) {
      if (this.h.clock.now() >= url.expiresAt) this.h.refusals.count('bucket-expired', 'bucket', `the upload URL for round ${r} expired before the update was ready: sent over the WebSocket`);
      else if (await this.put(r, url.url, envelope)) {
        this.pending = { round: r, envelope };
        this.h.coordinator().send({ type: 'uploaded', round: r, bytes: envelope.length, ...signPieceRoot(this.h.key, envelope, list) });
        return 'bucket';
      }
    }
    return this.overSocket(envelope);
  }

  /** The coordinator accepted our update of `round`. */
  accepted(round: number): void {
    if (this.pending?.round === round) this.pending = null;
  }

  /** The coordinator refused something of ours; a bucket upload it could not take in goes over the socket instead. */
  refused(what: string): void {
    if (!what.startsWith('bucket-') || !this.pending) return;
    const { envelope } = this.pending;
    this.pending = null;
    this.overSocket(envelope);
  }

  private overSocket(envelope: Uint8Array): UploadPath {
    if (!this.h.coordinator().sendBinary(envelope)) return 'none';
    this.h.traffic.sent(envelope.length);
    return 'coordinator';
  }

  /** PUTs to the presigned URL: true on success; a refusal is counted with what the bucket said. */
  private async put(r: number, url: string, envelope: Uint8Array): Promise<boolean> {
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.h.http.put(url, envelope));
    } catch (e) {
      this.h.refusals.count('bucket-unreachable', 'bucket', `the bucket did not answer the upload of round ${r} (${(e as Error).message}): sent over the WebSocket`);
      return false;
    }
    if (status >= 200 && status < 300) {
      this.h.traffic.sent(envelope.length);
      return true;
    }
    // S3 says why in an XML <Code>: AccessDenied for an expired or tampered URL, NoSuchBucket, …
    const code = /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1] ?? `HTTP ${status}`;
    const reason = status === 403 ? 'bucket-expired' : 'bucket-refused';
    this.h.refusals.count(reason, 'bucket', `the bucket refused the upload of round ${r}: ${code} (HTTP ${status}); sent over the WebSocket`);
    return false;
  }
}
