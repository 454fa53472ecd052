// The run's checkpoints: who is asked to upload, what is accepted, what is served.
//
// Every `checkpointEvery` rounds a commit asks one member per stage to upload θ_start of the
// next round (checkpointAsks). The asked uploader sends a signed manifest (its pieces'
// hashes and the weights fingerprint), then the pieces (checkpoint-routes.ts; each request
// signed, checked before any body is read) — to the coordinator, or with a bucket store to
// presigned URLs the manifest's answer names (checkpoint-bucket-pieces.ts). Once every piece is stored and the commit's
// consensus fingerprint is known (a strict majority of the commit's members reported holding
// it in `synced`), the pieces are read back once and checked (checkpoint-verify.ts; a bucket
// piece's SHA-256 too, which its take-in did not read): only a
// checkpoint whose weights fingerprint is the manifest's and the commit's replaces the
// stage's checkpoint. Anything else is refused, counted, and its pieces removed.
import { manifestProblem, pieceLength, type CheckpointManifest, type SignedManifest } from '../protocol/checkpoint-manifest.ts';
import { weightsNamed, type CommitEntry } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { CheckpointPieces, PutResult } from './checkpoint-pieces.ts';
import { verifyCheckpointPieces, type VerifyResult } from './checkpoint-verify.ts';
import type { CommitRecord, PersistedState } from './state-store.ts';

/** Checkpoint uploads the coordinator reads at once; more are told to retry (503) unread. */
export const MAX_CONCURRENT_CHECKPOINT_UPLOADS = 2;

/**
 * Who uploads θ_start(round + 1) after the commit of `round`, by stage, or null: nobody.
 * Stage 0's is the config's `checkpointUploader` when it is committed, else it rotates over
 * the committed stage-0 members (so the upload is the run's, not one volunteer's every time);
 * another stage's is its first committed member (what contributors compute, checkpoint-upload.ts).
 */
export function checkpointAsks(config: RunConfig, round: number, included: readonly CommitEntry[]): Record<string, string> | null {
  if (included.length === 0 || (round + 1) % config.checkpointEvery !== 0) return null;
  const asks: Record<string, string> = {};
  for (let stage = 0; stage < config.stages; stage++) {
    const of = included.filter((e) => (e.stage ?? 0) === stage);
    if (of.length === 0) continue;
    const turn = Math.floor(round / config.checkpointEvery) % of.length;
    asks[stage] = stage === 0 ? (of.some((e) => e.sender === config.checkpointUploader) ? config.checkpointUploader : of[turn].sender) : of[0].sender;
  }
  return asks;
}

export interface IntakeDeps {
  config: RunConfig;
  state: PersistedState;
  pieces: CheckpointPieces;
  save(): void;
  log(line: string): void;
  /** Counts a refusal by reason (the coordinator's `rejected`). */
  count(what: string): void;
}

export type IntakeResult = { ok: true; status: number; body: Record<string, unknown> } | { ok: false; status: number; reason: string; what: string };

const refuse = (status: number, what: string, reason: string): IntakeResult => ({ ok: false, status, reason, what });

export class CheckpointIntake {
  private readonly pending = new Map<number, SignedManifest>();
  private readonly finishing = new Set<number>();
  private uploads = 0;

  constructor(private readonly d: IntakeDeps) {}

  /** The round of a stage's accepted checkpoint, −1 when none. */
  roundOf(stage: number): number {
    return stage === 0 ? this.d.state.checkpointRound : (this.d.state.stageCheckpoints?.[stage] ?? -1);
  }

  /** The latest ask of `stage` not yet fulfilled: θ_start of `round`, by `by`. */
  asked(stage: number): { round: number; by: string; commit: CommitRecord } | null {
    for (let i = this.d.state.commits.length - 1; i >= 0; i--) {
      const c = this.d.state.commits[i];
      const by = c.checkpointBy?.[stage];
      if (by) return c.round + 1 > this.roundOf(stage) ? { round: c.round + 1, by, commit: c } : null;
    }
    return null;
  }

  /** The stage `address` is asked to upload now, or null: only an asked uploader's request body is ever read. */
  stageAskedOf(address: string): number | null {
    for (let stage = 0; stage < this.d.config.stages; stage++) if (this.asked(stage)?.by === address) return stage;
    return null;
  }

  /** Stored and known to be the bytes its name hashes to (an unchecked bucket piece may be sent again). */
  stored(hash: string): boolean {
    return this.d.pieces.has(hash) && !this.d.pieces.unchecked(hash);
  }

  /** A slot to read one upload's body; false: too many at once (answer 503, read nothing). */
  beginUpload(): boolean {
    if (this.uploads >= MAX_CONCURRENT_CHECKPOINT_UPLOADS) return false;
    this.uploads++;
    return true;
  }

  endUpload(): void {
    this.uploads--;
  }

  /**
   * A signed manifest from `signer` (already authenticated as the asked uploader of `stage`).
   * Answers the pieces still missing and, with a bucket, a presigned PUT for each of them.
   */
  async acceptManifest(signer: string, stage: number, body: unknown): Promise<IntakeResult> {
    const problem = manifestProblem(body, this.d.config);
    if (problem) return this.refused(refuse(400, 'checkpoint-manifest', problem));
    const s = body as SignedManifest;
    const m = s.manifest;
    const ask = this.asked(stage);
    if (!ask || m.uploader !== signer || ask.by !== signer || m.stage !== stage) return this.refused(refuse(403, 'checkpoint-not-asked', `${m.uploader} was not asked to upload stage ${m.stage}'s checkpoint`));
    if (m.round !== ask.round) return this.refused(refuse(409, 'checkpoint-round', `asked for θ_start of round ${ask.round}, not ${m.round}`));
    const consensus = weightsNamed(ask.commit, stage, this.d.config.stages);
    if (consensus && consensus !== m.weights) return this.refused(refuse(409, 'checkpoint-weights', `the manifest names weights ${m.weights.slice(0, 12)}…, the commit of round ${ask.commit.round} names ${consensus.slice(0, 12)}…`));
    this.pending.set(stage, s);
    const missing = [...new Set(m.pieces.filter((h) => !this.stored(h)))];
    void this.tryFinish(stage);
    const urls = await Promise.all(missing.map((h) => this.d.pieces.uploadUrl(h).catch(() => null)));
    const uploadUrls = Object.fromEntries(missing.flatMap((h, i) => (urls[i] ? [[h, urls[i]]] : [])));
    return { ok: true, status: 200, body: { round: m.round, missing, ...(Object.keys(uploadUrls).length ? { uploadUrls } : {}) } };
  }

  /** A piece of the pending manifest of `stage`: its expected length, or null when it is not one. */
  pieceLengthOf(stage: number, hash: string): number | null {
    const m = this.pending.get(stage)?.manifest;
    const i = m ? m.pieces.indexOf(hash) : -1;
    return m && i >= 0 ? pieceLength(m, i) : null;
  }

  /** Stores a piece of the pending manifest (streamed: never held whole). */
  async acceptPiece(stage: number, hash: string, body: AsyncIterable<Uint8Array>): Promise<IntakeResult> {
    const length = this.pieceLengthOf(stage, hash);
    if (length === null) return this.refused(refuse(409, 'checkpoint-piece-unknown', `piece ${hash.slice(0, 12)}… is not in your pending manifest: PUT the manifest first`));
    if (!this.stored(hash)) {
      const r: PutResult = await this.d.pieces.put(hash, length, body);
      if (!r.ok) return this.refused(refuse(r.status, r.what, r.reason));
    }
    void this.tryFinish(stage);
    return { ok: true, status: 200, body: { stored: hash } };
  }

  /** The uploader put a piece of the pending manifest at its presigned URL: take it in from the bucket. */
  async acceptUploaded(stage: number, hash: string): Promise<IntakeResult> {
    const length = this.pieceLengthOf(stage, hash);
    if (length === null) return this.refused(refuse(409, 'checkpoint-piece-unknown', `piece ${hash.slice(0, 12)}… is not in your pending manifest: PUT the manifest first`));
    if (!this.stored(hash)) {
      const r = await this.d.pieces.takeIn(hash, length);
      if (!r.ok) return this.refused(refuse(r.status, r.what, r.reason));
    }
    void this.tryFinish(stage);
    return { ok: true, status: 200, body: { stored: hash } };
  }

  /**
   * A member reported holding θ_start(round): the commit before it may now have its consensus,
   * what a majority of its members reported; in a pipelined run, per stage, of the stage's
   * replicas that delivered in it (the stages hold different weights).
   */
  noteSynced(round: number): void {
    const c = this.d.state.commits.find((x) => x.round === round - 1);
    if (!c) return;
    const reports = this.d.state.reports[round] ?? {};
    const majority = (voters: readonly string[], of: number): string | undefined => {
      const votes = new Map<string, number>();
      for (const a of voters) {
        const h = reports[a]?.weightsHash;
        if (h) votes.set(h, (votes.get(h) ?? 0) + 1);
      }
      for (const [h, n] of votes) if (2 * n > of) return h;
      return undefined;
    };
    let found = false;
    if (this.d.config.stages === 1) {
      if (c.weightsAfter) return;
      const h = majority(c.members, c.members.length);
      if (h) {
        c.weightsAfter = h;
        found = true;
      }
    } else {
      for (let stage = 0; stage < this.d.config.stages; stage++) {
        if (c.stageWeightsAfter?.[stage]) continue;
        // An older record without the delivered list: its committed entries.
        const replicas = (c.delivered ?? c.included).filter((e) => e.stage === stage).map((e) => e.sender);
        const h = majority(replicas.filter((a) => reports[a]?.stage === stage), replicas.length);
        if (h) {
          (c.stageWeightsAfter ??= {})[stage] = h;
          found = true;
        }
      }
    }
    if (!found) return;
    this.d.save();
    for (const stage of this.pending.keys()) void this.tryFinish(stage);
  }

  /** Checks and installs a stage's pending checkpoint once all its pieces and the consensus are in. */
  async tryFinish(stage: number): Promise<void> {
    const s = this.pending.get(stage);
    if (!s || this.finishing.has(stage)) return;
    const m = s.manifest;
    const ask = this.asked(stage);
    const consensus = ask?.round === m.round ? weightsNamed(ask.commit, stage, this.d.config.stages) : undefined;
    if (!consensus || !m.pieces.every((h) => this.d.pieces.has(h))) return;
    this.finishing.add(stage);
    try {
      const fail = (what: string, reason: string) => {
        this.pending.delete(stage);
        this.refused(refuse(409, what, reason));
        this.d.log(`checkpoint of round ${m.round} (stage ${stage}) from ${m.uploader} refused: ${reason}`);
        this.prune();
      };
      if (consensus !== m.weights) return fail('checkpoint-weights', `its manifest names weights ${m.weights.slice(0, 12)}…, the commit names ${consensus.slice(0, 12)}…`);
      // A bucket that fails the read-back refuses this upload (the asked uploader may send it again).
      const v: VerifyResult = await verifyCheckpointPieces(this.d.pieces, m, this.d.config).catch((e: unknown) => ({ ok: false as const, reason: `its pieces could not be read back: ${(e as Error).message}` }));
      if (this.pending.get(stage) !== s) return; // replaced meanwhile
      if (!v.ok) return fail(v.what ?? 'checkpoint-invalid', v.reason);
      this.d.pieces.markChecked(m.pieces);
      if (v.fingerprint !== consensus) return fail('checkpoint-weights', `its pieces hold weights ${v.fingerprint.slice(0, 12)}…, the commit names ${consensus.slice(0, 12)}…`);
      this.pending.delete(stage);
      this.d.state.checkpointManifests = { ...this.d.state.checkpointManifests, [stage]: s };
      if (stage === 0) this.d.state.checkpointRound = m.round;
      else this.d.state.stageCheckpoints = { ...this.d.state.stageCheckpoints, [stage]: m.round };
      this.d.save();
      this.prune();
      await this.d.pieces.keepManifest(stage, s);
      this.d.log(`checkpoint of round ${m.round}${this.d.config.stages > 1 ? ` (stage ${stage})` : ''} from ${m.uploader}: ${m.pieces.length} piece(s), ${m.totalBytes} bytes, weights ${m.weights.slice(0, 12)}…`);
    } finally {
      this.finishing.delete(stage);
    }
  }

  /** A stage's accepted checkpoint (its signed manifest), or null; null too when the store lost a piece of it (a move to a bucket that found it nowhere). */
  manifest(stage: number): SignedManifest | null {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.d.config.stages || this.roundOf(stage) < 0) return null;
    const s = this.d.state.checkpointManifests?.[stage] ?? null;
    return s && s.manifest.pieces.every((h) => this.d.pieces.has(h)) ? s : null;
  }

  /** Whether `hash` is a piece of an accepted checkpoint (only those are served). */
  serves(hash: string): boolean {
    return Object.values(this.d.state.checkpointManifests ?? {}).some((s) => s.manifest.pieces.includes(hash));
  }

  /** Removes stored pieces no accepted or pending manifest names. */
  private prune(): void {
    const keep = new Set<string>();
    for (const s of [...Object.values(this.d.state.checkpointManifests ?? {}), ...this.pending.values()]) for (const h of s.manifest.pieces) keep.add(h);
    for (const h of this.d.pieces.list()) if (!keep.has(h)) this.d.pieces.remove(h);
  }

  private refused(r: IntakeResult): IntakeResult {
    if (!r.ok) this.d.count(r.what);
    return r;
  }

  /** A stage's accepted checkpoint file, assembled from its pieces (the validator's weights at start), or null. */
  async readCheckpoint(stage: number): Promise<{ round: number; bytes: Uint8Array } | null> {
    const m: CheckpointManifest | undefined = this.manifest(stage)?.manifest;
    if (!m) return null;
    const bytes = new Uint8Array(m.totalBytes);
    let at = 0;
    for (const h of m.pieces) {
      for await (const chunk of this.d.pieces.read(h)) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
    }
    return at === m.totalBytes ? { round: m.round, bytes } : null;
  }
}
