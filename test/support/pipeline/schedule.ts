// The 1F1B micro-batch schedule of a pipeline step (PipeDream-Flush / Megatron's
// non-interleaved schedule): for S stages and M micro-batches, the order in which each stage
// runs its forwards F(m) and backwards B(m).
//
// Stage s first runs w = min(S − 1 − s, M) warm-up forwards, then alternates one forward and
// one backward until its forwards are done, then drains the remaining backwards:
//
//   S = 4, M = 6     (time →, unit cost per op, as simulateSchedule lays it out)
//   stage 0: F0 F1 F2 F3 .  .  .  B0 F4 B1 F5 B2 .  B3 .  B4 .  B5
//   stage 1: .  F0 F1 F2 .  .  B0 F3 B1 F4 B2 F5 B3 .  B4 .  B5 .
//   stage 2: .  .  F0 F1 .  B0 F2 B1 F3 B2 F4 B3 F5 B4 .  B5 .  .
//   stage 3: .  .  .  F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 .  .  .
//   (18 units for 48 ops: a bubble of 1/3 = (S − 1)/(M + S − 1) at B = F cost)
//
// Properties (test/pipeline/schedule.test.ts checks them for S = 1, 2, 4 and M = 1..8):
// every micro-batch is forwarded then backwarded exactly once on every stage, in increasing
// micro-batch order for each kind; at most S − s micro-batches are in flight on stage s
// (forwarded, not yet backwarded) — the activations it must keep; and the per-stage orders
// together with the cross-stage dependencies (F(s, m) after F(s − 1, m), B(s, m) after
// B(s + 1, m)) never deadlock: simulateSchedule runs them to completion.
// Pure functions, environment-free.

export type PipelineOpKind = 'F' | 'B';

export interface PipelineOp {
  kind: PipelineOpKind;
  micro: number;
}

function checkCounts(stages: number, micros: number): void {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`stages must be an integer ≥ 1, got ${stages}`);
  if (!Number.isInteger(micros) || micros < 1) throw new RangeError(`micro-batches must be an integer ≥ 1, got ${micros}`);
}

/** The 1F1B order of operations of stage `stage` (0-based) of `stages`, for `micros` micro-batches. */
export function stageSchedule(stages: number, stage: number, micros: number): PipelineOp[] {
  checkCounts(stages, micros);
  if (!Number.isInteger(stage) || stage < 0 || stage >= stages) throw new RangeError(`stage must be an integer in [0, ${stages}), got ${stage}`);
  const warmup = Math.min(stages - 1 - stage, micros);
  const ops: PipelineOp[] = [];
  let f = 0;
  let b = 0;
  for (; f < warmup; f++) ops.push({ kind: 'F', micro: f });
  while (f < micros) {
    ops.push({ kind: 'F', micro: f++ });
    ops.push({ kind: 'B', micro: b++ });
  }
  while (b < micros) ops.push({ kind: 'B', micro: b++ });
  return ops;
}

/** Every stage's schedule: result[s] = stageSchedule(stages, s, micros). */
export function pipelineSchedule(stages: number, micros: number): PipelineOp[][] {
  checkCounts(stages, micros);
  return Array.from({ length: stages }, (_, s) => stageSchedule(stages, s, micros));
}

/** Most micro-batches in flight (forwarded, not yet backwarded) at any point of one stage's order. */
export function maxInFlight(ops: readonly PipelineOp[]): number {
  let live = 0;
  let most = 0;
  for (const op of ops) {
    live += op.kind === 'F' ? 1 : -1;
    most = Math.max(most, live);
  }
  return most;
}

export interface SimulatedOp extends PipelineOp {
  stage: number;
  /** Start time in op units (every op costs 1). */
  start: number;
}

export interface ScheduleSimulation {
  /** Every op in the order of its start time (ties by stage), for driving stages in one process. */
  order: SimulatedOp[];
  /** Time units until the last op ends. */
  makespan: number;
  /** Idle fraction: 1 − (ops / (stages · makespan)). */
  bubble: number;
}

/**
 * Runs the per-stage orders with unit-cost ops, each stage in its order, an op starting once
 * its cross-stage dependency has ended (and the stage is free). Throws if they deadlock or
 * an order is not a permutation of F(0..M−1) and B(0..M−1) with F(m) before B(m).
 */
export function simulateSchedule(schedule: readonly (readonly PipelineOp[])[]): ScheduleSimulation {
  const S = schedule.length;
  if (S < 1) throw new RangeError('no stages');
  const M = schedule[0].length / 2;
  const ends = () => Array.from({ length: S }, () => new Array<number>(M).fill(-1));
  const fEnd = ends();
  const bEnd = ends();
  for (let s = 0; s < S; s++) {
    const ops = schedule[s];
    if (ops.length !== 2 * M) throw new Error(`stage ${s} has ${ops.length} ops, expected ${2 * M}`);
    const seen = new Set<string>();
    for (const op of ops) {
      const key = `${op.kind}${op.micro}`;
      if (!Number.isInteger(op.micro) || op.micro < 0 || op.micro >= M || seen.has(key)) throw new Error(`stage ${s}: bad or repeated op ${key}`);
      if (op.kind === 'B' && !seen.has(`F${op.micro}`)) throw new Error(`stage ${s}: B${op.micro} before F${op.micro}`);
      seen.add(key);
    }
  }
  const next = new Array<number>(S).fill(0);
  const free = new Array<number>(S).fill(0);
  const order: SimulatedOp[] = [];
  let remaining = 2 * M * S;
  while (remaining > 0) {
    // the ready op that can start earliest (ties: lower stage), so the order is by start time
    let best = -1;
    let bestStart = Infinity;
    for (let s = 0; s < S; s++) {
      if (next[s] >= schedule[s].length) continue;
      const op = schedule[s][next[s]];
      let dep: number;
      if (op.kind === 'F') dep = s === 0 ? 0 : fEnd[s - 1][op.micro];
      else dep = s === S - 1 ? fEnd[s][op.micro] : bEnd[s + 1][op.micro];
      if (dep < 0) continue; // its dependency has not run yet
      const start = Math.max(free[s], dep);
      if (start < bestStart) {
        bestStart = start;
        best = s;
      }
    }
    if (best < 0) {
      const stuck = schedule.map((ops, s) => (next[s] < ops.length ? `stage ${s} at ${ops[next[s]].kind}${ops[next[s]].micro}` : null)).filter(Boolean);
      throw new Error(`schedule deadlocks: ${stuck.join(', ')}`);
    }
    const op = schedule[best][next[best]++];
    (op.kind === 'F' ? fEnd : bEnd)[best][op.micro] = bestStart + 1;
    free[best] = bestStart + 1;
    order.push({ ...op, stage: best, start: bestStart });
    remaining--;
  }
  const makespan = Math.max(...free);
  return { order, makespan, bubble: 1 - (2 * M * S) / (S * makespan) };
}
