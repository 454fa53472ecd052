// The validator's queue and its pacing: which closed round it scores next, how many of that
// round's updates it evaluates, and which closed rounds it holds in memory. Pure (a clock is
// passed in), so it is tested with a fake one; startValidation (src/cli) drives it.
//
// Rounds are scored strictly in order (the validator's replica applies each round's commit
// after scoring it). At most VALIDATOR_QUEUE_BOUND closed rounds wait in memory with their
// updates; a round that closes while the bound is full is not held: it stays in the
// coordinator's saved state (kept until the validator decides it), is counted as not scored
// (Standing.pendingRounds, the status, the stop message) and is read back from the state
// when its turn comes. Nothing is skipped silently: the caller logs the reason this returns.
//
// Pacing: each round's sample is sized from two measured figures (the fixed cost of a round
// and the cost of one evaluated update) and how far behind the validator is, so that the
// rounds waiting, this one included, are expected to be scored before the next round closes
// (with PACE_SHARE of the time, the rest a margin).
// Every plan also carries that share of time as a budget the engine keeps to (it starts no
// trial that would not end within it, the first one's time guessed from the base
// evaluations'): so the first round, before anything is measured, is cut by the time its
// first trials take — its expected close interval being the round's own duration (start to
// close: the next round needs at least as long) — and a machine slower than measured is
// caught in the round itself.
// A sample smaller than the configured one comes with a note saying so. A round scored blind
// whose budget let no trial start leaves nothing measured, and the next would be as blind
// (a slow first base evaluation — kernels compiling — did this to every round of a small
// run): so once a blind round evaluated none, the next evaluates one past its budget, to measure.
// Likewise a validator slower than the rounds (one update takes longer than a round's budget)
// would evaluate none in every round and pay nobody: the time the rounds that evaluated none
// left unused is saved, and once it covers one update, one is evaluated (that round may end
// after the next close; the following ones, evaluating none, catch up). On average it keeps
// to the pace, and it still pays, at a lower sampling rate.
//
// Restore: the measured figures (snapshot()) are kept in the state folder; a restarted
// validator starts from them (QueueOptions.restored), so its backlog is paced from the start.

/** Closed rounds held in memory (their updates) while waiting to be scored. */
export const VALIDATOR_QUEUE_BOUND = 2;
/** Weight of the old value in the measured times' moving averages: a loaded machine changes quickly. */
export const TIMING_KEEP = 0.5;
/**
 * The share of the expected time to the next close that scoring plans to use: intervals vary
 * (training time, syncing, a loaded machine), and a round finished just after the next close
 * is a lag of two, so it aims to finish with a fifth of the interval to spare.
 */
export const PACE_SHARE = 0.8;

/** What scoring one round took, measured by whoever scored it. */
export interface ScoringTiming {
  /** Everything but the evaluated updates: base losses, fingerprint, the copy check, the commit. */
  fixedMs: number;
  /** Mean time of one evaluated update (its trial step and evaluations). */
  perUpdateMs: number;
  /** Updates evaluated (perUpdateMs means nothing when 0). */
  evaluated: number;
  /** Updates of the plan not evaluated because the time budget ran out (none when absent). */
  outOfTime?: number;
}

/** What the queue has measured, kept across restarts (JSON). */
export interface PacingSnapshot {
  /** The time between two round closes. */
  intervalMs: number;
  fixedMs: number;
  perUpdateMs: number | null;
}

export interface SamplePlan {
  round: number;
  /** Updates to evaluate. */
  evaluate: number;
  /** The sample the configuration asks for. */
  of: number;
  /** Closed rounds waiting after this one. */
  behind: number;
  /** The time this round may take (its share of the time until the next close): the engine stops starting trials past it. */
  budgetMs: number;
  /** The expected time until the next round closes, when planned. */
  untilNextMs: number;
  /** Whether the sample was sized from measured times (else only the budget cuts it). */
  measured: boolean;
  /** One update evaluated past the budget because nothing has been measured yet (no budget then). */
  measuring?: true;
  /** Why the sample is smaller than configured (a log line), or null when it is not. */
  note: string | null;
}

export interface QueueOptions {
  /** The first round to score (the ledger's last decided round + 1). */
  next: number;
  /** The expected time between two round closes until one is measured (the round's deadline). */
  roundMs: number;
  now: () => number;
  bound?: number;
  /** What an earlier run of the validator measured (snapshot()); null or absent: nothing yet. */
  restored?: PacingSnapshot | null;
  /** Every round evaluates the configured sample, whatever it takes (no budget; the lag may grow). */
  unpaced?: boolean;
}

/** A saved snapshot, checked: null (start unmeasured) when it is not one. */
export function parsePacing(value: unknown): PacingSnapshot | null {
  const v = value as Partial<PacingSnapshot> | null;
  const ms = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (!v || typeof v !== 'object' || !ms(v.intervalMs) || v.intervalMs === 0 || !ms(v.fixedMs)) return null;
  if (v.perUpdateMs !== null && !ms(v.perUpdateMs)) return null;
  return { intervalMs: v.intervalMs!, fixedMs: v.fixedMs!, perUpdateMs: v.perUpdateMs ?? null };
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export class ValidatorQueue<T> {
  private readonly held = new Map<number, T>();
  private readonly bound: number;
  private readonly now: () => number;
  private next: number;
  private closedThrough: number;
  private scoring: number | null = null;
  /** The last live close (round, time); null until one is seen. */
  private lastClose: { round: number; at: number } | null = null;
  private intervalMs: number;
  private intervalMeasured = false;
  private timing: { fixedMs: number; perUpdateMs: number | null } | null = null;
  /** Rounds decided with no update time measured and none evaluated (their budget let none start). */
  private blindRounds = 0;
  /** Budget the rounds since the last evaluated update left unused (they evaluated none), ms. */
  private savedMs = 0;
  /** The plan of the round in hand (what done() measures against). */
  private lastPlan: SamplePlan | null = null;
  private readonly unpaced: boolean;

  constructor(o: QueueOptions) {
    this.bound = o.bound ?? VALIDATOR_QUEUE_BOUND;
    if (!Number.isInteger(this.bound) || this.bound < 1) throw new RangeError(`the queue bound must be a positive integer, got ${this.bound}`);
    this.now = o.now;
    this.next = o.next;
    this.closedThrough = o.next - 1;
    this.intervalMs = o.roundMs;
    this.unpaced = o.unpaced ?? false;
    const r = o.restored ? parsePacing(o.restored) : null;
    if (r) {
      this.intervalMs = r.intervalMs;
      this.intervalMeasured = true;
      this.timing = { fixedMs: r.fixedMs, perUpdateMs: r.perUpdateMs };
    }
  }

  /** What was measured so far, to keep (restored by the next start); null before anything was. */
  snapshot(): PacingSnapshot | null {
    if (!this.timing && !this.intervalMeasured) return null;
    return { intervalMs: this.intervalMs, fixedMs: this.timing?.fixedMs ?? 0, perUpdateMs: this.timing?.perUpdateMs ?? null };
  }

  /** Closed rounds not decided yet (scored or recorded as skipped), the one in hand included. */
  get pending(): number {
    return Math.max(0, this.closedThrough - this.next + 1);
  }

  /** Rounds whose updates are held in memory. */
  get heldRounds(): number[] {
    return [...this.held.keys()];
  }

  /** The round being scored, or null. */
  get inHand(): number | null {
    return this.scoring;
  }

  /** The expected time between round closes (measured once two consecutive closes are seen). */
  get roundIntervalMs(): number {
    return this.intervalMs;
  }

  /** Rounds up to `round` closed before this validator started (read from the saved state in turn). */
  backlog(round: number): void {
    this.closedThrough = Math.max(this.closedThrough, round);
  }

  /**
   * A round closed now: held in memory while fewer than the bound wait, else left in the saved
   * state, with the reason to log. A round already decided is neither. `startedAt`: when the
   * round started; until two consecutive closes are seen, its duration stands for the time to
   * the next close (a lower bound: the next round trains as long, after the sync between).
   */
  closed(round: number, item: T, startedAt?: number): { held: true } | { held: false; reason: string } {
    const at = this.now();
    if (this.lastClose && round === this.lastClose.round + 1) {
      const gap = at - this.lastClose.at;
      this.intervalMs = this.intervalMeasured ? TIMING_KEEP * this.intervalMs + (1 - TIMING_KEEP) * gap : gap;
      this.intervalMeasured = true;
    } else if (!this.intervalMeasured && startedAt !== undefined && startedAt < at) {
      this.intervalMs = Math.min(this.intervalMs, at - startedAt);
    }
    this.lastClose = { round, at };
    if (round < this.next) return { held: false, reason: `round ${round} is already decided` };
    this.closedThrough = Math.max(this.closedThrough, round);
    if (round === this.scoring) return { held: false, reason: `round ${round} is being scored` };
    if (this.held.size >= this.bound) {
      return {
        held: false,
        reason: `${plural(this.held.size, 'closed round')} already wait in memory (the bound is ${this.bound}): round ${round} stays in the saved state, counted as not scored, and is read back when the validator reaches it`,
      };
    }
    this.held.set(round, item);
    return { held: true };
  }

  /** The next round to score, with its updates when held (else the caller reads them back); null when busy or none waits. */
  take(): { round: number; item: T | null } | null {
    if (this.scoring !== null || this.next > this.closedThrough) return null;
    const round = this.next;
    const item = this.held.get(round) ?? null;
    this.held.delete(round);
    this.scoring = round;
    return { round, item };
  }

  /**
   * How many of the round in hand's updates to evaluate, `full` being what the configuration
   * asks, and the time it may take: the time until the next close shared by the rounds
   * waiting (this one included). Before a round has been measured, the configured sample and
   * only the budget cuts it; after, as many as fit in the budget — at least one while one
   * still ends before the next close, else none (the copy, deadline and sync checks only):
   * a round scored after the next close is a lag of two.
   */
  plan(full: number): SamplePlan {
    const round = this.scoring;
    if (round === null) throw new Error('plan() needs a round in hand: call take() first');
    return (this.lastPlan = this.planFor(round, full));
  }

  private planFor(round: number, full: number): SamplePlan {
    const behind = Math.max(0, this.closedThrough - round);
    const untilNextMs = this.lastClose ? Math.max(0, this.lastClose.at + this.intervalMs - this.now()) : this.intervalMs;
    const budgetMs = (PACE_SHARE * untilNextMs) / (behind + 1);
    const base = { round, of: full, behind, budgetMs, untilNextMs };
    const t = this.timing;
    if ((!t || t.perUpdateMs === null) && full > 0 && this.blindRounds > 0) {
      const note = `round ${round}: scored 1 of ${full} updates (no scoring time measured yet and the last round's budget let none start: one is evaluated, whatever it takes, to measure it)`;
      return { ...base, evaluate: 1, budgetMs: Infinity, measured: false, measuring: true, note: full === 1 ? null : note };
    }
    if (this.unpaced) return { ...base, evaluate: full, budgetMs: Infinity, measured: false, note: null };
    if (!t || t.perUpdateMs === null || full === 0) return { ...base, evaluate: full, measured: false, note: null };
    const per = Math.max(t.perUpdateMs, 1e-3);
    const fits = Math.floor((budgetMs - t.fixedMs) / per);
    // One more than the budget allows only while one still ends before the next close (the margin spent).
    const fitsBeforeClose = Math.floor((untilNextMs / (behind + 1) - t.fixedMs) / per);
    const evaluate = Math.min(full, Math.max(0, fits, Math.min(1, fitsBeforeClose)));
    if (evaluate === 0 && this.savedMs + Math.max(0, budgetMs - t.fixedMs) >= per) {
      const note = `round ${round}: scored 1 of ${full} updates (an update takes ~${seconds(t.perUpdateMs)} to score, more than a round leaves: this one is scored on the ~${seconds(this.savedMs)} the last rounds left unused, and may end after the next close)`;
      return { ...base, evaluate: 1, budgetMs: Infinity, measured: true, note };
    }
    if (evaluate >= full) return { ...base, evaluate: full, measured: true, note: null };
    const note = `round ${round}: scored ${evaluate} of ${full} updates (behind by ${plural(behind, 'round')}; an update takes ~${seconds(t.perUpdateMs)} to score and the rest of a round ~${seconds(t.fixedMs)}; the next round closes in ~${seconds(untilNextMs)})`;
    return { ...base, evaluate, measured: true, note };
  }

  /** The line to log for a scored round: the plan's note, or why the budget cut it shorter than planned. */
  noteFor(plan: SamplePlan, timing: ScoringTiming): string | null {
    const cut = timing.outOfTime ?? 0;
    if (cut === 0) return plan.note;
    const why = plan.measured ? 'scoring ran slower than measured' : 'no scoring time measured yet';
    return `round ${plan.round}: scored ${timing.evaluated} of ${plan.of} updates (${why}: its time budget of ~${seconds(plan.budgetMs)} ran out with ${plural(cut, 'planned update')} left; behind by ${plural(plan.behind, 'round')}; the next round was expected to close in ~${seconds(plan.untilNextMs)})`;
  }

  /** The round in hand is decided (scored, with what it took; or recorded as skipped, without). */
  done(round: number, timing?: ScoringTiming): void {
    if (round !== this.scoring) throw new Error(`round ${round} is not the one in hand (${this.scoring})`);
    this.scoring = null;
    this.next = round + 1;
    const plan = this.lastPlan;
    this.lastPlan = null;
    if (!timing) return;
    if (timing.evaluated === 0 && (this.timing?.perUpdateMs ?? null) === null) this.blindRounds++;
    if (timing.evaluated > 0) this.savedMs = 0;
    else if (plan && Number.isFinite(plan.budgetMs)) this.savedMs += Math.max(0, plan.budgetMs - timing.fixedMs);
    const keep = (old: number | null | undefined, now: number) => (old === null || old === undefined ? now : TIMING_KEEP * old + (1 - TIMING_KEEP) * now);
    this.timing = {
      fixedMs: keep(this.timing?.fixedMs, timing.fixedMs),
      perUpdateMs: timing.evaluated > 0 ? keep(this.timing?.perUpdateMs, timing.perUpdateMs) : (this.timing?.perUpdateMs ?? null),
    };
  }
}
