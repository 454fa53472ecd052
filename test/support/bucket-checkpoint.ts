// A checkpoint through the run's store, for the S3 test and the s3-store benchmark: a served
// coordinator (the real server.ts and checkpoint routes; disk or bucket store) whose round 0
// commit asks an uploader (test/coordinator/checkpoint-support.ts), the asked uploader's real
// upload (src/contributor/checkpoint-upload.ts), then late joiners' real verified fetches
// (checkpoint-fetch.ts). What it measures: the coordinator's bytes on the wire for each part.
import { serveCoordinator, type CoordinatorServer } from '../../src/coordinator/server.ts';
import type { ObjectStore } from '../../src/coordinator/object-store.ts';
import { uploadCheckpoint } from '../../src/contributor/checkpoint-upload.ts';
import { fetchCheckpoint } from '../../src/contributor/checkpoint-fetch.ts';
import type { ContributorEvent } from '../../src/contributor/events.ts';
import { Traffic } from '../../src/contributor/traffic.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import type { HttpClient } from '../../src/protocol/http.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { joined, roundWithAsk, syntheticWeights, until, type SyntheticWeights } from '../coordinator/checkpoint-support.ts';
import { makeCoordinator, type Harness } from '../coordinator/helpers.ts';

export interface StoreCheckpoint {
  h: Harness;
  server: CoordinatorServer;
  http: string;
  weights: SyntheticWeights;
  asked: Hotkey;
  stop(): Promise<void>;
}

/** A served coordinator (bucket or disk) whose round-0 commit asked one of `keys` for θ_start(1), reported by all as `weights`. */
export async function checkpointAsked(config: RunConfig, keys: Hotkey[], stateDir: string, bucket?: ObjectStore): Promise<StoreCheckpoint> {
  const h = makeCoordinator(config, { dir: stateDir, bucket });
  const server = await serveCoordinator(h.coordinator, { port: 0, shard: new Uint8Array(16) });
  const weights = await syntheticWeights(config, 1);
  const { asked } = roundWithAsk(h, keys, () => weights.fingerprint);
  return {
    h, server, http: `http://127.0.0.1:${server.port}`, weights, asked,
    async stop() {
      h.coordinator.stop();
      await server.close();
    },
  };
}

/** The asked uploader's upload, as a contributor does it; resolves with its events once the coordinator accepted the checkpoint. */
export async function uploadAsked(s: StoreCheckpoint, http: HttpClient = nodeHttpClient()): Promise<ContributorEvent[]> {
  const events: ContributorEvent[] = [];
  const c = s.h.config;
  await uploadCheckpoint({
    key: s.asked, http, httpBase: s.http, run: c.run, stage: 0, round: s.weights.round, pieceBytes: c.checkpointPieceBytes,
    weights: async () => s.weights.parts, fingerprint: async () => s.weights.fingerprint,
    traffic: new Traffic(), onEvent: (e) => events.push(e), sleep: async () => {},
  });
  if (!events.some((e) => e.event === 'checkpoint')) return events; // refused: nothing to wait for
  await until(() => s.h.coordinator.status().checkpointRound === s.weights.round, 60_000, 'the checkpoint to be accepted');
  return events;
}

/** A late joiner's verified fetch: throws CheckpointFetchError when a check fails; checks the bytes are the uploaded ones. */
export async function lateJoinerFetch(s: StoreCheckpoint): Promise<void> {
  const got = await fetchCheckpoint({ http: nodeHttpClient(), httpBase: s.http, config: s.h.config, stage: 0 });
  if (!got || got.round !== s.weights.round || got.weights !== s.weights.fingerprint) throw new Error(`the late joiner got ${got ? `round ${got.round}` : 'no checkpoint'}`);
  if (!Buffer.from(got.bytes).equals(joined(s.weights.parts))) throw new Error('the late joiner’s checkpoint is not the uploaded one');
}

export interface CheckpointTraffic {
  checkpointBytes: number;
  pieces: number;
  /** The coordinator's bytes on the wire while the uploader uploaded (received, sent). */
  uploadReceived: number;
  uploadSent: number;
  /** The coordinator's bytes sent while `joiners` late joiners fetched it. */
  fetchSent: number;
  joiners: number;
}

/** Upload, then `joiners` fetches, counting the coordinator's bytes for each. */
export async function checkpointTraffic(s: StoreCheckpoint, joiners: number): Promise<CheckpointTraffic> {
  const t0 = s.server.traffic();
  const events = await uploadAsked(s);
  const warning = events.find((e) => e.event === 'warning');
  if (warning) throw new Error(`the upload warned: ${JSON.stringify(warning)}`);
  const t1 = s.server.traffic();
  for (let j = 0; j < joiners; j++) await lateJoinerFetch(s);
  const t2 = s.server.traffic();
  return {
    checkpointBytes: s.weights.bytes, pieces: Math.ceil(s.weights.bytes / s.h.config.checkpointPieceBytes),
    uploadReceived: t1.received - t0.received, uploadSent: t1.sent - t0.sent, fetchSent: t2.sent - t1.sent, joiners,
  };
}
