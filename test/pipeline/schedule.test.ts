// The 1F1B schedule: for S = 1, 2, 4 stages and M = 1..8 micro-batches, each stage forwards
// and backwards every micro-batch once, in order, forward before backward; at most S − s in
// flight on stage s; the cross-stage dependencies hold in a simulated run, which never
// deadlocks; and the bubble is the textbook (S − 1)/(M + S − 1) at unit cost.
import { describe, expect, it } from 'vitest';
import { type PipelineOp, maxInFlight, pipelineSchedule, simulateSchedule, stageSchedule } from '../support/pipeline/schedule.ts';

const fmt = (ops: readonly PipelineOp[]) => ops.map((o) => `${o.kind}${o.micro}`).join(' ');

describe('1F1B schedule', () => {
  for (const S of [1, 2, 4]) {
    for (let M = 1; M <= 8; M++) {
      it(`S=${S} M=${M}: order, in-flight bound, dependencies, no deadlock`, () => {
        const schedule = pipelineSchedule(S, M);
        expect(schedule).toHaveLength(S);
        for (let s = 0; s < S; s++) {
          const ops = schedule[s];
          expect(ops).toEqual(stageSchedule(S, s, M));
          const fs = ops.filter((o) => o.kind === 'F').map((o) => o.micro);
          const bs = ops.filter((o) => o.kind === 'B').map((o) => o.micro);
          const all = Array.from({ length: M }, (_, m) => m);
          expect(fs).toEqual(all); // every micro-batch once, in order
          expect(bs).toEqual(all);
          for (let m = 0; m < M; m++) {
            const f = ops.findIndex((o) => o.kind === 'F' && o.micro === m);
            const b = ops.findIndex((o) => o.kind === 'B' && o.micro === m);
            expect(f).toBeLessThan(b);
          }
          expect(maxInFlight(ops)).toBeLessThanOrEqual(S - s);
          expect(maxInFlight(ops)).toBe(Math.min(S - s, M)); // and uses what it may
        }
        const sim = simulateSchedule(schedule);
        expect(sim.order).toHaveLength(2 * M * S);
        const start = new Map(sim.order.map((o) => [`${o.stage}${o.kind}${o.micro}`, o.start]));
        for (let s = 0; s < S; s++) {
          for (let m = 0; m < M; m++) {
            const f = start.get(`${s}F${m}`)!;
            const b = start.get(`${s}B${m}`)!;
            if (s > 0) expect(f).toBeGreaterThanOrEqual(start.get(`${s - 1}F${m}`)! + 1);
            if (s < S - 1) expect(b).toBeGreaterThanOrEqual(start.get(`${s + 1}B${m}`)! + 1);
            else expect(b).toBeGreaterThanOrEqual(f + 1);
          }
          // a stage runs one op at a time, in its order
          const mine = sim.order.filter((o) => o.stage === s);
          expect(fmt(mine)).toBe(fmt(schedule[s]));
          for (let i = 1; i < mine.length; i++) expect(mine[i].start).toBeGreaterThanOrEqual(mine[i - 1].start + 1);
        }
        for (let i = 1; i < sim.order.length; i++) expect(sim.order[i].start).toBeGreaterThanOrEqual(sim.order[i - 1].start);
        expect(sim.makespan).toBe(2 * (M + S - 1));
        expect(sim.bubble).toBeCloseTo((S - 1) / (M + S - 1), 12);
      });
    }
  }

  it('S=2 M=4 and S=4 M=3 orders', () => {
    expect(pipelineSchedule(2, 4).map(fmt)).toEqual(['F0 F1 B0 F2 B1 F3 B2 B3', 'F0 B0 F1 B1 F2 B2 F3 B3']);
    expect(pipelineSchedule(4, 3).map(fmt)).toEqual(['F0 F1 F2 B0 B1 B2', 'F0 F1 F2 B0 B1 B2', 'F0 F1 B0 F2 B1 B2', 'F0 B0 F1 B1 F2 B2']);
  });

  it('rejects bad arguments, malformed orders and a deadlocking order', () => {
    expect(() => pipelineSchedule(0, 2)).toThrow(RangeError);
    expect(() => pipelineSchedule(2, 0)).toThrow(RangeError);
    expect(() => stageSchedule(2, 2, 1)).toThrow(RangeError);
    const op = (kind: 'F' | 'B', micro: number): PipelineOp => ({ kind, micro });
    expect(() => simulateSchedule([[op('B', 0), op('F', 0)]])).toThrow(/B0 before F0/);
    expect(() => simulateSchedule([[op('F', 0), op('F', 0)]])).toThrow(/repeated/);
    // stage 0 wants B0 before F1, but stage 1 runs F1 before B0: neither can move
    expect(() => simulateSchedule([
      [op('F', 0), op('B', 0), op('F', 1), op('B', 1)],
      [op('F', 0), op('F', 1), op('B', 0), op('B', 1)],
    ])).toThrow(/deadlocks: stage 0 at B0, stage 1 at F1/);
  });
});
