// The validator's bounded queue and pacing (src/coordinator/validator-queue.ts) on a fake
// clock: rounds in order, at most the bound held in memory (the rest said so and read back),
// and samples sized from the measured times and the lag so scoring keeps up with the rounds.
import { describe, expect, it } from 'vitest';
import { PACE_SHARE, VALIDATOR_QUEUE_BOUND, ValidatorQueue, parsePacing } from '../../src/coordinator/validator-queue.ts';
import { Clock } from './helpers.ts';

const ROUND_MS = 10_000;

function queue(clock = new Clock(), next = 0) {
  return { clock, q: new ValidatorQueue<string>({ next, roundMs: ROUND_MS, now: clock.now }) };
}

describe('ValidatorQueue: order and the bound', () => {
  it('hands out closed rounds in order, one at a time, with their updates', () => {
    const { q } = queue();
    expect(q.take()).toBeNull();
    expect(q.closed(0, 'r0')).toEqual({ held: true });
    expect(q.closed(1, 'r1')).toEqual({ held: true });
    expect(q.pending).toBe(2);
    expect(q.take()).toEqual({ round: 0, item: 'r0' });
    expect(q.take()).toBeNull(); // busy with round 0
    q.done(0);
    expect(q.take()).toEqual({ round: 1, item: 'r1' });
    q.done(1);
    expect(q.pending).toBe(0);
    expect(q.take()).toBeNull();
  });

  it(`holds at most ${VALIDATOR_QUEUE_BOUND} rounds in memory; one more is left in the saved state with why, still pending, and read back in turn`, () => {
    const { q } = queue();
    q.closed(0, 'r0');
    expect(q.take()!.round).toBe(0);
    for (let r = 1; r <= VALIDATOR_QUEUE_BOUND; r++) expect(q.closed(r, `r${r}`)).toEqual({ held: true });
    const over = q.closed(VALIDATOR_QUEUE_BOUND + 1, 'not kept');
    expect(over.held).toBe(false);
    expect(over).toMatchObject({ reason: expect.stringMatching(new RegExp(`2 closed rounds already wait in memory \\(the bound is 2\\): round 3 stays in the saved state, counted as not scored`)) });
    expect(q.heldRounds).toEqual([1, 2]);
    // Every closed round not decided is counted: the one in hand, the held ones, the one left on disk.
    expect(q.pending).toBe(4);
    q.done(0);
    expect(q.take()).toEqual({ round: 1, item: 'r1' });
    q.done(1);
    expect(q.take()).toEqual({ round: 2, item: 'r2' });
    q.done(2);
    // Not held: the caller reads it back from the saved state.
    expect(q.take()).toEqual({ round: 3, item: null });
    q.done(3);
    expect(q.pending).toBe(0);
  });

  it('after a restart scores the backlog first (read back), then the rounds that close meanwhile', () => {
    const { q } = queue(new Clock(), 5);
    q.backlog(7);
    expect(q.pending).toBe(3);
    expect(q.closed(8, 'r8')).toEqual({ held: true });
    const order: [number, string | null][] = [];
    for (let t = q.take(); t; t = q.take()) {
      order.push([t.round, t.item]);
      q.done(t.round);
    }
    expect(order).toEqual([[5, null], [6, null], [7, null], [8, 'r8']]);
  });

  it('ignores a round already decided', () => {
    const { q } = queue(new Clock(), 3);
    expect(q.closed(2, 'old')).toEqual({ held: false, reason: 'round 2 is already decided' });
    expect(q.take()).toBeNull();
  });

  it('refuses a done() for another round than the one in hand', () => {
    const { q } = queue();
    q.closed(0, 'r0');
    q.take();
    expect(() => q.done(1)).toThrow(/not the one in hand/);
  });
});

describe('ValidatorQueue: pacing', () => {
  /** Closes `round` now and takes it (nothing else waiting). */
  function closeAndTake(q: ValidatorQueue<string>, round: number) {
    q.closed(round, `r${round}`);
    return q.take()!;
  }

  it('asks for the configured sample until a round has been measured, with the time to the next close as its budget', () => {
    const { q } = queue();
    closeAndTake(q, 0);
    // No close interval seen yet and no start time given: the round's deadline stands for it.
    expect(q.plan(12)).toEqual({ round: 0, evaluate: 12, of: 12, behind: 0, budgetMs: PACE_SHARE * ROUND_MS, untilNextMs: ROUND_MS, measured: false, note: null });
  });

  it('keeps the full sample while it fits before the next close', () => {
    const { q, clock } = queue();
    closeAndTake(q, 0);
    clock.advance(3000);
    q.done(0, { fixedMs: 1000, perUpdateMs: 200, evaluated: 10 });
    clock.advance(7000);
    closeAndTake(q, 1);
    // 10 s to the next close: 1 s fixed + 12 × 0.2 s fits.
    expect(q.plan(12)).toMatchObject({ evaluate: 12, note: null });
  });

  it('shrinks the sample to what fits before the next round closes, and says so', () => {
    const { q, clock } = queue();
    closeAndTake(q, 0);
    clock.advance(10_000);
    q.done(0, { fixedMs: 1000, perUpdateMs: 3000, evaluated: 3 });
    closeAndTake(q, 1); // closes 10 s after round 0: the interval is measured as 10 s
    expect(q.roundIntervalMs).toBe(10_000);
    // (0.8 × 10 s − 1 s) / 3 s = 2 updates fit (a fifth of the interval kept to spare).
    expect(PACE_SHARE).toBe(0.8);
    const plan = q.plan(12);
    expect(plan).toMatchObject({ round: 1, evaluate: 2, of: 12, behind: 0 });
    expect(plan.note).toBe('round 1: scored 2 of 12 updates (behind by 0 rounds; an update takes ~3.0 s to score and the rest of a round ~1.0 s; the next round closes in ~10 s)');
  });

  it('shares the time to the next close among the rounds waiting: behind by one, half the budget', () => {
    const { q, clock } = queue();
    closeAndTake(q, 0);
    clock.advance(10_000);
    q.done(0, { fixedMs: 1000, perUpdateMs: 1000, evaluated: 9 });
    q.closed(1, 'r1'); // interval 10 s
    clock.advance(10_000);
    q.closed(2, 'r2'); // round 1 not started yet: 2 rounds to score before round 3 closes in ~10 s
    expect(q.take()!.round).toBe(1);
    // 0.8 × 10 s / 2 rounds = 4 s each: (4 − 1) / 1 = 3 updates.
    expect(q.plan(12)).toMatchObject({ evaluate: 3, behind: 1, note: expect.stringContaining('round 1: scored 3 of 12 updates (behind by 1 round;') });
  });

  it('evaluates one update past the budget only while it still ends before the next close; else none', () => {
    const { q, clock } = queue();
    closeAndTake(q, 0);
    clock.advance(10_000);
    q.done(0, { fixedMs: 4000, perUpdateMs: 5000, evaluated: 2 });
    closeAndTake(q, 1);
    // Budget 0.8 × 10 s: (8 − 4) / 5 → none; but 4 s + 5 s still ends before the close in 10 s.
    expect(q.plan(8)).toMatchObject({ evaluate: 1, behind: 0 });
    clock.advance(10_000);
    // A validator slower than the rounds (the swarm at N = 8 on a loaded machine: ~63 s + ~115 s
    // per update, rounds ~140 s apart): none, not a round scored after the next close.
    q.done(1, { fixedMs: 9000, perUpdateMs: 5000, evaluated: 1 });
    closeAndTake(q, 2);
    expect(q.plan(8)).toMatchObject({ evaluate: 0, behind: 0, note: expect.stringContaining('round 2: scored 0 of 8 updates (behind by 0 rounds;') });
    clock.advance(30_000); // round 2 took far too long; round 3 is overdue and then closes
    q.done(2, { fixedMs: 9000, perUpdateMs: 5000, evaluated: 0 });
    q.closed(3, 'r3');
    q.closed(4, 'r4');
    expect(q.take()!.round).toBe(3);
    expect(q.plan(8)).toMatchObject({ evaluate: 0, behind: 1, note: expect.stringContaining('round 3: scored 0 of 8 updates (behind by 1 round;') });
  });

  it('keeps the per-update time from the last round that evaluated any, and averages what it measures', () => {
    const { q, clock } = queue();
    closeAndTake(q, 0);
    q.done(0, { fixedMs: 1000, perUpdateMs: 2000, evaluated: 4 });
    clock.advance(10_000);
    closeAndTake(q, 1);
    q.done(1, { fixedMs: 3000, perUpdateMs: 0, evaluated: 0 }); // nothing evaluated: per-update time unchanged
    clock.advance(10_000);
    closeAndTake(q, 2);
    // fixed: 0.5·1 s + 0.5·3 s = 2 s; per update 2 s; 10 s to the next close: (0.8 × 10 − 2) / 2 = 3.
    expect(q.plan(12)).toMatchObject({ evaluate: 3 });
  });

  it('budgets the first round by its own duration (start to close), the time it has used already taken off', () => {
    const { q, clock } = queue();
    const startedAt = clock.t;
    clock.advance(4000);
    q.closed(0, 'r0', startedAt);
    expect(q.roundIntervalMs).toBe(4000);
    clock.advance(500); // the validator finished compiling, then took the round
    q.take();
    expect(q.plan(16)).toMatchObject({ evaluate: 16, budgetMs: PACE_SHARE * 3500, untilNextMs: 3500, measured: false, note: null });
    // Once two closes are seen the measured interval replaces the estimate.
    clock.advance(5500);
    q.done(0, { fixedMs: 900, perUpdateMs: 1070, evaluated: 2, outOfTime: 14 });
    q.closed(1, 'r1', clock.t - 3000);
    expect(q.roundIntervalMs).toBe(6000);
  });

  it('never stays blind: after a blind round whose budget let no trial start, the next evaluates one past its budget, to measure', () => {
    // A small run's first base evaluation (kernels compiling) took longer than a quarter of
    // the budget: no trial started, nothing was measured, and every later round was as blind.
    const { q, clock } = queue();
    q.closed(0, 'r0', clock.t - 1000);
    q.take();
    expect(q.plan(3)).toMatchObject({ evaluate: 3, measured: false });
    clock.advance(1500);
    q.done(0, { fixedMs: 1500, perUpdateMs: 0, evaluated: 0, outOfTime: 3 });
    q.closed(1, 'r1');
    q.take();
    const measuring = q.plan(3);
    expect(measuring).toMatchObject({ evaluate: 1, budgetMs: Infinity, measured: false, measuring: true });
    expect(measuring.note).toBe("round 1: scored 1 of 3 updates (no scoring time measured yet and the last round's budget let none start: one is evaluated, whatever it takes, to measure it)");
    clock.advance(3000);
    q.done(1, { fixedMs: 1000, perUpdateMs: 2000, evaluated: 1 });
    q.closed(2, 'r2');
    q.take();
    // Measured now: paced as any other round (1.5 s to the next close fits none, nor ends before it).
    expect(q.plan(3)).toMatchObject({ measured: true, evaluate: 0 });
  });

  it('a validator slower than the rounds still scores: the time unused by rounds that evaluated none buys one update now and then', () => {
    // One update takes 8 s to score, rounds close every 4 s: no round's budget fits one. Before,
    // every round evaluated none and nobody was paid.
    const { q, clock } = queue();
    const o = { fixedMs: 1000, perUpdateMs: 8000, full: 4, rounds: 24, roundDurationMs: 3000, intervalMs: 4000 };
    const { worstLag, notes } = simulate(q, clock, o);
    const scored = notes.filter((n) => /scored 1 of 4 updates \(an update takes ~8\.0 s to score, more than a round leaves/.test(n));
    // At most 0.8 × 4 s − 1 s = 2.2 s saved per round that evaluates none (less while a round
    // that ran past the next close leaves one behind, sharing the budget): one every 4–8 rounds.
    expect(scored.length).toBeGreaterThanOrEqual(3);
    expect(scored.length).toBeLessThanOrEqual(8);
    expect(worstLag).toBeLessThanOrEqual(3);
  });

  it('unpaced: every round evaluates the configured sample with no budget', () => {
    const clock = new Clock();
    const q = new ValidatorQueue<string>({ next: 0, roundMs: ROUND_MS, now: clock.now, unpaced: true });
    q.closed(0, 'r0');
    q.take();
    q.done(0, { fixedMs: 5000, perUpdateMs: 60_000, evaluated: 1 });
    q.closed(1, 'r1');
    q.take();
    expect(q.plan(12)).toMatchObject({ evaluate: 12, budgetMs: Infinity, note: null });
  });

  it('says why a budget cut a round shorter than planned', () => {
    const { q, clock } = queue();
    q.closed(0, 'r0', clock.t - 4000);
    q.take();
    const first = q.plan(16);
    expect(q.noteFor(first, { fixedMs: 900, perUpdateMs: 1070, evaluated: 2, outOfTime: 14 })).toBe(
      'round 0: scored 2 of 16 updates (no scoring time measured yet: its time budget of ~3.2 s ran out with 14 planned updates left; behind by 0 rounds; the next round was expected to close in ~4.0 s)',
    );
    expect(q.noteFor(first, { fixedMs: 900, perUpdateMs: 1070, evaluated: 16 })).toBeNull();
    q.done(0, { fixedMs: 900, perUpdateMs: 1070, evaluated: 2 });
    clock.advance(6000);
    q.closed(1, 'r1');
    q.take();
    const measured = q.plan(16);
    // Measured: (0.8 × 6 s − 0.9 s) / 1.07 s = 3 planned; a slower machine managed 2.
    expect(measured).toMatchObject({ evaluate: 3, measured: true });
    expect(q.noteFor(measured, { fixedMs: 900, perUpdateMs: 1500, evaluated: 2, outOfTime: 1 })).toMatch(/^round 1: scored 2 of 16 updates \(scoring ran slower than measured: its time budget of ~4\.8 s ran out with 1 planned update left;/);
    expect(q.noteFor(measured, { fixedMs: 900, perUpdateMs: 1070, evaluated: 3 })).toBe(measured.note);
  });

  /**
   * Rounds closing every `intervalMs`, each of `full` updates; an engine that keeps to the
   * plan's budget as the real one does (only trials that end within it) unless `ignoreBudget`
   * (as before the budget existed). Returns the worst lag
   * seen at a close and the notes logged.
   */
  function simulate(q: ValidatorQueue<string>, clock: Clock, o: { fixedMs: number; perUpdateMs: number; full: number; rounds: number; roundDurationMs: number; intervalMs: number; ignoreBudget?: boolean }) {
    const ROUND_MS = o.intervalMs;
    let nextClose = clock.t;
    let closedRound = -1;
    let worstLag = 0;
    const notes: string[] = [];
    const close = () => {
      q.closed(++closedRound, `r${closedRound}`, clock.t - o.roundDurationMs);
      // The lag at a close, as `tessera simulate` reports it: closed rounds not decided, this one
      // included (1: every earlier round was scored before this one closed).
      worstLag = Math.max(worstLag, q.pending);
      nextClose += ROUND_MS;
    };
    close();
    while (closedRound < o.rounds) {
      const job = q.take();
      if (!job) {
        clock.t = nextClose;
        close();
        continue;
      }
      const plan = q.plan(o.full);
      const budgetEnd = o.ignoreBudget ? Infinity : clock.t + plan.budgetMs;
      let evaluated = 0;
      let t = clock.t + o.fixedMs / 2;
      // The first trial's time guessed at twice the base evaluations' (fixed / 2), as the engine does.
      while (evaluated < plan.evaluate && t + (evaluated === 0 ? o.fixedMs : o.perUpdateMs) + o.fixedMs / 2 <= budgetEnd) {
        t += o.perUpdateMs;
        evaluated++;
      }
      const end = t + o.fixedMs / 2;
      while (nextClose <= end) {
        clock.t = nextClose;
        close();
      }
      clock.t = end;
      const timing = { fixedMs: o.fixedMs, perUpdateMs: o.perUpdateMs, evaluated, outOfTime: plan.evaluate - evaluated };
      const note = q.noteFor(plan, timing);
      if (note) notes.push(note);
      q.done(job.round, timing);
    }
    return { worstLag, notes };
  }

  it('paces the first round too: with a full sample 3 rounds long, every round is scored before the next closes, from round 0 on', () => {
    // The numbers: 16 updates × 1.07 s + 0.9 s = 18 s to score in full, rounds of ~4 s
    // and 2 s of sync between: unpaced, round 0 alone took 3 rounds' time.
    const o = { fixedMs: 900, perUpdateMs: 1070, full: 16, rounds: 12, roundDurationMs: 4000, intervalMs: 6000 };
    const unpaced = queue();
    expect(simulate(unpaced.q, unpaced.clock, { ...o, ignoreBudget: true }).worstLag).toBe(4);
    const { q, clock } = queue();
    const { worstLag, notes } = simulate(q, clock, o);
    expect(worstLag).toBeLessThanOrEqual(1);
    expect(notes[0]).toMatch(/^round 0: scored \d+ of 16 updates \(no scoring time measured yet: its time budget of ~3\.2 s ran out/);
  });

  it('catches up: a validator twice as slow as the rounds stays at most one round behind once paced', () => {
    // Scoring the configured 12 takes 2 rounds' time; paced, the lag never passes one round.
    const { q, clock } = queue();
    const FIXED = 1000;
    const PER_UPDATE = 1500;
    let nextClose = 0;
    let closedRound = -1;
    let worstLag = 0;
    const closeDue = () => {
      while (clock.t >= nextClose) {
        clock.t = Math.max(clock.t, nextClose);
        q.closed(++closedRound, `r${closedRound}`);
        nextClose += ROUND_MS;
      }
    };
    nextClose = clock.t;
    closeDue();
    const notes: string[] = [];
    for (let scored = 0; scored < 30; scored++) {
      const job = q.take();
      if (!job) {
        clock.t = nextClose;
        closeDue();
        scored--;
        continue;
      }
      const plan = q.plan(12);
      if (plan.note) notes.push(plan.note);
      const start = clock.t;
      const end = start + FIXED + PER_UPDATE * plan.evaluate;
      // Rounds close while it scores.
      while (nextClose <= end) {
        clock.t = nextClose;
        closeDue();
      }
      clock.t = end;
      worstLag = Math.max(worstLag, q.pending - 1);
      q.done(job.round, { fixedMs: FIXED, perUpdateMs: PER_UPDATE, evaluated: plan.evaluate });
    }
    expect(worstLag).toBeLessThanOrEqual(1);
    expect(notes.length).toBeGreaterThan(0);
    for (const n of notes) expect(n).toMatch(/^round \d+: scored \d+ of 12 updates \(behind by \d+ rounds?;/);
  });
});

describe('ValidatorQueue: restore after a restart', () => {
  it('keeps what it measured across a restart: the backlog is paced from its first round, as the old queue would have', () => {
    const { q, clock } = queue();
    q.closed(0, 'r0', clock.t - 4000);
    q.take();
    expect(q.snapshot()).toBeNull(); // an estimate from the round's duration is not kept: nothing is measured yet
    clock.advance(6000);
    q.done(0, { fixedMs: 900, perUpdateMs: 1000, evaluated: 3 });
    q.closed(1, 'r1');
    q.take();
    clock.advance(3000);
    q.done(1, { fixedMs: 1100, perUpdateMs: 1200, evaluated: 2 });
    const saved = JSON.parse(JSON.stringify(q.snapshot()));
    expect(saved).toEqual({ intervalMs: 6000, fixedMs: 1000, perUpdateMs: 1100 });

    // Killed with rounds 2–4 closed and not scored; started again on the same state.
    const after = new Clock();
    const restored = new ValidatorQueue<string>({ next: 2, roundMs: ROUND_MS, now: after.now, restored: saved });
    restored.backlog(4);
    expect(restored.roundIntervalMs).toBe(6000);
    expect(restored.take()).toEqual({ round: 2, item: null });
    // 0.8 × 6 s shared by 3 rounds: (1.6 s − 1 s) / 1.1 s → none fit, and it is behind: none.
    expect(restored.plan(16)).toMatchObject({ evaluate: 0, behind: 2, budgetMs: 1600, measured: true });
    // A queue started without it would have asked for all 16.
    const fresh = new ValidatorQueue<string>({ next: 2, roundMs: ROUND_MS, now: after.now });
    fresh.backlog(4);
    fresh.take();
    expect(fresh.plan(16)).toMatchObject({ evaluate: 16, measured: false });
    expect(restored.snapshot()).toEqual(saved);
  });

  it('starts unmeasured from a snapshot that is not one', () => {
    for (const bad of [null, 'x', {}, { intervalMs: 0, fixedMs: 1, perUpdateMs: 1 }, { intervalMs: 5, fixedMs: -1, perUpdateMs: 1 }, { intervalMs: 5, fixedMs: 1, perUpdateMs: 'slow' }, { intervalMs: Infinity, fixedMs: 1, perUpdateMs: 1 }]) {
      expect(parsePacing(bad)).toBeNull();
    }
    expect(parsePacing({ intervalMs: 5, fixedMs: 1, perUpdateMs: null })).toEqual({ intervalMs: 5, fixedMs: 1, perUpdateMs: null });
    const q = new ValidatorQueue<string>({ next: 0, roundMs: ROUND_MS, now: () => 0, restored: parsePacing({ intervalMs: -3 }) });
    expect(q.snapshot()).toBeNull();
    expect(q.roundIntervalMs).toBe(ROUND_MS);
  });
});
