// What the simulation saw of each round, from its peers' events and the coordinator: when
// the round started and closed, its members, its commit, the validator's lag, and this
// process's cost over the round — CPU (process.cpuUsage: coordinator and simulated peers
// together), the time spent inside the coordinator's own handlers (its share: every message,
// update and tick it handles, and the store and commit reads the HTTP side asks of it, timed
// on the instance; the ws and HTTP libraries' own parsing is not in it), peak RSS (the process's).
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { SimContext } from './sim-context.ts';
import type { SimValidatorEngine } from './sim-engine.ts';
import type { RoundRow } from './report.ts';

interface RoundSeen {
  startAt: number;
  members: number;
  /** Members sent away mid-round by the leave fault. */
  left: number;
  deadline: number;
  commitAt?: number;
  included?: number;
  delivered?: number;
  validatorLag?: number;
  lastAppliedAt?: number;
  processCpuMs?: number;
  coordinatorMs?: number;
  rssMB?: number;
  peakRssMB?: number;
}

const median = (xs: number[]) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export class RoundLog {
  private readonly rounds = new Map<number, RoundSeen>();
  readonly refusals: Record<string, number> = {};
  /** Time inside the coordinator's handlers, ms, since the start. */
  private coordinatorMs = 0;
  private cpuMark = process.cpuUsage();
  private coordinatorMark = 0;

  /** Times every handler of this coordinator instance (connections' messages and the clock's ticks). */
  timeHandlers(c: Coordinator): void {
    const timed = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => {
      const t0 = performance.now();
      try {
        f(...a);
      } finally {
        this.coordinatorMs += performance.now() - t0;
      }
    };
    const read = <T>(f: () => T): T => {
      const t0 = performance.now();
      try {
        return f();
      } finally {
        this.coordinatorMs += performance.now() - t0;
      }
    };
    const connect = c.connect.bind(c);
    c.connect = (conn) => {
      let s!: ReturnType<typeof connect>;
      timed(() => (s = connect(conn)))();
      return { onText: timed(s.onText), onBinary: s.onBinary, onClose: timed(s.onClose) };
    };
    // An update's intake is onBinary over the WebSocket (envelope, frame, disk copy) and
    // onSignedEnds from the bucket after `uploaded` (bucket-updates.ts, after its awaits: the
    // header's checks and signature): timed on the instance so both ways count, once.
    const inner = c as unknown as { onBinary: (s: unknown, bytes: Uint8Array) => boolean; onSignedEnds: (s: unknown, ends: unknown) => boolean };
    const onBinary = inner.onBinary.bind(c);
    inner.onBinary = (session, bytes) => read(() => onBinary(session, bytes));
    // A bucket's intake by the envelope's two ends (its signature verified, the round's checks): timed alike.
    const onSignedEnds = inner.onSignedEnds.bind(c);
    inner.onSignedEnds = (session, ends) => read(() => onSignedEnds(session, ends));
    c.tick = timed(c.tick.bind(c));
    // What the HTTP side asks of it: stored updates and commits, checkpoints.
    const storedUpdate = c.storedUpdate.bind(c);
    c.storedUpdate = (round, sender) => read(() => storedUpdate(round, sender));
    const commit = c.commit.bind(c);
    c.commit = (round) => read(() => commit(round));
  }

  /** True the first time `round` is seen. */
  roundSeen(round: number, members: number, deadline: number): boolean {
    const r = this.rounds.get(round);
    if (r) {
      r.members = Math.max(r.members, members);
      return false;
    }
    this.rounds.set(round, { startAt: Date.now(), members, deadline, left: 0 });
    return true;
  }

  /** True the first time `round`'s commit is seen: the round's costs are read here. */
  commitSeen(round: number, included: number, delivered: number, validatorLag: number): boolean {
    const r = this.rounds.get(round);
    if (!r || r.commitAt !== undefined) return false;
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    Object.assign(r, {
      commitAt: Date.now(), included, delivered, validatorLag,
      processCpuMs: (cpu.user + cpu.system) / 1000,
      coordinatorMs: this.coordinatorMs - this.coordinatorMark,
      rssMB: process.memoryUsage().rss / 2 ** 20,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    });
    this.coordinatorMark = this.coordinatorMs;
    return true;
  }

  /** `count` members of `round` will leave during it (the leave fault). */
  leaving(round: number, count: number): void {
    const r = this.rounds.get(round);
    if (r) r.left += count;
  }

  commitAt(round: number): number | undefined {
    return this.rounds.get(round)?.commitAt;
  }

  applied(round: number): void {
    const r = this.rounds.get(round);
    if (r) r.lastAppliedAt = Date.now();
  }

  refused(what: string): void {
    this.refusals[what] = (this.refusals[what] ?? 0) + 1;
  }

  rows(ctx: SimContext, engines: SimValidatorEngine[], rounds: number): RoundRow[] {
    const out: RoundRow[] = [];
    for (let round = 0; round < rounds; round++) {
      const r = this.rounds.get(round);
      if (!r) continue;
      const bytes = [...(ctx.bytes.get(round)?.values() ?? [])];
      const prints = new Set(ctx.fingerprints.get(round)?.values() ?? []);
      const engine = engines.map((e) => e.fingerprints.get(round + 1)).find((f) => f !== undefined);
      const sources = ctx.sources.get(round) ?? { store: 0, neighbour: 0 };
      out.push({
        round,
        durationMs: r.commitAt !== undefined ? r.commitAt - r.startAt : null,
        closedBeforeDeadline: r.commitAt !== undefined && r.commitAt <= r.deadline,
        applyMs: r.lastAppliedAt !== undefined && r.commitAt !== undefined ? r.lastAppliedAt - r.commitAt : null,
        members: r.members,
        left: r.left,
        committed: r.included ?? 0,
        delivered: r.delivered ?? 0,
        upMedian: median(bytes.map((b) => b.up)),
        upMax: Math.max(0, ...bytes.map((b) => b.up)),
        downMedian: median(bytes.map((b) => b.down)),
        downMax: Math.max(0, ...bytes.map((b) => b.down)),
        heldMax: Math.max(0, ...bytes.map((b) => b.held)),
        fromStore: sources.store,
        fromNeighbours: sources.neighbour,
        controlBytes: ctx.control.get(round) ?? 0,
        controlHttpBytes: ctx.controlHttp.get(round) ?? 0,
        processCpuMs: r.processCpuMs ?? 0,
        coordinatorMs: r.coordinatorMs ?? 0,
        rssMB: r.rssMB ?? 0,
        peakRssMB: r.peakRssMB ?? 0,
        validatorLag: r.validatorLag ?? 0,
        replicas: ctx.fingerprints.get(round)?.size ?? 0,
        fingerprints: prints.size,
        engineAgrees: engine === undefined || prints.size === 0 ? null : prints.size === 1 && prints.has(engine),
      });
    }
    return out;
  }
}
