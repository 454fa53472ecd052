// Which pipeline stage each contributor holds (SWARM's load balancing, simplified).
//
// On join a contributor reports its capacity: memory it can give the model and its measured
// speed (tokens/s of the whole model on a short calibration). It goes to the stage it fits
// (memory ≥ the stage's need) whose throughput is lowest for its work: Σ speed of the stage's
// peers ÷ the stage's layers — a stage nobody holds first, and a stage under
// MIN_STAGE_REPLICAS before any other (a stage held by one peer stalls every pipeline when
// that peer leaves; calibrations taken while other peers compile swing by several times, and
// placed four peers 3 + 1, so the one stage-1 peer's exit emptied its stage). A contributor
// that fits no stage is placed in the smallest one (with a warning: it may run out of memory).
//
// Before a round starts, a stage with no ready peer would stall every pipeline: if another
// stage has two or more peers, its fastest peer that fits moves to the starved stage (a
// 'stage' message; it syncs that stage's weights and is then ready). The same happens after
// a peer leaves. Transport-free and deterministic (ties go to the lower stage, the smaller
// address), so it is unit-tested without sockets.
import type { Capacity } from '../protocol/messages.ts';
import type { StageRange } from '../protocol/run-config.ts';

export interface StageMove {
  address: string;
  from: number;
  to: number;
}

interface Placed {
  stage: number;
  capacity: Capacity;
}

/** Replicas a stage gets before throughput decides: one may leave without stalling the pipelines. */
export const MIN_STAGE_REPLICAS = 2;

export class StageBalancer {
  private readonly placed = new Map<string, Placed>();

  /**
   * @param ranges every stage's layer range
   * @param memoryNeed bytes a peer of each stage needs (parameters, optimiser, activations)
   */
  constructor(
    readonly ranges: readonly StageRange[],
    readonly memoryNeed: readonly number[],
  ) {
    if (ranges.length === 0 || ranges.length !== memoryNeed.length) throw new Error('StageBalancer: one memory need per stage');
  }

  get stageCount(): number {
    return this.ranges.length;
  }

  stageOf(address: string): number | undefined {
    return this.placed.get(address)?.stage;
  }

  /** Places a contributor (again: a reconnect keeps its stage). */
  assign(address: string, capacity: Capacity): { stage: number; warning: string | null } {
    const known = this.placed.get(address);
    if (known) {
      known.capacity = capacity;
      return { stage: known.stage, warning: null };
    }
    const fits = this.ranges.map((_, s) => s).filter((s) => this.fits(capacity, s));
    let warning: string | null = null;
    let candidates = fits;
    if (fits.length === 0) {
      const smallest = this.memoryNeed.indexOf(Math.min(...this.memoryNeed));
      candidates = [smallest];
      warning = `${address} reports ${mib(capacity.memoryBytes)} MiB; the smallest stage needs ${mib(this.memoryNeed[smallest])} MiB — placed there anyway`;
    }
    const counts = this.counts();
    const thin = candidates.filter((s) => counts[s] < MIN_STAGE_REPLICAS);
    if (thin.length > 0) candidates = thin;
    const stage = candidates.reduce((best, s) => (this.load(s) < this.load(best) ? s : best), candidates[0]);
    this.placed.set(address, { stage, capacity });
    return { stage, warning };
  }

  remove(address: string): void {
    this.placed.delete(address);
  }

  /** Peers per stage among `present` (everyone placed, if omitted). */
  counts(present?: readonly string[]): number[] {
    const out = this.ranges.map(() => 0);
    for (const [a, p] of this.placed) if (!present || present.includes(a)) out[p.stage]++;
    return out;
  }

  /**
   * Moves that leave no stage without a peer among `present` (connected contributors),
   * applied here; each moved peer must fetch its new stage's weights.
   */
  rebalance(present: readonly string[]): StageMove[] {
    const moves: StageMove[] = [];
    for (;;) {
      const counts = this.counts(present);
      const starved = counts.indexOf(0);
      if (starved < 0) break;
      // donors: peers of stages that keep at least one peer after giving one away
      const donors = [...this.placed]
        .filter(([a, p]) => present.includes(a) && counts[p.stage] >= 2 && this.fits(p.capacity, starved))
        .sort(([a, p], [b, q]) => counts[q.stage] - counts[p.stage] || q.capacity.tokensPerSecond - p.capacity.tokensPerSecond || (a < b ? -1 : 1));
      if (donors.length === 0) break;
      const [address, p] = donors[0];
      moves.push({ address, from: p.stage, to: starved });
      p.stage = starved;
    }
    return moves;
  }

  private fits(c: Capacity, stage: number): boolean {
    // 0 means "not reported": assume it fits rather than refuse an old client.
    return c.memoryBytes === 0 || c.memoryBytes >= this.memoryNeed[stage];
  }

  /** Throughput per layer of a stage: lower is hungrier. */
  private load(stage: number): number {
    let speed = 0;
    for (const p of this.placed.values()) if (p.stage === stage) speed += Math.max(1, p.capacity.tokensPerSecond);
    const r = this.ranges[stage];
    return speed / (r.to - r.from);
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
