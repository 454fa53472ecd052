// The reward ledger's round outcomes: scored rounds counted, skipped ones recorded with their
// reason (never silently), standings that say how many closed rounds are still to score.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Ledger, type RoundScore } from '../../src/coordinator/ledger.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterEach(removeTempDirs);

const row = (address: string, ema: number, share: number): RoundScore & { ema: number; assignedEma: number; share: number; reward: number } => ({
  address, gradient: 0.01, assigned: 0.02, copied: false, missing: false, invalid: false, synced: true, score: ema, ema, assignedEma: 1, share, reward: share * 10,
});

describe('ledger: round outcomes', () => {
  it('counts scored rounds, records skipped ones with why, and both move lastRound; it survives a reopen', () => {
    const file = join(tempDir(), 'ledger.sqlite');
    const ledger = new Ledger(file);
    expect([ledger.lastRound, ledger.scoredRounds, ledger.averages('a')]).toEqual([-1, 0, null]);
    ledger.recordRound(0, 0, [row('a', 0.02, 0.5), row('b', 0.02, 0.5)]);
    ledger.recordSkipped(1, 'the update of b in round 1 is gone');
    ledger.recordRound(2, 0, []); // everyone left: scored, nobody paid
    expect([ledger.lastRound, ledger.scoredRounds]).toEqual([2, 2]);
    expect(ledger.skippedRounds()).toEqual([{ round: 1, reason: 'the update of b in round 1 is gone' }]);
    ledger.close();
    const again = new Ledger(file);
    expect([again.lastRound, again.scoredRounds, again.skippedRounds().length]).toEqual([2, 2, 1]);
    // A late skip of an older round does not move lastRound back.
    again.recordSkipped(0, 'x');
    expect(again.lastRound).toBe(2);
    again.close();
  });

  it("says in a standing how many closed rounds were still to score when it was made", () => {
    const ledger = new Ledger(join(tempDir(), 'ledger.sqlite'));
    ledger.recordRound(0, 0, [row('a', 0.03, 0.6), row('b', 0.02, 0.4)]);
    expect(ledger.standing('a', 0, 151)).toMatchObject({ rank: 1, of: 2, share: 0.6, lastRound: 0, pendingRounds: 151 });
    expect(ledger.standing('b', 0)).toMatchObject({ rank: 2, pendingRounds: 0 });
    expect(ledger.standing('nobody', 0, 3)).toBeNull();
    ledger.close();
  });
});
