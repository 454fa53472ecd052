// Where the run's large objects live — updates now, checkpoint pieces next — behind one
// interface with two backends: the coordinator's own disk (the embedded default) and an
// S3-compatible bucket (AWS S3, Cloudflare R2, Ceph's radosgw, MinIO …). Keys are '/'-separated
// paths chosen by the caller (object-keys.ts). Only the S3 backend can presign: with it,
// contributors PUT and GET the bytes at the bucket directly and the coordinator never carries
// them to peers; with the disk backend presign* return null and everything goes through the
// coordinator's HTTP routes, as before.
//
// The S3 client is the AWS SDK's (signing and presigning are its job, never ours). Checksums
// are computed only where an operation requires them: the SDK's default would put a CRC32 of
// an empty body into presigned PUT URLs, which real AWS S3 then checks against the upload.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { CopyObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutBucketCorsCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { writeFileAtomic } from '../node/files.ts';

export interface StoredObject {
  bytes: number;
  /** The backend's version tag (S3's ETag; the disk's size and mtime): a copy can require it unchanged. */
  etag: string;
}

export interface ObjectStore {
  /** 'disk' or 's3', for logs and the status page ('modelled': tessera simulate's, src/sim/sim-bucket.ts). */
  readonly kind: 'disk' | 's3' | 'modelled';
  /** Where it is, without credentials ("s3 bucket tessera at https://…", "disk /var/…"). */
  readonly description: string;
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The object, or null when there is none; throws ObjectStoreError when it exceeds maxBytes or the backend refuses. */
  get(key: string, maxBytes: number): Promise<Uint8Array | null>;
  head(key: string): Promise<StoredObject | null>;
  /**
   * Bytes [start, end) of the object, only if it still has `etag` (else ObjectStoreError
   * 'changed'), or null when there is none: a ranged read, so a header costs its own bytes only.
   */
  getRange(key: string, start: number, end: number, etag: string): Promise<Uint8Array | null>;
  /** Copies `from` to `to` inside the store, only if `from` still has `etag` (else ObjectStoreError 'changed'). */
  copy(from: string, to: string, etag: string): Promise<void>;
  delete(keys: readonly string[]): Promise<void>;
  /** A URL anyone holding it may PUT the object to until it expires, or null (disk: upload to the coordinator). */
  presignPut(key: string, expiresSeconds: number): Promise<string | null>;
  /** A URL anyone holding it may GET the object from until it expires, or null (disk: fetch from the coordinator). */
  presignGet(key: string, expiresSeconds: number): Promise<string | null>;
}

export type ObjectStoreReason = 'refused' | 'too-large' | 'changed' | 'key';

/** The store could not do what was asked; `reason` is the counter's key, the message says what to do. */
export class ObjectStoreError extends Error {
  constructor(
    readonly reason: ObjectStoreReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ObjectStoreError';
  }
}

/** A key the stores accept: relative path segments of [A-Za-z0-9._-], no '..'. */
const KEY = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*)(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
function checkKey(key: string): string {
  if (!KEY.test(key) || key.length > 900) throw new ObjectStoreError('key', `object key '${key.slice(0, 80)}' is not a path of [A-Za-z0-9._-] segments`);
  return key;
}

/** Throws ObjectStoreError 'key' unless [start, end) is a non-empty range inside an object of `bytes`. */
export function checkRange(key: string, start: number, end: number, bytes: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > bytes) throw new ObjectStoreError('key', `bytes ${start}–${end} are not a range of object ${key} (${bytes} bytes)`);
}

/** The coordinator's own disk: objects are files under `dir`, written atomically. */
export class DiskObjectStore implements ObjectStore {
  readonly kind = 'disk';
  readonly description: string;
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
    mkdirSync(this.root, { recursive: true });
    this.description = `disk ${this.root}`;
  }

  private file(key: string): string {
    const f = resolve(this.root, ...checkKey(key).split('/'));
    if (!f.startsWith(this.root + sep)) throw new ObjectStoreError('key', `object key '${key}' leaves the store`);
    return f;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const f = this.file(key);
    mkdirSync(dirname(f), { recursive: true });
    writeFileAtomic(f, bytes);
  }

  async get(key: string, maxBytes: number): Promise<Uint8Array | null> {
    const found = await this.head(key);
    if (!found) return null;
    if (found.bytes > maxBytes) throw new ObjectStoreError('too-large', `object ${key} is ${found.bytes} bytes, over the ${maxBytes} allowed`);
    return new Uint8Array(readFileSync(this.file(key)));
  }

  async getRange(key: string, start: number, end: number, etag: string): Promise<Uint8Array | null> {
    const found = await this.head(key);
    if (!found) return null;
    if (found.etag !== etag) throw new ObjectStoreError('changed', `object ${key} changed before it was read`);
    checkRange(key, start, end, found.bytes);
    const out = new Uint8Array(end - start);
    const fd = openSync(this.file(key), 'r');
    try {
      if (readSync(fd, out, 0, out.length, start) !== out.length) throw new ObjectStoreError('changed', `object ${key} shrank while it was read`);
    } finally {
      closeSync(fd);
    }
    return out;
  }

  async head(key: string): Promise<StoredObject | null> {
    const f = this.file(key);
    if (!existsSync(f)) return null;
    const s = statSync(f);
    return { bytes: s.size, etag: `${s.size}-${s.mtimeMs}` };
  }

  async copy(from: string, to: string, etag: string): Promise<void> {
    const bytes = await this.get(from, Number.MAX_SAFE_INTEGER);
    const now = await this.head(from);
    if (!bytes || now?.etag !== etag) throw new ObjectStoreError('changed', `object ${from} changed or vanished before it was copied`);
    await this.put(to, bytes);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) rmSync(this.file(k), { force: true });
  }

  async presignPut(): Promise<null> {
    return null;
  }

  async presignGet(): Promise<null> {
    return null;
  }

  /** Where a key's file is (tests and the run's own disk tools). */
  pathOf(key: string): string {
    return join(this.file(key));
  }
}

export interface S3Settings {
  /** e.g. https://<account>.r2.cloudflarestorage.com, http://127.0.0.1:7480; absent: AWS's own endpoint for the region. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (endpoint/bucket/key): needed by radosgw and MinIO; true unless set. */
  forcePathStyle?: boolean;
  /** Key prefix inside the bucket (one bucket, several runs); '' for none. */
  prefix?: string;
}

/** Most keys one DeleteObjects request may name (S3's limit). */
const DELETE_BATCH = 1000;

/** An S3-compatible bucket, through the AWS SDK. */
export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.prefix = settings.prefix ? checkKey(settings.prefix) + '/' : '';
    this.client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region,
      forcePathStyle: settings.forcePathStyle ?? true,
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
    });
    this.description = `s3 bucket ${settings.bucket}${this.prefix ? ` (keys under ${this.prefix})` : ''} at ${settings.endpoint ?? `AWS ${settings.region}`}`;
  }

  private key(key: string): string {
    return this.prefix + checkKey(key);
  }

  /** Runs one S3 call; a refusal (credentials, bucket, network) becomes ObjectStoreError 'refused' naming the bucket. */
  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof ObjectStoreError) throw e;
      const code = e instanceof S3ServiceException ? `${e.name} (HTTP ${e.$metadata.httpStatusCode ?? '?'})` : (e as Error).message;
      throw new ObjectStoreError('refused', `bucket ${this.bucket} refused ${what}: ${code} — check the bucket exists and the credentials may read and write it`, { cause: e });
    }
  }

  private static isNotFound(e: unknown): boolean {
    return e instanceof S3ServiceException && (e.$metadata.httpStatusCode === 404 || e.name === 'NoSuchKey' || e.name === 'NotFound');
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.call(`PUT ${key}`, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: bytes, ContentLength: bytes.length })));
  }

  async get(key: string, maxBytes: number): Promise<Uint8Array | null> {
    const found = await this.head(key);
    if (!found) return null;
    if (found.bytes > maxBytes) throw new ObjectStoreError('too-large', `object ${key} is ${found.bytes} bytes, over the ${maxBytes} allowed`);
    return this.call(`GET ${key}`, async () => {
      try {
        // IfMatch: exactly the version whose size was checked (a PUT in between fails the GET).
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key), IfMatch: found.etag }));
        const bytes = await r.Body!.transformToByteArray();
        if (bytes.length > maxBytes) throw new ObjectStoreError('too-large', `object ${key} sent ${bytes.length} bytes, over the ${maxBytes} allowed`);
        return bytes;
      } catch (e) {
        if (S3ObjectStore.isNotFound(e)) return null;
        if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 412) throw new ObjectStoreError('changed', `object ${key} changed while it was read`);
        throw e;
      }
    });
  }

  async getRange(key: string, start: number, end: number, etag: string): Promise<Uint8Array | null> {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start) throw new ObjectStoreError('key', `bytes ${start}–${end} are not a range of object ${key}`);
    return this.call(`GET ${key} bytes ${start}–${end}`, async () => {
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key), Range: `bytes=${start}-${end - 1}`, IfMatch: etag }));
        const bytes = await r.Body!.transformToByteArray();
        if (bytes.length !== end - start) throw new ObjectStoreError('changed', `object ${key} sent ${bytes.length} bytes for a range of ${end - start}`);
        return bytes;
      } catch (e) {
        if (S3ObjectStore.isNotFound(e)) return null;
        if (e instanceof S3ServiceException && e.$metadata.httpStatusCode === 412) throw new ObjectStoreError('changed', `object ${key} changed before it was read`);
        throw e;
      }
    });
  }

  async head(key: string): Promise<StoredObject | null> {
    return this.call(`HEAD ${key}`, async () => {
      try {
        const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
        return { bytes: r.ContentLength ?? 0, etag: r.ETag ?? '' };
      } catch (e) {
        if (S3ObjectStore.isNotFound(e)) return null;
        throw e;
      }
    });
  }

  async copy(from: string, to: string, etag: string): Promise<void> {
    const changed = () => new ObjectStoreError('changed', `object ${from} changed or vanished before it was copied`);
    const copied = await this.call(`COPY ${from}`, async () => {
      try {
        const r = await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: this.key(to), CopySource: `${this.bucket}/${this.key(from)}`, CopySourceIfMatch: etag }));
        return r.CopyObjectResult?.ETag;
      } catch (e) {
        if (e instanceof S3ServiceException && (e.$metadata.httpStatusCode === 412 || S3ObjectStore.isNotFound(e))) throw changed();
        throw e;
      }
    });
    // Not every server honours the condition (Ceph Pacific's radosgw ignores it): the copy's own
    // ETag says which version was copied; another one is deleted, never left in place.
    const unquoted = (tag: string | undefined) => tag?.replace(/"/g, '');
    if (unquoted(copied ?? (await this.head(to))?.etag) !== unquoted(etag)) {
      await this.delete([to]);
      throw changed();
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH).map((k) => ({ Key: this.key(k) }));
      await this.call(`DELETE of ${batch.length} object(s)`, () => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } })));
    }
  }

  async presignPut(key: string, expiresSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), { expiresIn: expiresSeconds });
  }

  async presignGet(key: string, expiresSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), { expiresIn: expiresSeconds });
  }

  /** Throws ObjectStoreError 'refused' (naming the bucket and what to check) unless the bucket answers to these credentials. */
  async check(): Promise<void> {
    await this.call('HEAD (is it there, may these credentials use it?)', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  /**
   * Lets pages of any origin PUT and GET with presigned URLs (browser contributors upload and
   * fetch directly; the URL's signature, not the origin, is what grants access).
   */
  async allowBrowsers(): Promise<void> {
    const rule = { AllowedOrigins: ['*'], AllowedMethods: ['GET', 'PUT', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag', 'Content-Length'], MaxAgeSeconds: 3600 };
    await this.call('a CORS rule (PutBucketCors)', () => this.client.send(new PutBucketCorsCommand({ Bucket: this.bucket, CORSConfiguration: { CORSRules: [rule] } })));
  }

  /** Closes the SDK's sockets. */
  destroy(): void {
    this.client.destroy();
  }
}
