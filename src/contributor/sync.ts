// Getting the run's current weights when a contributor (re)joins. In order of preference:
//   0. what it holds in memory (a reconnect), if the coordinator has every commit since;
//   1. its own saved state, if the coordinator still has every commit since (replayed);
//   2. round 0 with nothing committed yet: the seeded initialisation, like everyone;
//   3. θ_start from a peer over WebRTC, if its fingerprint is the one the run's commit names;
//   4. the run's latest checkpoint (checkpoint-fetch.ts: manifest from the coordinator, uploader
//      and fingerprint checked against the commit; pieces from the neighbours that hold them,
//      checkpoint-peers.ts, the rest from the store, each checked against the manifest);
//   5. the seeded initialisation, if the coordinator still has every commit since round 0.
// then it replays the commits between what it got and the round in progress.
import { CheckpointError, type CheckpointStore } from '../train/checkpoint.ts';
import { openEnvelope } from '../net/envelope.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { weightsFingerprint } from '../train/weights-fingerprint.ts';
import { CheckpointFetchError, fetchCheckpoint, type CheckpointFetch, type CommitTrust } from './checkpoint-fetch.ts';
import { toHex } from '../base/hex.ts';
import { parseCommitView, weightsNamed, type CommitEntry, type RunState } from '../protocol/messages.ts';
import type { ModelReplica } from '../round/replica.ts';
import { layoutElements } from '../model/config.ts';
import type { HttpClient } from '../protocol/http.ts';
import { mib, throttled } from './progress.ts';

/** The name a contributor's own state is saved under, per run and stage. */
export function localCheckpointName(run: string, stage = 0): string {
  return stage === 0 ? `contributor-${run}` : `contributor-${run}-stage${stage}`;
}

export interface CommitInfo {
  round: number;
  included: CommitEntry[];
  checkpointBy: string | null;
  /** The commit's clip floor (aggregate.ts): applied with its payloads, as every replica does. */
  clipFloor?: number[];
}

/** The contributor cannot get the run's weights; the message says why and what to do. */
export class SyncError extends Error {
  override name = 'SyncError';
}

export interface SyncContext {
  state: RunState;
  /** The round whose θ_start this contributor already holds in memory (a reconnect), or −1. */
  held: number;
  replica: ModelReplica;
  store?: CheckpointStore;
  http: HttpClient;
  httpBase: string;
  run: string;
  config: RunConfig;
  address: string;
  /** Our pipeline stage and the run's stage count: weights, checkpoints and commits are per stage. */
  stage: number;
  stages: number;
  askPeers(timeoutMs: number): Promise<{ from: string; round: number; bytes: Uint8Array } | null>;
  /** Neighbours to fetch the checkpoint's pieces from before the store (checkpoint-peers.ts). */
  checkpointPeers?: CheckpointFetch['peers'];
  peerTimeoutMs: number;
  /** A commit already heard live, if any. */
  commitFor(round: number): CommitInfo | null;
  currentRound(): number;
  onWarning(text: string): void;
  /** Where syncing is, in words: `done` of `total` (bytes of the checkpoint, commits replayed; 0 of 0 for a wait). */
  onProgress?(done: number, total: number, text: string): void;
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
}

/** Room for a weights file's header and names beside its f32 values: bytes. */
const WEIGHTS_FILE_ROOM_BYTES = 1 << 20;

/** θ_start's f32 values: bytes. */
function weightsBytes(replica: ModelReplica): number {
  return 4 * layoutElements(replica.layout);
}

export async function syncWeights(c: SyncContext): Promise<{ round: number; source: string }> {
  const { state, replica } = c;
  if (c.held >= 0 && c.held <= state.round && c.held >= state.oldestCommit) {
    const replayed = await replay(c, c.held);
    if (replayed !== null) return { round: replayed, source: c.held === replayed ? 'memory' : `memory+${replayed - c.held} commits` };
  }
  const local = await c.store?.load(localCheckpointName(c.run, c.stage)).catch((e: Error) => {
    c.onWarning(`ignoring the saved state: ${e.message}`);
    return null;
  });
  // A saved state that is not this replica's (another stage's layers, another model) is
  // ignored like an unreadable one: the weights come from peers, the checkpoint or the seed.
  const round = local ? await c.exclusive(() => replica.restoreState(local)).catch((e: Error) => {
    if (!(e instanceof CheckpointError)) throw e;
    c.onWarning(`ignoring the saved state: ${e.message}`);
    return null;
  }) : null;
  if (round !== null) {
    if (round <= state.round && round >= state.oldestCommit) {
      const replayed = await replay(c, round);
      if (replayed !== null) return { round: replayed, source: round === replayed ? 'local' : `local+${replayed - round} commits` };
    }
    c.onWarning(`the saved state (round ${round}) is too old to catch up from: syncing afresh`);
  }
  if (state.round === 0 && state.oldestCommit === 0 && !c.commitFor(0)) {
    await c.exclusive(() => replica.initializeFromSeed());
    return { round: 0, source: 'seed' };
  }
  // θ_start whole in one peer message only where it fits the run's message limit: a base or
  // 1b model's does not (494 MB, 4 GB), and asking would only wait out the peers' timeouts
  // before the checkpoint, whose pieces come from peers too.
  const wholeFits = weightsBytes(replica) + WEIGHTS_FILE_ROOM_BYTES <= c.config.maxMessageBytes;
  if (wholeFits) c.onProgress?.(0, 0, 'asking peers for the current weights');
  const fromPeer = wholeFits ? await c.askPeers(c.peerTimeoutMs) : null;
  if (fromPeer) {
    try {
      const { round, weights } = replica.decodeWeights(fromPeer.bytes, `weights from ${fromPeer.from}`);
      if (round !== fromPeer.round) throw new SyncError(`weights labelled round ${fromPeer.round} hold round ${round}`);
      // Trusted only if they are the weights the run's commit names.
      const trust = round > 0 ? await fetchCommitTrust(c, round - 1) : null;
      const named = trust ? weightsNamed(trust, c.stage, c.config.stages) : undefined;
      const held = await weightsFingerprint(weights);
      if (held !== named) throw new SyncError(`they hold weights ${held.slice(0, 12)}…, the commit of round ${round - 1} names ${named ? `${named.slice(0, 12)}…` : 'none yet'}`);
      await c.exclusive(() => replica.loadStart(weights));
      const replayed = await replay(c, round);
      if (replayed !== null) return { round: replayed, source: `peer ${fromPeer.from}` };
    } catch (e) {
      c.onWarning(`weights from ${fromPeer.from} refused: ${(e as Error).message}`);
    }
  }
  c.onProgress?.(0, 0, 'fetching the run’s checkpoint from the coordinator');
  let checkpoint: Awaited<ReturnType<typeof fetchCheckpoint>> = null;
  try {
    checkpoint = await fetchCheckpoint({
      http: c.http, httpBase: c.httpBase, config: c.config, stage: c.stage, peers: c.checkpointPeers,
      onProgress: throttled((done, total) => c.onProgress?.(done, total, `fetching the run’s checkpoint: ${mib(done)}${total ? ` of ${mib(total)}` : ''} MiB`)),
    });
  } catch (e) {
    if (!(e instanceof CheckpointFetchError)) throw e;
    c.onWarning(`the coordinator's checkpoint refused: ${e.message}`);
  }
  if (checkpoint) {
    const { round, weights } = replica.decodeWeights(checkpoint.bytes, 'the coordinator’s checkpoint');
    if (round !== checkpoint.round) throw new SyncError(`the coordinator's checkpoint is labelled round ${checkpoint.round} but holds round ${round}`);
    const held = await weightsFingerprint(weights);
    if (held !== checkpoint.weights) throw new SyncError(`the coordinator's checkpoint holds weights ${held.slice(0, 12)}…, not the ${checkpoint.weights.slice(0, 12)}… its commit names`);
    await c.exclusive(() => replica.loadStart(weights));
    const replayed = await replay(c, round);
    const { piecesFromPeers: peers, piecesFromStore: store } = checkpoint.sources;
    if (replayed !== null) return { round: replayed, source: peers > 0 ? `checkpoint: ${peers} piece(s) from peers, ${store} from the store` : 'coordinator checkpoint' };
  }
  if (state.oldestCommit === 0) {
    await c.exclusive(() => replica.initializeFromSeed());
    const replayed = await replay(c, 0);
    if (replayed !== null) return { round: replayed, source: `seed+${replayed} commits` };
  }
  throw new SyncError(`cannot get the weights of run '${c.run}' at round ${state.round}: no peer answered and the coordinator has no usable checkpoint; try again when another contributor is online`);
}

/** Applies commits from `from` up to the round in progress; the round reached, or null if one is unavailable. */
async function replay(c: SyncContext, from: number): Promise<number | null> {
  let r = from;
  while (r < c.currentRound()) {
    c.onProgress?.(r - from, c.currentRound() - from, `catching up: applying commit ${r - from + 1} of ${c.currentRound() - from}`);
    const commit = c.commitFor(r) ?? (await fetchCommit(c, r));
    if (!commit) return null;
    const payloads: Uint8Array[] = [];
    for (const e of commit.included) {
      if ((e.stage ?? 0) !== c.stage) continue; // another stage's layers
      const bytes = await c.http.get(`${c.httpBase}/update/${r}/${e.sender}`);
      if (!bytes) return null;
      const { header, payload } = openEnvelope(bytes, { run: c.run, maxPayloadBytes: 2 ** 31 });
      if (header.sender !== e.sender || header.round !== r || toHex(header.payloadHash) !== e.hash) throw new SyncError(`the coordinator's copy of ${e.sender}'s round-${r} update does not match its commit`);
      payloads.push(payload);
    }
    await c.exclusive(() => c.replica.apply(payloads, r, commit.clipFloor));
    r++;
  }
  return r;
}

async function fetchCommitTrust(c: SyncContext, round: number): Promise<CommitTrust | null> {
  const bytes = await c.http.get(`${c.httpBase}/commit/${round}`);
  return bytes ? (JSON.parse(new TextDecoder().decode(bytes)) as CommitTrust) : null;
}

async function fetchCommit(c: SyncContext, round: number): Promise<CommitInfo | null> {
  const bytes = await c.http.get(`${c.httpBase}/commit/${round}`);
  if (!bytes) return null;
  // The replica's view (the committed entries and counts, O(K)), not the operator's full record.
  const view = parseCommitView(new TextDecoder().decode(bytes), round);
  if (!view) throw new SyncError(`the coordinator's commit of round ${round} is malformed`);
  return { round, included: view.included, checkpointBy: null, ...(view.clipFloor ? { clipFloor: view.clipFloor } : {}) };
}
