// HTTP for checkpoints (checkpoint-intake.ts behind it):
//   GET /checkpoint[/manifest]?stage=s   the stage's accepted checkpoint: its signed manifest
//   GET /checkpoint/piece/<sha256>       a piece of an accepted checkpoint; Range requests
//                                        (206) so a cut-off fetch resumes where it stopped
//   PUT /checkpoint/manifest             the asked uploader's signed manifest
//   PUT /checkpoint/piece/<sha256>       one of its pieces, streamed to the store as it arrives
//   PUT /checkpoint/uploaded/<sha256>    (empty) with a bucket store: the piece is at the
//                                        presigned URL the manifest's answer gave; taken in from there
// With a bucket store the GETs answer 307 with a presigned GET on the bucket (Range passes
// through), so the coordinator sends no checkpoint bytes (checkpoint-bucket-pieces.ts).
// Every PUT is refused before a byte of its body is read unless its headers sign it as the
// uploader the coordinator asked, it declares a Content-Length within the model's limits,
// and an upload slot is free (MAX_CONCURRENT_CHECKPOINT_UPLOADS). A refused request's
// connection is closed, so an attacker's body is never read or buffered.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { AUTH_ADDRESS_HEADER, AUTH_SIGNATURE_HEADER, MAX_MANIFEST_BYTES, requestSigner } from '../protocol/checkpoint-manifest.ts';
import type { CheckpointIntake, IntakeResult } from './checkpoint-intake.ts';
import type { CheckpointPieces } from './checkpoint-pieces.ts';

export interface CheckpointRouteDeps {
  run: string;
  intake: CheckpointIntake;
  pieces: CheckpointPieces;
  count(what: string): void;
  json(res: ServerResponse, status: number, v: unknown, extra?: Record<string, string>): void;
}

const PIECE = /^\/checkpoint\/piece\/([0-9a-f]{64})$/;
const UPLOADED = /^\/checkpoint\/uploaded\/([0-9a-f]{64})$/;
const redirect = (res: ServerResponse, location: string) => void res.writeHead(307, { location, 'cache-control': 'no-store', 'access-control-allow-origin': '*' }).end();

/** Answers a request under /checkpoint; false when the path is not one of these. */
export async function checkpointRoute(req: IncomingMessage, res: ServerResponse, url: URL, d: CheckpointRouteDeps): Promise<boolean> {
  const path = url.pathname;
  if (path !== '/checkpoint' && !path.startsWith('/checkpoint/')) return false;
  if (req.method === 'GET') {
    await d.pieces.ready;
    if (path === '/checkpoint' || path === '/checkpoint/manifest') {
      const stage = Number(url.searchParams.get('stage') ?? 0);
      const m = d.intake.manifest(stage);
      const there = m ? await d.pieces.manifestUrl(stage, m.manifest.round) : null;
      if (there) return redirect(res, there), true;
      d.json(res, m ? 200 : 404, m ?? { error: `no checkpoint of stage ${url.searchParams.get('stage') ?? 0} yet` });
      return true;
    }
    const piece = PIECE.exec(path);
    if (piece && d.intake.serves(piece[1]) && d.pieces.has(piece[1])) {
      const there = await d.pieces.downloadUrl(piece[1]);
      if (there) return redirect(res, there), true;
      servePiece(req, res, piece[1], d);
      return true;
    }
    d.json(res, 404, { error: 'no such checkpoint piece (only pieces of an accepted checkpoint are served)' });
    return true;
  }
  if (req.method !== 'PUT') return false;
  // Nothing below reads the body until the request is authenticated and fits.
  const close = (status: number, what: string, error: string) => {
    d.count(what);
    res.setHeader('connection', 'close');
    res.on('finish', () => req.destroy());
    d.json(res, status, { error });
    return true;
  };
  const length = Number(req.headers['content-length']);
  if (!Number.isSafeInteger(length) || length < 0) return close(411, 'checkpoint-no-length', 'a checkpoint upload must declare its Content-Length');
  const signer = requestSigner(d.run, 'PUT', path, length, req.headers[AUTH_ADDRESS_HEADER], req.headers[AUTH_SIGNATURE_HEADER]);
  if (!signer) return close(401, 'checkpoint-unsigned', `a checkpoint upload must be signed (${AUTH_ADDRESS_HEADER}, ${AUTH_SIGNATURE_HEADER}) by the uploader the coordinator asked`);
  const stage = d.intake.stageAskedOf(signer);
  if (stage === null) return close(403, 'checkpoint-not-asked', `${signer} was not asked to upload a checkpoint`);
  const uploaded = UPLOADED.exec(path);
  if (uploaded) {
    if (length !== 0) return close(413, 'checkpoint-size', 'PUT /checkpoint/uploaded/<sha256> has no body: the piece is in the bucket');
    if (!d.intake.beginUpload()) {
      res.setHeader('retry-after', '5');
      return close(503, 'checkpoint-busy', 'too many checkpoint uploads at once: retry shortly');
    }
    try {
      return answer(res, await d.intake.acceptUploaded(stage, uploaded[1]), d), true;
    } finally {
      d.intake.endUpload();
    }
  }
  const piece = PIECE.exec(path);
  const limit = path === '/checkpoint/manifest' ? MAX_MANIFEST_BYTES : piece ? d.intake.pieceLengthOf(stage, piece[1]) : null;
  if (limit === null) return close(piece ? 409 : 404, 'checkpoint-piece-unknown', piece ? 'that piece is not in your pending manifest: PUT /checkpoint/manifest first' : `no PUT ${path} here: upload /checkpoint/manifest, then /checkpoint/piece/<sha256>`);
  if (piece ? length !== limit : length > limit) return close(413, 'checkpoint-size', `${length} bytes: ${piece ? `this piece is ${limit}` : `at most ${limit}`}`);
  if (piece && d.intake.stored(piece[1])) {
    res.setHeader('connection', 'close');
    res.on('finish', () => req.destroy());
    return answer(res, await d.intake.acceptPiece(stage, piece[1], (async function* () {})()), d), true;
  }
  if (!d.intake.beginUpload()) {
    res.setHeader('retry-after', '5');
    return close(503, 'checkpoint-busy', 'too many checkpoint uploads at once: retry shortly');
  }
  try {
    if (piece) return answer(res, await d.intake.acceptPiece(stage, piece[1], req), d), true;
    const text = await readSmall(req, limit);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return close(400, 'checkpoint-manifest', 'the manifest is not JSON');
    }
    return answer(res, await d.intake.acceptManifest(signer, stage, body), d), true;
  } finally {
    d.intake.endUpload();
  }
}

function answer(res: ServerResponse, r: IntakeResult, d: CheckpointRouteDeps): void {
  if (r.ok) d.json(res, r.status, r.body);
  else d.json(res, r.status, { error: r.reason, what: r.what });
}

async function readSmall(req: IncomingMessage, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > limit) throw new Error(`the body is longer than its Content-Length`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** A piece, whole or the byte range asked for (`Range: bytes=a-b` or `bytes=a-`). */
function servePiece(req: IncomingMessage, res: ServerResponse, hash: string, d: CheckpointRouteDeps): void {
  const size = d.pieces.size(hash)!;
  const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
  const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'cache-control': 'public, max-age=31536000, immutable' };
  let start = 0;
  let end = size - 1;
  if (req.headers.range !== undefined) {
    if (!range || Number(range[1]) >= size) {
      d.json(res, 416, { error: `the piece is ${size} bytes; ask a range within it` }, { 'content-range': `bytes */${size}` });
      return;
    }
    start = Number(range[1]);
    end = range[2] ? Math.min(size - 1, Number(range[2])) : size - 1;
    if (end < start) {
      d.json(res, 416, { error: 'an empty range' }, { 'content-range': `bytes */${size}` });
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': String(end - start + 1), 'content-range': `bytes ${start}-${end}/${size}` });
  } else res.writeHead(200, { ...headers, 'content-length': String(size) });
  const stream = Readable.from(d.pieces.read(hash, start, end));
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
