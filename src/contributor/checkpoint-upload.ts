// The run's checkpoint: every `checkpointEvery` rounds the coordinator's commit asks one
// member per stage to upload θ_start of the next round, so a newcomer can sync without a
// peer. Stage 0's uploader is the commit's `checkpointBy` (it rotates, or is the run's own
// uploader: run-config.ts `checkpointUploader`); in another stage, its first committed member.
// The checkpoint goes up as a signed manifest and content-addressed pieces
// (protocol/checkpoint-manifest.ts), each request signed; pieces the coordinator already
// holds are not sent again. Environment-free.
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
  /** The weights fingerprint of θ_start (what this member reported in `synced`). */
  fingerprint(): Promise<string>;
  traffic: Traffic;
  onEvent: OnEvent;
  sleep?(ms: number): Promise<void>;
}

/** Signs and uploads the checkpoint; a refusal or a failed request is a warning: the run goes on without this one. */
export async function uploadCheckpoint(u: CheckpointUpload): Promise<void> {
  try {
    const pieces = await splitPieces(await u.weights(), u.pieceBytes);
    const totalBytes = pieces.reduce((n, p) => n + p.bytes.length, 0);
    const manifest: CheckpointManifest = {
      run: u.run, round: u.round, stage: u.stage, uploader: u.key.address, weights: await u.fingerprint(),
      totalBytes, pieceBytes: u.pieceBytes, pieces: pieces.map((p) => p.hash),
    };
    const body = new TextEncoder().encode(JSON.stringify(signManifest(u.key, manifest)));
    const r = await signedPut(u, '/checkpoint/manifest', body);
    if (r.status !== 200) return u.onEvent({ event: 'warning', text: `the coordinator refused our checkpoint of round ${u.round}: ${r.text}` });
    let sent = body.length;
    const missing = new Set((JSON.parse(r.text) as { missing: string[] }).missing);
    for (const p of pieces) {
      if (!missing.has(p.hash)) continue;
      missing.delete(p.hash); // a piece twice in one checkpoint goes once
      const put = await putPiece(u, p.hash, p.bytes);
      if (put.status !== 200) return u.onEvent({ event: 'warning', text: `the coordinator refused piece ${p.hash.slice(0, 12)}… of our checkpoint of round ${u.round}: ${put.text}` });
      sent += p.bytes.length;
    }
    u.traffic.sent(sent);
    u.onEvent({ event: 'checkpoint', round: u.round, bytes: sent });
  } catch (e) {
    u.onEvent({ event: 'warning', text: `checkpoint upload failed: ${(e as Error).message}` });
  }
}

function signedPut(u: CheckpointUpload, path: string, body: Uint8Array): Promise<{ status: number; text: string }> {
  return u.http.put(`${u.httpBase}${path}`, body, signRequest(u.key, u.run, 'PUT', new URL(`${u.httpBase}${path}`).pathname, body.length));
}

async function putPiece(u: CheckpointUpload, hash: string, bytes: Uint8Array): Promise<{ status: number; text: string }> {
  const sleep = u.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last: { status: number; text: string } = { status: 0, text: 'not tried' };
  for (let t = 0; t < PIECE_TRIES; t++) {
    try {
      last = await signedPut(u, `/checkpoint/piece/${hash}`, bytes);
      if (last.status !== 503) return last;
    } catch (e) {
      last = { status: 0, text: (e as Error).message };
    }
    await sleep(BUSY_WAIT_MS * (t + 1));
  }
  return last;
}
