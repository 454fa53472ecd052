// The run's checkpoint: every `checkpointEvery` rounds the coordinator's commit names a
// member to upload θ_start of the next round, so a newcomer can sync without a peer. One
// uploader per stage: the commit names stage 0's; in another stage, its first committed
// member uploads. Environment-free.
import { sealEnvelope } from '../net/envelope.ts';
import type { CommitEntry } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { OnEvent } from './events.ts';
import type { CommitInfo } from './sync.ts';
import type { Traffic } from './traffic.ts';

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
  /** θ_start of `round`, as a checkpoint file. */
  round: number;
  weights(): Promise<Uint8Array>;
  traffic: Traffic;
  onEvent: OnEvent;
}

/** Signs and uploads the checkpoint; a refusal or a failed request is a warning: the run goes on without this one. */
export async function uploadCheckpoint(u: CheckpointUpload): Promise<void> {
  const envelope = sealEnvelope(u.key, { kind: 'weights', run: u.run, round: u.round, stage: u.stage }, await u.weights());
  try {
    const r = await u.http.put(`${u.httpBase}/checkpoint`, envelope);
    if (r.status !== 200) u.onEvent({ event: 'warning', text: `the coordinator refused our checkpoint of round ${u.round}: ${r.text}` });
    else {
      u.traffic.sent(envelope.length);
      u.onEvent({ event: 'checkpoint', round: u.round, bytes: envelope.length });
    }
  } catch (e) {
    u.onEvent({ event: 'warning', text: `checkpoint upload failed: ${(e as Error).message}` });
  }
}
