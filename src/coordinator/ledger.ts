// The reward ledger: every scored round, each contributor's moving averages, and the reward
// each earned, in SQLite (better-sqlite3, one file beside the coordinator's state), written
// in one transaction per round so a crash never leaves half a round. It is the source of
// truth for rewards when no chain is configured, and survives coordinator restarts.
// The same transaction keeps what the validator must not forget at a restart: its bars (a
// sender whose evaluated update was harmful, invalid or a copy stays out of commits until a
// clean evaluation after its term clears it; bars do not expire) and the copy check's sketches of the last
// rounds (copy-history.ts), so a restart neither lets a barred attacker back in nor forgets
// what an update could be a replay of; each sender's offences, which set how long its next bar
// lasts (bar-terms.ts), kept after the bar lifts; and the norms the undersize check judges by (scoring.ts
// normReference). All move in step with the scored rounds. A round's reward is held in escrow
// (reward_escrow: pending, then earned or forfeited; escrow.ts) and reaches `rewards`, the
// earned total by epoch that chain weights are set from, only once its window has passed.
import Database from 'better-sqlite3';
import type { Standing } from '../protocol/messages.ts';
import type { OffenceRecord } from './bar-terms.ts';
import { earnedThrough, type EscrowVerdict } from './escrow.ts';

export type { Standing };

export interface RoundScore {
  address: string;
  /** Relative loss improvement on a random batch after a trial step with the update. */
  gradient: number;
  /** The same on the contributor's own assigned batch. */
  assigned: number;
  copied: boolean;
  missing: boolean;
  invalid: boolean;
  /** Its θ_start fingerprint matched the validator's. */
  synced: boolean;
  /** This round's score, before averaging. */
  score: number;
}

/** Why the validator bars a sender from commits, and since when (Ledger.bar). */
export interface Bar {
  /** The first round of the verdicts that bar it (later ones keep the bar, not this). */
  since: number;
  /** The latest round whose verdict barred it. */
  last: number;
  /** What that verdict found: harmful, invalid and/or copy. */
  reason: string;
}

/** One update's copy-check sketch (copy-history.ts), as the ledger keeps it. */
export interface StoredSketch {
  round: number;
  sender: string;
  /** Index elements the sketch summarises. */
  elements: number;
  sketch: Uint32Array;
}

/** What a scored round leaves besides its rows: the bars it decides and its copy sketches. */
export interface RoundVerdicts {
  /** A reason bars the sender (kept since its first round), null lifts its bar; absent senders keep theirs. */
  bars?: ReadonlyMap<string, string | null>;
  /** Senders whose offence record this round changes (an offence in it): the record replaces theirs. */
  offences?: ReadonlyMap<string, OffenceRecord>;
  /** The round's sketches, the hashes' seed, and the oldest round whose sketches stay kept. */
  sketches?: { seed: number; entries: readonly StoredSketch[]; keepFrom: number };
  /** Per-tensor norms of the round's helpful updates (the undersize check's reference), and the oldest round kept. */
  norms?: { entries: readonly (readonly [string, readonly number[]])[]; keepFrom: number };
  /** The escrow window and whose escrow the round forfeits (absent: every reward is earned at once). */
  escrow?: EscrowVerdict;
}

/** What became of a round's reward: held in escrow, earned, or forfeited (an invalid or copied update in the window). */
export type RewardState = 'pending' | 'earned' | 'forfeited';

export class Ledger {
  private readonly db: Database.Database;
  private readonly barOf: Database.Statement;
  private readonly offencesOf: Database.Statement;

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.createTables();
    } catch (e) {
      // A file that is not SQLite, or not this ledger: say which and what to do, rather than start without its bars.
      throw new Error(`the reward ledger ${file} cannot be opened (${(e as Error).message}): move it away to start a new ledger (its rewards, standings and bars are then forgotten)`, { cause: e });
    }
    this.barOf = this.db.prepare(`SELECT since_round AS since, last_round AS last, reason FROM bars WHERE address = ?`);
    this.offencesOf = this.db.prepare(`SELECT offences, last_offence AS lastOffence FROM offences WHERE address = ?`);
  }

  private createTables(): void {
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS round_scores (
        round INTEGER NOT NULL, address TEXT NOT NULL, gradient REAL, assigned REAL,
        copied INTEGER, missing INTEGER, invalid INTEGER, synced INTEGER, score REAL, ema REAL,
        share REAL, reward REAL, PRIMARY KEY (round, address));
      CREATE TABLE IF NOT EXISTS averages (
        address TEXT PRIMARY KEY, ema REAL NOT NULL, assigned_ema REAL NOT NULL, last_round INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS rewards (
        epoch INTEGER NOT NULL, address TEXT NOT NULL, reward REAL NOT NULL, PRIMARY KEY (epoch, address));
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS round_outcomes (
        round INTEGER PRIMARY KEY, outcome TEXT NOT NULL CHECK (outcome IN ('scored', 'skipped')), reason TEXT NOT NULL);
      INSERT OR IGNORE INTO round_outcomes SELECT DISTINCT round, 'scored', '' FROM round_scores;
      CREATE TABLE IF NOT EXISTS bars (
        address TEXT PRIMARY KEY, since_round INTEGER NOT NULL, last_round INTEGER NOT NULL, reason TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS offences (
        address TEXT PRIMARY KEY, offences INTEGER NOT NULL, last_offence INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS copy_sketches (
        round INTEGER NOT NULL, sender TEXT NOT NULL, seed INTEGER NOT NULL, elements INTEGER NOT NULL, sketch BLOB NOT NULL,
        PRIMARY KEY (round, sender));
      CREATE TABLE IF NOT EXISTS reward_escrow (
        round INTEGER NOT NULL, address TEXT NOT NULL, reward REAL NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'earned', 'forfeited')), settled_round INTEGER, probation INTEGER NOT NULL,
        PRIMARY KEY (round, address));
      CREATE INDEX IF NOT EXISTS reward_escrow_pending ON reward_escrow (state, round);
      CREATE TABLE IF NOT EXISTS helpful_norms (
        round INTEGER NOT NULL, sender TEXT NOT NULL, norms TEXT NOT NULL, PRIMARY KEY (round, sender));
    `);
  }

  /** Why the validator bars `address` from commits, or null when it does not. */
  bar(address: string): Bar | null {
    return (this.barOf.get(address) as Bar | undefined) ?? null;
  }

  /** A sender's offences so far (they set its next bar's term: bar-terms.ts), or null for none. */
  offenceRecord(address: string): OffenceRecord | null {
    return (this.offencesOf.get(address) as OffenceRecord | undefined) ?? null;
  }

  /** Every sender barred now, by address. */
  bars(): Map<string, Bar> {
    const rows = this.db.prepare(`SELECT address, since_round AS since, last_round AS last, reason FROM bars ORDER BY address`).all() as (Bar & { address: string })[];
    return new Map(rows.map(({ address, ...b }) => [address, b]));
  }

  /** The per-tensor norms of the last rounds' helpful updates (a row that is not a list of numbers is left out). */
  helpfulNorms(): number[][] {
    const rows = this.db.prepare(`SELECT norms FROM helpful_norms ORDER BY round, sender`).all() as { norms: string }[];
    return rows.map((r) => parseJson(r.norms)).filter((n): n is number[] => Array.isArray(n) && n.every((x) => typeof x === 'number'));
  }

  /** The copy sketches kept (the last rounds'), oldest round first, with the seed each was hashed with. */
  copySketches(): (StoredSketch & { seed: number })[] {
    const rows = this.db.prepare(`SELECT round, sender, seed, elements, sketch FROM copy_sketches ORDER BY round, sender`).all() as { round: number; sender: string; seed: number; elements: number; sketch: Buffer }[];
    // A copy, so the words are aligned (a Buffer from SQLite may start anywhere).
    return rows.map((r) => ({ ...r, sketch: new Uint32Array(new Uint8Array(r.sketch).buffer, 0, r.sketch.length >> 2) }));
  }

  /** Rounds scored so far (a round every member of which left is scored with no rows). */
  get scoredRounds(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM round_outcomes WHERE outcome = 'scored'`).get() as { n: number }).n;
  }

  /** How many rounds the validator could not score (skippedRounds' length). */
  get skippedCount(): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM round_outcomes WHERE outcome = 'skipped'`).get() as { n: number }).n;
  }

  /** Rounds the validator could not score, with why (their updates were gone, …). */
  skippedRounds(): { round: number; reason: string }[] {
    return this.db.prepare(`SELECT round, reason FROM round_outcomes WHERE outcome = 'skipped' ORDER BY round`).all() as { round: number; reason: string }[];
  }

  /**
   * Records that `round` will never be scored, and why: it pays nobody, and it is said so
   * (the status counts it, the log names it) rather than left to look pending for ever.
   */
  recordSkipped(round: number, reason: string): void {
    this.db.transaction(() => {
      this.db.prepare(`INSERT OR REPLACE INTO round_outcomes VALUES (?, 'skipped', ?)`).run(round, reason);
      this.db.prepare(`INSERT OR REPLACE INTO meta VALUES ('last_round', ?)`).run(String(Math.max(round, this.lastRound)));
    })();
  }

  /** The last round scored or skipped, or −1. */
  get lastRound(): number {
    const row = this.db.prepare(`SELECT value FROM meta WHERE key = 'last_round'`).get() as { value: string } | undefined;
    return row ? Number(row.value) : -1;
  }

  /** A contributor's moving averages after its last scored round; null before its first (scoring.ts starts it at the priors). */
  averages(address: string): { ema: number; assignedEma: number } | null {
    const row = this.db.prepare(`SELECT ema, assigned_ema FROM averages WHERE address = ?`).get(address) as { ema: number; assigned_ema: number } | undefined;
    return row ? { ema: row.ema, assignedEma: row.assigned_ema } : null;
  }

  /**
   * Records a scored round: scores, new averages, the round's slice of the epoch's emission (into
   * escrow), and its verdicts (bars, copy sketches, escrow forfeited); the escrow whose window
   * has passed is earned, in `epoch`.
   */
  recordRound(round: number, epoch: number, rows: (RoundScore & { ema: number; assignedEma: number; share: number; reward: number })[], verdicts: RoundVerdicts = {}): void {
    const insertScore = this.db.prepare(`INSERT OR REPLACE INTO round_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const upsertAvg = this.db.prepare(`INSERT INTO averages VALUES (?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET ema = excluded.ema, assigned_ema = excluded.assigned_ema, last_round = excluded.last_round`);
    const hold = this.db.prepare(`INSERT OR IGNORE INTO reward_escrow VALUES (?, ?, ?, 'pending', NULL, ?)`);
    const escrow = verdicts.escrow ?? { rounds: 0, forfeit: new Set<string>(), forfeitProbation: new Set<string>(), probation: new Set<string>() };
    const setMeta = this.db.prepare(`INSERT OR REPLACE INTO meta VALUES ('last_round', ?)`);
    const setOutcome = this.db.prepare(`INSERT OR REPLACE INTO round_outcomes VALUES (?, 'scored', '')`);
    this.db.transaction(() => {
      for (const r of rows) {
        insertScore.run(round, r.address, r.gradient, r.assigned, +r.copied, +r.missing, +r.invalid, +r.synced, r.score, r.ema, r.share, r.reward);
        upsertAvg.run(r.address, r.ema, r.assignedEma, round);
        if (r.reward > 0) hold.run(round, r.address, r.reward, +escrow.probation.has(r.address));
      }
      setMeta.run(String(round));
      setOutcome.run(round);
      this.keepVerdicts(round, verdicts);
      // After the bars: rounds on probation wait for their bar to lift.
      this.settleEscrow(round, epoch, escrow);
    })();
  }

  /**
   * Inside recordRound's transaction, after the bars: the escrow of who offended forfeited (all
   * of it, or its rounds on probation), then earned in `epoch`: rounds W old, and a member's
   * rounds on probation once it is not barred and the last of them is W old (escrow.ts).
   */
  private settleEscrow(round: number, epoch: number, e: EscrowVerdict): void {
    const forfeit = this.db.prepare(`UPDATE reward_escrow SET state = 'forfeited', settled_round = ? WHERE address = ? AND state = 'pending' AND probation >= ?`);
    for (const address of e.forfeit) forfeit.run(round, address, 0);
    for (const address of e.forfeitProbation) forfeit.run(round, address, 1);
    const through = earnedThrough(round, e.rounds);
    const due = this.db.prepare(`
      SELECT round, address, reward FROM reward_escrow WHERE state = 'pending' AND probation = 0 AND round <= ?
      UNION ALL
      SELECT round, address, reward FROM reward_escrow WHERE state = 'pending' AND probation = 1 AND address IN (
        SELECT address FROM reward_escrow WHERE state = 'pending' AND probation = 1 AND address NOT IN (SELECT address FROM bars) GROUP BY address HAVING MAX(round) <= ?)
      ORDER BY address, round`).all(through, through) as { round: number; address: string; reward: number }[];
    const addReward = this.db.prepare(`INSERT INTO rewards VALUES (?, ?, ?) ON CONFLICT(epoch, address) DO UPDATE SET reward = reward + excluded.reward`);
    const earn = this.db.prepare(`UPDATE reward_escrow SET state = 'earned', settled_round = ? WHERE round = ? AND address = ?`);
    for (const d of due) {
      addReward.run(epoch, d.address, d.reward);
      earn.run(round, d.round, d.address);
    }
  }

  /** Inside recordRound's transaction: bars set and lifted, offences counted, this round's sketches in, those too old out. */
  private keepVerdicts(round: number, v: RoundVerdicts): void {
    const setBar = this.db.prepare(`INSERT INTO bars VALUES (?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET last_round = excluded.last_round, reason = excluded.reason`);
    const lift = this.db.prepare(`DELETE FROM bars WHERE address = ?`);
    for (const [address, reason] of v.bars ?? []) {
      if (reason === null) lift.run(address);
      else setBar.run(address, round, round, reason);
    }
    const setOffences = this.db.prepare(`INSERT OR REPLACE INTO offences VALUES (?, ?, ?)`);
    for (const [address, o] of v.offences ?? []) setOffences.run(address, o.offences, o.lastOffence);
    if (v.norms) {
      this.db.prepare(`DELETE FROM helpful_norms WHERE round >= ? OR round < ?`).run(round, v.norms.keepFrom);
      const add = this.db.prepare(`INSERT OR REPLACE INTO helpful_norms VALUES (?, ?, ?)`);
      for (const [sender, norms] of v.norms.entries) add.run(round, sender, JSON.stringify(norms));
    }
    if (!v.sketches) return;
    // A round scored again (after a crash before its rows were kept) replaces its sketches.
    this.db.prepare(`DELETE FROM copy_sketches WHERE round >= ? OR round < ?`).run(round, v.sketches.keepFrom);
    const add = this.db.prepare(`INSERT OR REPLACE INTO copy_sketches VALUES (?, ?, ?, ?, ?)`);
    for (const e of v.sketches.entries) add.run(e.round, e.sender, v.sketches.seed, e.elements, Buffer.from(e.sketch.buffer, e.sketch.byteOffset, e.sketch.byteLength));
  }

  /**
   * Where `address` stands after the last round it was scored in (rank among that round's
   * members). `pendingRounds`: closed rounds not scored yet, which the caller knows (the
   * ledger does not see the coordinator's rounds).
   */
  standing(address: string, epoch: number, pendingRounds = 0): Standing | null {
    const last = this.db.prepare(`SELECT MAX(round) AS round FROM round_scores WHERE address = ?`).get(address) as { round: number | null };
    if (last.round === null) return null;
    const round = last.round;
    const peers = this.db.prepare(`SELECT address, ema, share FROM round_scores WHERE round = ? ORDER BY ema DESC, address`).all(round) as { address: string; ema: number; share: number }[];
    const me = peers.findIndex((p) => p.address === address);
    const avg = this.averages(address) ?? { ema: 0, assignedEma: 0 };
    const epochReward = (this.db.prepare(`SELECT reward FROM rewards WHERE epoch = ? AND address = ?`).get(epoch, address) as { reward: number } | undefined)?.reward ?? 0;
    const totalReward = (this.db.prepare(`SELECT COALESCE(SUM(reward), 0) AS total FROM rewards WHERE address = ?`).get(address) as { total: number }).total;
    const held = (state: RewardState) => (this.db.prepare(`SELECT COALESCE(SUM(reward), 0) AS total FROM reward_escrow WHERE address = ? AND state = ?`).get(address, state) as { total: number }).total;
    return { address, ema: avg.ema, assignedEma: avg.assignedEma, rank: me + 1, of: peers.length, share: peers[me].share, epoch, epochReward, totalReward, pendingReward: held('pending'), forfeitedReward: held('forfeited'), lastRound: round, pendingRounds };
  }

  /**
   * Per-round history of one contributor, newest last: `reward` is what the round credited,
   * `paid` what became of it (null: nothing credited; a round from before escrow was earned at once).
   */
  history(address: string, limit = 200): { round: number; score: number; ema: number; share: number; reward: number; paid: RewardState | null }[] {
    const rows = this.db.prepare(`SELECT s.round, s.score, s.ema, s.share, s.reward, e.state AS paid FROM round_scores s LEFT JOIN reward_escrow e ON e.round = s.round AND e.address = s.address WHERE s.address = ? ORDER BY s.round DESC LIMIT ?`).all(address, limit) as { round: number; score: number; ema: number; share: number; reward: number; paid: RewardState | null }[];
    return rows.map((r) => ({ ...r, paid: r.paid ?? (r.reward > 0 ? 'earned' : null) })).reverse();
  }

  /** Rewards of one epoch, by address. */
  epochRewards(epoch: number): Record<string, number> {
    const rows = this.db.prepare(`SELECT address, reward FROM rewards WHERE epoch = ?`).all(epoch) as { address: string; reward: number }[];
    return Object.fromEntries(rows.map((r) => [r.address, r.reward]));
  }

  close(): void {
    this.db.close();
  }
}

/** The value of a JSON text, or null when it is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
