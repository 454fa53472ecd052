// The run's checkpoint: every `checkpointEvery` rounds the coordinator's commit asks one
// member per stage to upload θ_start of the next round, so a newcomer can sync without a
// peer. Stage 0's uploader is the commit's `checkpointBy` (it rotates, or is the run's own
// uploader: run-config.ts `checkpointUploader`); in another stage, its first committed member.
// The checkpoint goes up as a signed manifest and content-addressed pieces
// (protocol/checkpoint-manifest.ts), each request signed; pieces the coordinator already
// holds are not sent again. With a bucket store the manifest's answer names a presigned PUT per
// missing piece: the piece goes to the bucket directly, then a signed, empty
// PUT /checkpoint/uploaded/<sha256> has the coordinator take it in from there; a PUT the bucket
// refuses (or a piece the coordinator could not take in) goes to the coordinator instead.
// Environment-free.
import { signManifest, signRequest, splitPieces, type CheckpointManifest } from '../protocol/checkpoint-manifest.ts';
import type { CommitEntry } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { OnEvent } from './events.ts';
import type { CommitInfo } from './sync.ts';
import type { Traffic } from './traffic.ts';

/** Tries per piece when the coordinator is busy (503) or the request fails. */
const PIECE_TRIES = 4;
const BUSY_WAIT_MS = 2000;

/** Who uploads `stage`'s checkpoint after `commit` (all stages' entries; `ours`: our stage's), or null: nobody this round. */
export function checkpointUploader(commit: CommitInfo, ours: readonly CommitEntry[], stage: number, stages: number): string | null {
  if (stages === 1 || stage === 0) return commit.checkpointBy;
  return commit.checkpointBy !== null ? (ours[0]?.sender ?? null) : null;
}

export interface CheckpointUpload {
  key: Hotkey;
  http: HttpClient;
  httpBase: string;
  run: string;
  stage: number;
  pieceBytes: number;
  /** θ_start of `round`, as a checkpoint file (or its parts: encodeCheckpointParts). */
  round: number;
  weights(): Promise<Uint8Array | Uint8Array[]>;
  /** The file already cut into pieces (the contributor keeps them to serve): weights() is then not called. */
  pieces?: { hash: string; bytes: Uint8Array }[];
  /** The weights fingerprint of θ_start (what this member reported in `synced`). */
  fingerprint(): Promise<string>;
  traffic: Traffic;
  onEvent: OnEvent;
  sleep?(ms: number): Promise<void>;
}

/** Signs and uploads the checkpoint; a refusal or a failed request is a warning: the run goes on without this one. */
export async function uploadCheckpoint(u: CheckpointUpload): Promise<void> {
  try {
    const pieces = u.pieces ?? (await splitPieces(await u.weights(), u.pieceBytes));
    const totalBytes = pieces.reduce((n, p) => n + p.bytes.length, 0);
    const manifest: CheckpointManifest = {
      run: u.run, round: u.round, stage: u.stage, uploader: u.key.address, weights: await u.fingerprint(),
      totalBytes, pieceBytes: u.pieceBytes, pieces: pieces.map((p) => p.hash),
    };
    const body = new TextEncoder().encode(JSON.stringify(signManifest(u.key, manifest)));
    const r = await signedPut(u, '/checkpoint/manifest', body);
    if (r.status !== 200) return u.onEvent({ event: 'warning', text: `the coordinator refused our checkpoint of round ${u.round}: ${r.text}` });
    let sent = body.length;
    const answer = JSON.parse(r.text) as { missing: string[]; uploadUrls?: Record<string, string> };
    const missing = new Set(answer.missing);
    let bucketRefusal: string | null = null;
    for (const p of pieces) {
      if (!missing.has(p.hash)) continue;
      missing.delete(p.hash); // a piece twice in one checkpoint goes once
      const url = answer.uploadUrls?.[p.hash];
      if (url) {
        const why = await putToBucket(u, url, p.hash, p.bytes);
        if (why === null) {
          sent += p.bytes.length;
          continue;
        }
        bucketRefusal ??= why;
      }
      const put = await putPiece(u, `/checkpoint/piece/${p.hash}`, p.bytes);
      if (put.status !== 200) return u.onEvent({ event: 'warning', text: `the coordinator refused piece ${p.hash.slice(0, 12)}… of our checkpoint of round ${u.round}: ${put.text}` });
      sent += p.bytes.length;
    }
    u.traffic.sent(sent);
    if (bucketRefusal) u.onEvent({ event: 'warning', text: `the run's bucket did not take pieces of our checkpoint of round ${u.round} (${bucketRefusal}): they went to the coordinator` });
    u.onEvent({ event: 'checkpoint', round: u.round, bytes: sent });
  } catch (e) {
    u.onEvent({ event: 'warning', text: `checkpoint upload failed: ${(e as Error).message}` });
  }
}

function signedPut(u: CheckpointUpload, path: string, body: Uint8Array): Promise<{ status: number; text: string }> {
  return u.http.put(`${u.httpBase}${path}`, body, signRequest(u.key, u.run, 'PUT', new URL(`${u.httpBase}${path}`).pathname, body.length));
}

/** A piece to its presigned URL, then taken in by the coordinator: null when done, else why not (the caller sends it to the coordinator). */
async function putToBucket(u: CheckpointUpload, url: string, hash: string, bytes: Uint8Array): Promise<string | null> {
  try {
    const r = await u.http.put(url, bytes);
    // S3 says why in an XML <Code>: AccessDenied for an expired URL, NoSuchBucket, …
    if (r.status < 200 || r.status >= 300) return `${/<Code>([^<]{1,64})<\/Code>/.exec(r.text)?.[1] ?? 'refused'}, HTTP ${r.status}`;
  } catch (e) {
    return `unreachable: ${(e as Error).message}`;
  }
  const taken = await putPiece(u, `/checkpoint/uploaded/${hash}`, new Uint8Array(0));
  return taken.status === 200 ? null : `the coordinator could not take it in: ${taken.text}`;
}

async function putPiece(u: CheckpointUpload, path: string, bytes: Uint8Array): Promise<{ status: number; text: string }> {
  const sleep = u.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last: { status: number; text: string } = { status: 0, text: 'not tried' };
  for (let t = 0; t < PIECE_TRIES; t++) {
    try {
      last = await signedPut(u, path, bytes);
      if (last.status !== 503) return last;
    } catch (e) {
      last = { status: 0, text: (e as Error).message };
    }
    await sleep(BUSY_WAIT_MS * (t + 1));
  }
  return last;
}
