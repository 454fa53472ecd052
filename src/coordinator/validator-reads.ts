// The validator's reads of updates from the run's bucket. A bucket's intake takes updates in
// by their signed header alone (bucket-updates.ts), so the coordinator holds none of their
// bodies: before a round is scored, the validator reads exactly what it needs — the committed
// K and its secret sample — from the bucket, checks each against its signed payload hash, and
// keeps the good ones in the state folder where the (disk-reading) engine finds them. That is
// K + sample per round, not N.
//
// Without a bucket every update is on disk already and these are the record's own answers.
//
// An object whose body does not match its signed hash (or whose envelope does not open) is
// the author's doing (only the coordinator writes the final key, by a copy of the version
// whose signed header it read): it is not kept, and the caller scores it invalid (0, counted),
// as replicas skip it (store-read.ts). A committed object whose piece root is not the one its
// author signed (src/net/signed-root.ts) is the author's lie too: it is kept and applied (its
// payload is the signed one, as replicas apply it: store-read.ts) and scored invalid (0,
// counted `badRoots`): the lie sent every neighbour's gather of it to the bucket. An object
// the bucket no longer has is `missing`.
import { EnvelopeError, openEnvelope } from '../net/envelope.ts';
import { toHex } from '../base/hex.ts';
import { envelopeRoot } from '../net/pieces.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { CoordinatorStore } from './state-store.ts';
import type { RunRecord } from './run-record.ts';
import type { ClosedRound } from './validator.ts';

/** Why an update could not be read for the validator ('forged', 'missing'), or was read and is at fault ('root': applied, scored invalid). */
export type UnreadableReason = 'forged' | 'missing' | 'root';

/** What the reads need: the run's record, the disk the engine reads, and the bucket's whole read of a stored update (null: no bucket, the disk holds every update). */
export interface ValidatorReadsHost {
  readonly config: Pick<RunConfig, 'run' | 'maxMessageBytes'>;
  readonly record: Pick<RunRecord, 'commit' | 'closedRound' | 'commitPayloads'>;
  readonly disk: Pick<CoordinatorStore, 'hasUpdate' | 'saveUpdate'>;
  readonly read: ((round: number, sender: string) => Promise<Uint8Array | null>) | null;
  log(line: string): void;
}

export interface ValidatorReadCounts {
  /** Updates read from the bucket, their bytes, and those refused (forged) or gone (missing). */
  read: number;
  bytes: number;
  forged: number;
  missing: number;
  /** Committed updates whose body's piece root is not the one their author signed (kept, scored invalid). */
  badRoots: number;
}

export class ValidatorReads {
  readonly counts: ValidatorReadCounts = { read: 0, bytes: 0, forged: 0, missing: 0, badRoots: 0 };
  /** Updates found unreadable, by round, then sender (kept until the round is dropped). */
  private readonly unreadable = new Map<number, Map<string, UnreadableReason>>();

  constructor(private readonly h: ValidatorReadsHost) {}

  /**
   * Reads the updates of `entries` (sender and committed payload hash) of `round` that the
   * state folder does not hold yet; returns those that could not be read, with why.
   */
  private async fetch(round: number, entries: readonly { sender: string; hash: string; pieces?: string }[]): Promise<Map<string, UnreadableReason>> {
    const bad = this.unreadable.get(round) ?? new Map<string, UnreadableReason>();
    for (const e of entries) {
      if (bad.has(e.sender) || this.h.disk.hasUpdate(round, e.sender)) continue;
      const why = await this.readOne(round, e.sender, e.hash, e.pieces);
      if (why) bad.set(e.sender, why);
    }
    if (bad.size > 0) this.unreadable.set(round, bad);
    return new Map(bad);
  }

  /** Closed rounds on their way to the validator (after their committed updates are read). */
  private handovers: Promise<void> = Promise.resolve();

  /**
   * What the validator needs to score a closed round, rebuilt from the saved state (after a
   * restart, or when it fell behind): or why that is no longer possible.
   */
  closedRound(round: number): ReturnType<RunRecord['closedRound']> {
    return this.h.record.closedRound(round, this.unreadableIn(round));
  }

  /** Committed payloads of a round in commit order (a forged one as FORGED_PAYLOAD), or null when not all are stored. */
  commitPayloads(round: number): Uint8Array[] | null {
    return this.h.record.commitPayloads(round, this.unreadableIn(round));
  }

  /** closedRound, after reading the round's committed updates from the bucket (when there is one). */
  async readClosedRound(round: number): Promise<ReturnType<RunRecord['closedRound']>> {
    await this.committed(round);
    return this.closedRound(round);
  }

  /** commitPayloads, after reading them from the bucket (when there is one). */
  async readCommitPayloads(round: number): Promise<Uint8Array[] | null> {
    await this.committed(round);
    return this.commitPayloads(round);
  }

  /** A round closed: hands it to the validator once read, in the order rounds closed however long each one's reads take. */
  handOver(round: number, deliver: (c: ClosedRound) => void): void {
    const done = (c: ReturnType<RunRecord['closedRound']>) => (c.ok ? deliver(c.closed) : this.h.log(`validator: round ${round} cannot be handed over: ${c.reason}`));
    if (!this.h.read) return done(this.closedRound(round));
    this.handovers = this.handovers.then(() => this.readClosedRound(round)).then(done, (e: Error) => this.h.log(`validator: round ${round} cannot be handed over: ${e.message}`));
  }

  /** Reads the committed updates of a round not yet in the state folder. */
  private async committed(round: number): Promise<void> {
    const c = this.h.record.commit(round);
    if (c && this.h.read) await this.fetch(round, c.included);
  }

  /** Reads `senders` of a closed round from the bucket (the validator's sample); a forged one is counted invalid in `closed` (a committed one already is: RunRecord.closedRound). */
  async sample(closed: ClosedRound, senders: readonly string[]): Promise<void> {
    const c = this.h.record.commit(closed.round);
    if (!c || !this.h.read) return;
    const hashes = new Map([...(c.delivered ?? []), ...c.included].map((e) => [e.sender, e.hash]));
    const bad = await this.fetch(c.round, senders.filter((s) => hashes.has(s)).map((sender) => ({ sender, hash: hashes.get(sender)! })));
    for (const [sender, why] of bad) if (why === 'forged' && !closed.included.some((u) => u.sender === sender)) closed.invalid[sender] = Math.max(1, closed.invalid[sender] ?? 0);
  }

  /** What was found unreadable in `round` so far. */
  unreadableIn(round: number): Map<string, UnreadableReason> {
    return new Map(this.unreadable.get(round) ?? []);
  }

  /** Forgets rounds before `round`. */
  dropBefore(round: number): void {
    for (const r of [...this.unreadable.keys()]) if (r < round) this.unreadable.delete(r);
  }

  /** Reads one update from the bucket and checks it against its signed hash and (committed) its author's piece root. */
  private async readOne(round: number, sender: string, hash: string, pieces: string | undefined): Promise<UnreadableReason | null> {
    const bytes = await this.h.read!(round, sender);
    if (!bytes) {
      this.counts.missing++;
      this.h.log(`validator: the update of ${sender} in round ${round} is not in the bucket`);
      return 'missing';
    }
    this.counts.read++;
    this.counts.bytes += bytes.length;
    const { config } = this.h;
    try {
      const { header } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
      if (header.sender !== sender || header.round !== round || toHex(header.payloadHash) !== hash) throw new EnvelopeError('header', `the object is ${header.sender}'s update of round ${header.round} with payload ${toHex(header.payloadHash).slice(0, 12)}, not the one taken in`);
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      this.counts.forged++;
      this.h.log(`validator: the update of ${sender} in round ${round} in the bucket does not match its signed hash (${e.message}): scored invalid`);
      return 'forged';
    }
    this.h.disk.saveUpdate(round, sender, bytes);
    // One more blake2b pass, for the committed K only (the sample's entries name no root).
    if (pieces !== undefined && envelopeRoot(bytes) !== pieces) {
      this.counts.badRoots++;
      this.h.log(`validator: the update of ${sender} in round ${round} in the bucket does not have the piece root its author signed: applied, scored invalid`);
      return 'root';
    }
    return null;
  }
}
