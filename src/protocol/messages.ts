// The control protocol between contributors and the coordinator, over one WebSocket each:
// JSON text messages for control, binary frames for signed envelopes (envelope.ts).
// What one peer receives per event is bounded: no message lists the whole swarm (a
// pipelined run's round names its members: its stages need each other).
//
//   client                                   coordinator
//   hello {version}                     →
//                                       ←    challenge {run, nonce}
//   join {address, signature, capacity?} →   (signature over joinChallenge(run, nonce));
//                                            capacity: free memory and measured speed, for
//                                            the stage assignment of a pipelined run
//                                       ←    welcome {run config, state, stage}
//                                       ←    ice {servers, expiresAt}: a member's short-lived
//                                            STUN/TURN credentials (a coordinator with --turn;
//                                            renewed before they expire)
//                                       ←    stage {stage, reason}: moved to another stage
//   synced {round, weightsHash, stage}  →    "I hold θ_start of `round` (of `stage`)": a member from it on
//   heartbeat                           →
//   signal {to, data}                   →    relayed as signal {from, data}, to a neighbour only;
//                                            data: WebRTC signaling only (signal-data.ts)
//   <binary: signed 'update' envelope>  →    stored (the run's update store) for the commit,
//                                            the validator and peers that fetch it
//                                       ←    upload-url {round, url, validMs}: with a bucket store
//                                            (S3), a presigned PUT for this member's update
//   uploaded {round, bytes, pieces?,    →    "my update is at that URL": the coordinator reads
//     piecesSignature?}                      its signed header from the bucket (two small ranged
//                                            reads, not the body) and checks it as if sent here;
//                                            `pieces`: the envelope's piece root, signed by the
//                                            author (src/net/signed-root.ts), for the commit
//                                       ←    accepted {round, hash}: only then does the sender
//                                            offer it to neighbours, so a copier who re-signs it
//                                            always delivers after the original
//   report {round, loss, …}             →
//                                       ←    neighbours {neighbours}: the peers to link with
//                                            (at most the run's `neighbours`), sent when they change
//                                       ←    swarm {peers, ready, need}: counts while no round runs (throttled)
//                                       ←    round {round, memberCount, …}: to the round's members
//                                            only (a mid-round joiner gets its own)
//                                       ←    commit {round, included, delivered, checkpointBy}:
//                                            the ≤ gatherK updates every replica applies
//                                       ←    rejected {what, reason}: one of yours was refused
//                                       ←    scores {round, standing}: the validator's verdict
//
// HTTP beside it: GET /run, /shard, /status, /checkpoint/manifest and /checkpoint/piece/<sha256>
// (checkpoint-manifest.ts), /update/<round>/<address> (a stored update; a Range of it for the
// pieces a replica still misses), /commit/<round> (a CommitView: what a replica catching up
// needs, O(K)), /commit/<round>/record (the full record, O(N), for an operator);
// PUT /checkpoint/manifest and /checkpoint/piece/<sha256> (signed by the asked uploader).
// Every incoming message is checked with parseClientMessage / parseServerMessage, which
// return null for anything malformed (the caller counts it and drops it).
import type { IceServer, RunConfig } from './run-config.ts';
import { parseSignalData } from './signal-data.ts';

export const PROTOCOL_VERSION = 2;
/** Largest JSON control message either side accepts. */
export const MAX_CONTROL_BYTES = 256 * 1024;

/** What a contributor signs to join: binds the key to this run and this connection. */
export function joinChallenge(run: string, nonce: string): Uint8Array {
  return new TextEncoder().encode(`tessera-join:${PROTOCOL_VERSION}:${run}:${nonce}`);
}

export interface CommitEntry {
  sender: string;
  /** The sender's pipeline stage (0 in a run of one stage): replicas apply their own stage's entries. */
  stage: number;
  /** Hex blake2b-256 of the update's payload (the envelope's payload hash). */
  hash: string;
  /**
   * Hex root of the stored envelope's piece hashes (src/net/pieces.ts): what a neighbour's
   * piece list is checked against, so pieces can be checked one by one as they arrive.
   * With a bucket store it is the author's signed root (src/net/signed-root.ts: the intake
   * reads no body); absent in commits saved before pieces, and for a bucket's update announced
   * without a root: fetched whole from the store.
   */
  pieces?: string;
  /**
   * With a bucket store: the bucket's ETag of the committed envelope, the MD5 of its body as
   * the storage server computed it (32 hex digits). A replica that assembles the update from
   * neighbours' pieces compares it with the assembled bytes, so the copy it applies is the
   * bucket's, whatever root the author signed (gather.ts): every replica applies the same.
   */
  bodyMd5?: string;
}

/**
 * What a committed update whose stored body does not match its signed payload hash is applied
 * as: nothing (an empty payload, which no decoder accepts: every replica and the validator
 * reject it alike, counted, and apply the rest). The store's copy is the one only the
 * coordinator wrote, so every reader sees the same body and decides the same.
 */
export const FORGED_PAYLOAD: Uint8Array = new Uint8Array(0);

export interface RunState {
  /** The round in progress (or about to start). */
  round: number;
  phase: 'waiting' | 'training';
  /** Members of the round in progress (a count: a welcome never lists the swarm). */
  memberCount: number;
  /** Round of the coordinator's latest checkpoint, or -1. */
  checkpointRound: number;
  /** Lowest round whose commit the coordinator still serves. */
  oldestCommit: number;
}

export type ClientMessage =
  | { type: 'hello'; version: number }
  | { type: 'join'; address: string; signature: string; capacity?: Capacity }
  | { type: 'synced'; round: number; weightsHash: string; stage: number }
  | { type: 'heartbeat' }
  | { type: 'signal'; to: string; data: unknown }
  | { type: 'report'; round: number; loss: number; bytesUp: number; bytesDown: number; rejected: number; peers: number }
  /** `pieces`/`piecesSignature`: the envelope's piece root and its author's signature over it (both or neither). */
  | { type: 'uploaded'; round: number; bytes: number; pieces?: string; piecesSignature?: string };

export type ServerMessage =
  | { type: 'challenge'; run: string; nonce: string; version: number }
  | { type: 'welcome'; address: string; config: RunConfig; state: RunState; stage: number }
  | { type: 'stage'; stage: number; reason: string }
  /** STUN/TURN servers for this member's links, credentials valid until `expiresAt` (ms since the epoch). */
  | { type: 'ice'; servers: IceServer[]; expiresAt: number }
  | { type: 'neighbours'; neighbours: string[] }
  | { type: 'swarm'; peers: number; ready: number; need: number }
  | { type: 'signal'; from: string; data: unknown }
  | {
      type: 'round';
      round: number;
      /** Members of the round so far (it grows as late peers join). */
      memberCount: number;
      /** A pipelined run's members and their stages, sorted by address; empty in a run of one stage. */
      members: string[];
      stages: number[];
      seed: number;
      deadline: number;
      /**
       * Tokens the whole swarm trained in the updates committed before this round: each
       * included update counts innerSteps × batch × seq. A pipelined run counts its stage-0
       * updates only (one pipeline replica's steps pass through every stage, so the later
       * stages' updates are the same tokens again).
       */
      tokensTrained: number;
    }
  /** `included`: the ≤ gatherK updates to apply, sorted by sender; `delivered`: how many were stored. */
  | { type: 'commit'; round: number; included: CommitEntry[]; delivered: number; checkpointBy: string | null; clipFloor?: number[] }
  | { type: 'rejected'; what: string; reason: string }
  | { type: 'accepted'; round: number; hash: string }
  /** A presigned PUT URL for this member's update of `round` (a bucket store), valid for `validMs` from when it is sent. */
  | { type: 'upload-url'; round: number; url: string; validMs: number }
  | { type: 'scores'; round: number; standing: Standing }
  | { type: 'error'; message: string };

/** What a contributor reports of its device when joining (the coordinator places it in a stage). */
export interface Capacity {
  /** Memory it can give the model, bytes (the adapter's largest buffer, or the user's budget). */
  memoryBytes: number;
  /** Its measured training speed on a short calibration, tokens per second of the whole model. */
  tokensPerSecond: number;
}

/** A contributor's place in the validator's books after a round (ledger.ts fills it). */
export interface Standing {
  address: string;
  ema: number;
  assignedEma: number;
  rank: number;
  of: number;
  share: number;
  epoch: number;
  /** Earned in `epoch` and in all: rounds whose escrow window has passed (held rewards are not in these). */
  epochReward: number;
  totalReward: number;
  /** Rewards of recent rounds held in escrow, earned once the run's `rewardEscrowRounds` pass without an invalid or copied update (absent: an older coordinator, no escrow). */
  pendingReward?: number;
  /** Rewards lost from escrow to an invalid or copied update, in all. */
  forfeitedReward?: number;
  lastRound: number;
  /** Closed rounds the validator had not scored yet when this standing was made (they count later). */
  pendingRounds: number;
  /**
   * Its last evaluated update was harmful (made the loss worse), invalid or a copy: commits
   * leave its updates out until an evaluation clears it. Absent: no new verdict this round.
   */
  barred?: boolean;
}

/** What a contributor signs to read its rewards over HTTP: bound to run, address and time. */
export function rewardsRequest(run: string, address: string, timeMs: number): Uint8Array {
  return new TextEncoder().encode(`tessera-rewards:${PROTOCOL_VERSION}:${run}:${address}:${timeMs}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStr = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
/** Hex digits of a blake2b-256 hash and of an sr25519 signature. */
const HASH_HEX = 64;
const SIGNATURE_HEX = 128;
const MD5_HEX = 32;
const isHex = (v: unknown, digits: number): v is string => typeof v === 'string' && v.length === digits && /^[0-9a-f]*$/.test(v);
const isRound = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/** A whole number ≥ 0 (a count of tokens or rounds; may pass 2³²). */
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStage = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;

function parseJson(text: string): Record<string, unknown> | null {
  if (text.length > MAX_CONTROL_BYTES) return null;
  try {
    const v: unknown = JSON.parse(text);
    return isObj(v) ? v : null;
  } catch {
    return null;
  }
}

/** A contributor's control message, or null when malformed. */
export function parseClientMessage(text: string): ClientMessage | null {
  const m = parseJson(text);
  if (!m) return null;
  switch (m.type) {
    case 'hello':
      return isNum(m.version) ? { type: 'hello', version: m.version } : null;
    case 'join': {
      if (!isStr(m.address, 64) || !isStr(m.signature, 200)) return null;
      if (m.capacity === undefined) return { type: 'join', address: m.address, signature: m.signature };
      const c = m.capacity;
      if (!isObj(c) || !isNum(c.memoryBytes) || c.memoryBytes < 0 || !isNum(c.tokensPerSecond) || c.tokensPerSecond < 0) return null;
      return { type: 'join', address: m.address, signature: m.signature, capacity: { memoryBytes: c.memoryBytes, tokensPerSecond: c.tokensPerSecond } };
    }
    case 'synced': {
      const stage = m.stage ?? 0;
      return isRound(m.round) && isStr(m.weightsHash, 128) && isStage(stage) ? { type: 'synced', round: m.round, weightsHash: m.weightsHash, stage } : null;
    }
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'signal': {
      // Only WebRTC signaling, bounded and rebuilt (signal-data.ts): it is relayed to another peer.
      const data = parseSignalData(m.data);
      return isStr(m.to, 64) && data ? { type: 'signal', to: m.to, data } : null;
    }
    case 'report':
      return isRound(m.round) && isNum(m.loss) && isNum(m.bytesUp) && isNum(m.bytesDown) && isNum(m.rejected) && isNum(m.peers)
        ? { type: 'report', round: m.round, loss: m.loss, bytesUp: m.bytesUp, bytesDown: m.bytesDown, rejected: m.rejected, peers: m.peers }
        : null;
    case 'uploaded': {
      if (!isRound(m.round) || !isCount(m.bytes)) return null;
      if (m.pieces === undefined && m.piecesSignature === undefined) return { type: 'uploaded', round: m.round, bytes: m.bytes };
      return isHex(m.pieces, HASH_HEX) && isHex(m.piecesSignature, SIGNATURE_HEX) ? { type: 'uploaded', round: m.round, bytes: m.bytes, pieces: m.pieces, piecesSignature: m.piecesSignature } : null;
    }
    default:
      return null;
  }
}

/** Longest presigned URL accepted (S3's are ~600–1,200 characters). */
const MAX_URL_CHARS = 8192;

/** Longest list of addresses a message may carry: a pipelined round's members, a commit's entries. */
export const MAX_LISTED_PEERS = 4096;
const isAddrList = (v: unknown, max = MAX_LISTED_PEERS): v is string[] => Array.isArray(v) && v.length <= max && v.every((a) => isStr(a, 64));

/**
 * GET /commit/<round>: what a replica catching up needs of a closed round — the committed
 * entries and counts, O(K) bytes however many members the round had (the full record lists
 * every member and delivery time: ~230 KB at N = 1,000).
 */
export interface CommitView {
  round: number;
  included: CommitEntry[];
  /** Members of the round, updates stored, and members that delivered nothing. */
  members: number;
  delivered: number;
  missing: number;
  /** Per stage, the member asked to upload θ_start after this commit, and the consensus weights fingerprint after it (checkpoint-fetch.ts). */
  checkpointBy?: Record<string, string>;
  weightsAfter?: string;
  /** A pipelined run's consensus fingerprints, per stage (each stage's replicas hold other weights). */
  stageWeightsAfter?: Record<string, string>;
  /** Per tensor, the least clip bound of a commit of fewer than three updates (aggregate.ts); absent: none. */
  clipFloor?: number[];
}

/**
 * The weights fingerprint a commit names for the replicas of `stage`: the whole model's in a
 * run of one stage, the stage's own in a pipelined run (its stages hold different weights, so
 * one fingerprint for all would name one stage's and refuse every other's).
 */
export function weightsNamed(c: Pick<CommitView, 'weightsAfter' | 'stageWeightsAfter'>, stage: number, stages: number): string | undefined {
  return stages > 1 ? c.stageWeightsAfter?.[stage] : c.weightsAfter;
}

/** A CommitView of `round` as served, or null when malformed. */
export function parseCommitView(text: string, round: number): CommitView | null {
  const m = parseJson(text);
  if (!m || m.round !== round || !Array.isArray(m.included) || m.included.length > MAX_LISTED_PEERS || !m.included.every(isCommitEntry)) return null;
  if (!isCount(m.members) || !isCount(m.delivered) || !isCount(m.missing)) return null;
  if (m.clipFloor !== undefined && !isClipFloor(m.clipFloor)) return null;
  return { round, included: m.included, members: m.members, delivered: m.delivered, missing: m.missing, ...(m.clipFloor !== undefined ? { clipFloor: m.clipFloor } : {}) };
}

/** Most tensors a commit's clip floor may name (a model's parameter tensors number in the hundreds). */
const MAX_CLIP_FLOOR_TENSORS = 65536;
/** A commit's clip floor: per tensor, a finite norm ≥ 0. */
export function isClipFloor(x: unknown): x is number[] {
  return Array.isArray(x) && x.length <= MAX_CLIP_FLOOR_TENSORS && x.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0);
}

/** An entry of a commit: its sender, payload hash, stage, and (optional) piece root. */
export function isCommitEntry(e: unknown): e is CommitEntry {
  return isObj(e) && isStr(e.sender, 64) && isStr(e.hash, 128) && isStage(e.stage) && (e.pieces === undefined || isStr(e.pieces, 64)) && (e.bodyMd5 === undefined || isHex(e.bodyMd5, MD5_HEX));
}
/** Most ICE servers an 'ice' message may list. */
const MAX_ICE_SERVERS = 8;
const isUrls = (v: unknown): boolean => isStr(v, 512) || (Array.isArray(v) && v.length > 0 && v.length <= MAX_ICE_SERVERS && v.every((u) => isStr(u, 512)));
const isIceServer = (v: unknown): boolean =>
  isObj(v) && isUrls(v.urls) && (v.username === undefined || isStr(v.username, 512)) && (v.credential === undefined || isStr(v.credential, 512));

/** A coordinator's control message, or null when malformed. The run config is validated by the caller. */
export function parseServerMessage(text: string): ServerMessage | null {
  const m = parseJson(text);
  if (!m) return null;
  switch (m.type) {
    case 'challenge':
      return isStr(m.run, 64) && isStr(m.nonce, 128) && isNum(m.version) ? { type: 'challenge', run: m.run, nonce: m.nonce, version: m.version } : null;
    case 'welcome': {
      const s = m.state;
      if (!isStr(m.address, 64) || !isObj(m.config) || !isObj(s)) return null;
      if (!isRound(s.round) || (s.phase !== 'waiting' && s.phase !== 'training') || !isCount(s.memberCount) || !isNum(s.checkpointRound) || !isNum(s.oldestCommit)) return null;
      if (!isStage(m.stage)) return null;
      return { type: 'welcome', address: m.address, config: m.config as unknown as RunConfig, state: s as unknown as RunState, stage: m.stage };
    }
    case 'stage':
      return isStage(m.stage) && isStr(m.reason, 1024) ? { type: 'stage', stage: m.stage, reason: m.reason } : null;
    case 'ice': {
      const ok = Array.isArray(m.servers) && m.servers.length <= MAX_ICE_SERVERS && m.servers.every(isIceServer);
      return ok && isNum(m.expiresAt) ? { type: 'ice', servers: m.servers as IceServer[], expiresAt: m.expiresAt } : null;
    }
    case 'neighbours':
      return isAddrList(m.neighbours, 256) ? { type: 'neighbours', neighbours: m.neighbours } : null;
    case 'swarm':
      return isCount(m.peers) && isCount(m.ready) && isCount(m.need) ? { type: 'swarm', peers: m.peers, ready: m.ready, need: m.need } : null;
    case 'signal': {
      const data = parseSignalData(m.data);
      return isStr(m.from, 64) && data ? { type: 'signal', from: m.from, data } : null;
    }
    case 'round': {
      if (!isRound(m.round) || !isCount(m.memberCount) || !isAddrList(m.members) || !Array.isArray(m.stages) || m.stages.length !== m.members.length || !m.stages.every(isStage)) return null;
      return isNum(m.seed) && isNum(m.deadline) && isCount(m.tokensTrained)
        ? { type: 'round', round: m.round, memberCount: m.memberCount, members: m.members, stages: m.stages as number[], seed: m.seed, deadline: m.deadline, tokensTrained: m.tokensTrained }
        : null;
    }
    case 'commit': {
      const inc = m.included;
      if (!isRound(m.round) || !Array.isArray(inc) || inc.length > MAX_LISTED_PEERS || !inc.every(isCommitEntry)) return null;
      if (!(m.checkpointBy === null || isStr(m.checkpointBy, 64)) || !isCount(m.delivered)) return null;
      if (m.clipFloor !== undefined && !isClipFloor(m.clipFloor)) return null;
      return { type: 'commit', round: m.round, included: inc as CommitEntry[], delivered: m.delivered, checkpointBy: m.checkpointBy as string | null, ...(m.clipFloor !== undefined ? { clipFloor: m.clipFloor as number[] } : {}) };
    }
    case 'rejected':
      return isStr(m.what, 256) && isStr(m.reason, 1024) ? { type: 'rejected', what: m.what, reason: m.reason } : null;
    case 'accepted':
      return isRound(m.round) && isStr(m.hash, 128) ? { type: 'accepted', round: m.round, hash: m.hash } : null;
    case 'upload-url':
      return isRound(m.round) && isStr(m.url, MAX_URL_CHARS) && /^https?:\/\//.test(m.url) && isCount(m.validMs) ? { type: 'upload-url', round: m.round, url: m.url, validMs: m.validMs } : null;
    case 'scores': {
      const st = m.standing;
      if (!isRound(m.round) || !isObj(st) || !isStr(st.address, 64)) return null;
      const nums = ['ema', 'assignedEma', 'rank', 'of', 'share', 'epoch', 'epochReward', 'totalReward', 'lastRound'] as const;
      if (!nums.every((k) => isNum(st[k])) || !isCount(st.pendingRounds) || !(st.barred === undefined || typeof st.barred === 'boolean')) return null;
      if (!(['pendingReward', 'forfeitedReward'] as const).every((k) => st[k] === undefined || isNum(st[k]))) return null;
      return { type: 'scores', round: m.round, standing: st as unknown as Standing };
    }
    case 'error':
      return isStr(m.message, 4096) ? { type: 'error', message: m.message } : null;
    default:
      return null;
  }
}

