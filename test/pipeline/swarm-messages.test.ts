// The swarm's control messages and pure rules (src/pipeline/swarm-messages.ts), without a GPU.
import { describe, expect, it } from 'vitest';
import { SwarmStepError, combineNorms, encodeControl, parseControl, tieBreak, type NormReport } from '../../src/pipeline/swarm-messages.ts';

const text = (s: string) => new TextEncoder().encode(s);

describe('swarm control messages', () => {
  it('round-trip done, drop and norm', () => {
    const all = [
      { t: 'done', round: 3, step: 7 },
      { t: 'drop', round: 3, step: 7, id: 16 },
      { t: 'norm', round: 3, step: 7, sq: 2.5, processed: 4, lossSum: 9.5, lossCount: 4 },
    ] as const;
    for (const c of all) expect(parseControl(encodeControl(c))).toEqual(c);
  });

  it('refuse what is not JSON, too long, without round and step, or with a bad field', () => {
    const bad = [
      text('not json'),
      text(JSON.stringify({ t: 'done', round: 1, step: 1, pad: 'x'.repeat(1100) })),
      text(JSON.stringify({ t: 'done', step: 1 })),
      text(JSON.stringify({ t: 'done', round: -1, step: 1 })),
      text(JSON.stringify({ t: 'drop', round: 1, step: 1 })),
      text(JSON.stringify({ t: 'norm', round: 1, step: 1, sq: -1, processed: 1, lossSum: 0, lossCount: 0 })),
      text(JSON.stringify({ t: 'hello', round: 1, step: 1 })),
      text('null'),
    ];
    for (const b of bad) expect(() => parseControl(b)).toThrow(SwarmStepError);
  });
});

describe('combineNorms', () => {
  const report = (sq: number, processed: number, lossSum = 0, lossCount = 0): NormReport => ({ sq, processed, lossSum, lossCount });

  it('sums over stages the mean Σg² of the peers that processed something; the loss is the mean over reports', () => {
    const members = [['a', 'b'], ['c']];
    const norms = new Map([['a', report(4, 2)], ['b', report(0, 0)], ['c', report(5, 2, 6, 2)]]);
    const { gradNorm, loss } = combineNorms(members, norms);
    expect(gradNorm).toBe(Math.sqrt(4 + 5));
    expect(loss).toBe(3);
    const two = combineNorms(members, new Map([['a', report(4, 1)], ['b', report(2, 1)], ['c', report(5, 2)]]));
    expect(two.gradNorm).toBe(Math.sqrt(3 + 5));
    expect(two.loss).toBeNull();
  });
});

describe('tieBreak', () => {
  it('is deterministic and depends on the seed, the id and the peer', () => {
    expect(tieBreak(1, 8, 'p')).toBe(tieBreak(1, 8, 'p'));
    const values = new Set([tieBreak(1, 8, 'p'), tieBreak(2, 8, 'p'), tieBreak(1, 16, 'p'), tieBreak(1, 8, 'q')]);
    expect(values.size).toBe(4);
    expect(Number.isInteger(tieBreak(0, 0, ''))).toBe(true);
  });
});
