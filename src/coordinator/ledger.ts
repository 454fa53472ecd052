// The reward ledger: every scored round, each contributor's moving averages, and the reward
// each earned, in SQLite (better-sqlite3, one file beside the coordinator's state), written
// in one transaction per round so a crash never leaves half a round. It is the source of
// truth for rewards when no chain is configured, and survives coordinator restarts.
import Database from 'better-sqlite3';
import type { Standing } from '../protocol/messages.ts';

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

export class Ledger {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
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
    `);
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

  /** Records a scored round: scores, new averages, and the round's slice of the epoch's emission. */
  recordRound(round: number, epoch: number, rows: (RoundScore & { ema: number; assignedEma: number; share: number; reward: number })[]): void {
    const insertScore = this.db.prepare(`INSERT OR REPLACE INTO round_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const upsertAvg = this.db.prepare(`INSERT INTO averages VALUES (?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET ema = excluded.ema, assigned_ema = excluded.assigned_ema, last_round = excluded.last_round`);
    const addReward = this.db.prepare(`INSERT INTO rewards VALUES (?, ?, ?) ON CONFLICT(epoch, address) DO UPDATE SET reward = reward + excluded.reward`);
    const setMeta = this.db.prepare(`INSERT OR REPLACE INTO meta VALUES ('last_round', ?)`);
    const setOutcome = this.db.prepare(`INSERT OR REPLACE INTO round_outcomes VALUES (?, 'scored', '')`);
    this.db.transaction(() => {
      for (const r of rows) {
        insertScore.run(round, r.address, r.gradient, r.assigned, +r.copied, +r.missing, +r.invalid, +r.synced, r.score, r.ema, r.share, r.reward);
        upsertAvg.run(r.address, r.ema, r.assignedEma, round);
        if (r.reward > 0) addReward.run(epoch, r.address, r.reward);
      }
      setMeta.run(String(round));
      setOutcome.run(round);
    })();
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
    return { address, ema: avg.ema, assignedEma: avg.assignedEma, rank: me + 1, of: peers.length, share: peers[me].share, epoch, epochReward, totalReward, lastRound: round, pendingRounds };
  }

  /** Per-round history of one contributor, newest last. */
  history(address: string, limit = 200): { round: number; score: number; ema: number; share: number; reward: number }[] {
    return (this.db.prepare(`SELECT round, score, ema, share, reward FROM round_scores WHERE address = ? ORDER BY round DESC LIMIT ?`).all(address, limit) as { round: number; score: number; ema: number; share: number; reward: number }[]).reverse();
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
