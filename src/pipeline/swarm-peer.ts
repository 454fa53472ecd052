// One contributor's part of a pipelined swarm's inner step (SWARM-style stochastic wiring):
// S stages, each held by one or more peers; any peer of stage s may send a micro-batch to
// any peer of stage s+1, and the gradient comes back along the same path.
//
//   stage 0 peer i:  injects micro-batches m = 0..M−1 (id = (i·M + m)·8), at most S in flight
//                    (1F1B's warm-up depth), each to the next-stage peer with the fewest of
//                    its micro-batches outstanding (ties broken by a seeded hash); backwards
//                    each as its gradient returns.
//   middle stages:   forward whatever arrives, route it on the same way, backward when the
//                    gradient comes back and return it to the peer the input came from.
//   last stage:      forward, loss (scaled 1/M: the gradient of a replica is a mean over the
//                    micro-batches of a data source, as in a fixed pipeline), backward at once.
//   Backwards go before forwards (1F1B): in-flight inputs stay few.
//
// Completion without a global count: a peer tells each next-stage peer 'done' once it will
// send nothing more this step — stage 0 once all its micro-batches' gradients are back,
// another stage once every live previous-stage peer said done and its own forwarded
// micro-batches are all back. Links are ordered, so 'done' arrives after the last hand-off.
// Then every peer sends every other its Σg² (and the last stage its losses) and clips by
// √(Σ over stages of the mean Σg² of that stage's replicas): with one peer per stage that is
// exactly the whole model's global norm, so such a pipeline steps as one process does.
//
// A peer that vanishes (transport.isUp false, or peerDown): what was sent to it and not
// answered is re-sent to another live peer of its stage as a new attempt (id + 1), or, when
// none is left, dropped for this step — the 'drop' travels back so the stages before stop
// waiting; nobody waits for a dead peer's 'done' or norm. Every received message is checked
// (header kind, round, step; then the stage decodes it in full); a bad one is dropped and
// counted in `dropped` by reason. The control messages, the norm rule and the routing
// tie-break are swarm-messages.ts. Environment-free.
//
// Over ~400 lines on purpose: one state machine — the micro-batch phase, routing and
// re-routing, and the norm exchange all read and change the same per-step state (what is
// out, to whom, what came from whom), so they stay in one class.
import { ActivationError, peekActivationHeader, withMicroId } from './activation-codec.ts';
import type { MicroBatchData, PipelineStage } from './stage.ts';
import {
  SwarmStepError, combineNorms, encodeControl, parseControl, tieBreak,
  type Control, type HandoffKind, type NormReport, type SwarmTransport,
} from './swarm-messages.ts';

export { SwarmStepError, type HandoffKind, type SwarmTransport } from './swarm-messages.ts';

export interface SwarmPeerOptions {
  stage: PipelineStage;
  /** This peer's stage index. */
  index: number;
  /** The round's members by stage (sorted addresses); this peer among members[index]. */
  members: readonly (readonly string[])[];
  me: string;
  transport: SwarmTransport;
  /** M: micro-batches each stage-0 peer injects per step. */
  micros: number;
  round: number;
  /** Seeds the routing tie-break. */
  seed: number;
  /** Give up a step after this long without any progress (default DEFAULT_STALL_MS, 120 s). */
  stallMs?: number;
}

export interface SwarmStepResult {
  step: number;
  /** Mean loss of the step's micro-batches over the last stage's peers; null if none reported. */
  loss: number | null;
  /** The norm that clipped (see the header). */
  gradNorm: number;
  /** Micro-batches this peer backwarded. */
  processed: number;
  /** Micro-batches this peer gave up (no live peer left downstream). */
  dropped: number;
  rerouted: number;
  /** Whether this peer's parameters were stepped (false: it processed nothing). */
  applied: boolean;
  busyMs: number;
  wallMs: number;
}

interface Outgoing {
  inputId: number;
  to: string;
  bytes: Uint8Array;
  gradQueued: boolean;
}

/** Tries per micro-batch: a re-sent one gets id + 1, so ids step by this much. */
const ATTEMPTS = 8;
/** Messages kept for a step not started yet, at most (a quicker peer may be ahead). */
const MAX_BUFFERED_PER_STEP = 4096;
/** How far ahead of ours a message's step may be: steps are in lockstep, so further is not honest. */
const MAX_STEPS_AHEAD = 2;
const DEFAULT_STALL_MS = 120_000;
/** While idle, links are checked this often even if nothing arrives. */
const IDLE_CHECK_MS = 500;

export class SwarmPeer {
  /** Received messages dropped, by reason (ActivationError reasons, 'stale', 'control', 'unknown-peer' …). */
  readonly dropped: Record<string, number> = {};
  readonly stats = { busyMs: 0, rerouted: 0, droppedMicros: 0 };
  private readonly down = new Set<string>();
  private readonly buffered = new Map<number, { from: string; kind: HandoffKind; bytes: Uint8Array }[]>();
  private wake: (() => void) | null = null;
  private current = -1;
  private phase: 'idle' | 'micro' | 'norm' = 'idle';
  // per-step state
  private forwards: { from: string; bytes: Uint8Array }[] = [];
  private backwards: { outId: number; bytes: Uint8Array | null }[] = [];
  private inputs = new Map<number, string | null>();
  private outgoing = new Map<number, Outgoing>();
  private upstreamDone = new Set<string>();
  private norms = new Map<string, NormReport>();
  private injected = 0;
  private processed = 0;
  private droppedMicros = 0;
  private lastProgress = 0;

  constructor(readonly o: SwarmPeerOptions) {
    const { index, members, me, micros } = o;
    if (!Number.isInteger(index) || index < 0 || index >= members.length) throw new RangeError(`stage ${index} of ${members.length}`);
    if (!members[index].includes(me)) throw new Error(`SwarmPeer: ${me} is not a member of stage ${index}`);
    if (members.some((m) => m.length === 0)) throw new Error('SwarmPeer: every stage needs at least one peer');
    if (!Number.isInteger(micros) || micros < 1 || micros * members[0].length * ATTEMPTS > 0xffffffff) throw new RangeError(`micro-batches must be an integer ≥ 1, got ${micros}`);
    if (o.stage.isFirst !== (index === 0) || o.stage.isLast !== (index === members.length - 1)) throw new Error(`SwarmPeer: stage [${o.stage.from}, ${o.stage.to}) cannot be stage ${index} of ${members.length}`);
  }

  private get stage(): PipelineStage {
    return this.o.stage;
  }

  private get upstreamPeers(): readonly string[] {
    return this.o.index > 0 ? this.o.members[this.o.index - 1] : [];
  }

  private get downstreamPeers(): readonly string[] {
    return this.o.index < this.o.members.length - 1 ? this.o.members[this.o.index + 1] : [];
  }

  private isUp(peer: string): boolean {
    return peer === this.o.me || (!this.down.has(peer) && this.o.transport.isUp(peer));
  }

  /** Hands a received message to the peer (the transport owner checked who signed it). */
  receive(from: string, kind: HandoffKind, bytes: Uint8Array): void {
    if (!this.o.members.some((m) => m.includes(from)) || from === this.o.me) return this.count('unknown-peer');
    let step: number;
    try {
      step = kind === 'control' ? parseControl(bytes).step : this.peekStep(kind, bytes);
    } catch (e) {
      if (e instanceof ActivationError) return this.count(e.reason);
      if (e instanceof SwarmStepError) return this.count('control');
      throw e;
    }
    if (step < this.current || (step === this.current && this.phase === 'idle')) return this.count('stale');
    if (step > this.current) {
      // A quicker peer may be a step ahead; nobody honest is further (steps are in lockstep).
      if (step > this.current + MAX_STEPS_AHEAD) return this.count('step');
      const q = this.buffered.get(step) ?? [];
      if (q.length >= MAX_BUFFERED_PER_STEP) return this.count('flood');
      q.push({ from, kind, bytes });
      this.buffered.set(step, q);
      return;
    }
    this.accept(from, kind, bytes);
    this.poke();
  }

  /** A peer is gone for the rest of the round: re-route or drop what it held, stop waiting for it. */
  peerDown(peer: string): void {
    if (peer === this.o.me || this.down.has(peer)) return;
    this.down.add(peer);
    if (this.phase === 'micro') this.rerouteFrom(peer);
    this.poke();
  }

  /** Runs inner step `step` at learning rate `lr`; stage 0 draws micro-batch m from `data(m)`. */
  async step(step: number, lr: number, data?: (micro: number) => MicroBatchData): Promise<SwarmStepResult> {
    const t0 = performance.now();
    const busy0 = this.stats.busyMs;
    if (this.stage.isFirst && !data) throw new Error('SwarmPeer: stage 0 needs a data source');
    if (step <= this.current) throw new Error(`SwarmPeer: step ${step} after step ${this.current}`);
    this.begin(step);
    for (const m of this.buffered.get(step) ?? []) this.accept(m.from, m.kind, m.bytes);
    this.buffered.delete(step);
    for (const s of [...this.buffered.keys()]) if (s < step) this.buffered.delete(s);
    for (const p of this.down) this.rerouteFrom(p);

    // micro-batch phase
    for (;;) {
      if (await this.workOnce(data)) continue;
      if (this.microPhaseDone()) break;
      await this.idle();
    }
    for (const p of this.downstreamPeers) if (this.isUp(p)) this.sendControl(p, { t: 'done', round: this.o.round, step });
    const applied = this.stage.closeStep();
    const sq = applied ? await this.timed(() => this.stage.gradNormSquared()) : 0;
    const mine: NormReport = { sq, processed: this.processed, lossSum: 0, lossCount: 0 };
    if (this.stage.isLast) {
      for (const l of this.stage.stepLosses) {
        if (l === undefined) continue;
        mine.lossSum += l;
        mine.lossCount++;
      }
    }
    this.phase = 'norm';
    this.norms.set(this.o.me, mine);
    const everyone = this.o.members.flat().filter((p) => p !== this.o.me);
    for (const p of everyone) if (this.isUp(p)) this.sendControl(p, { t: 'norm', round: this.o.round, step, ...mine });
    this.lastProgress = performance.now();
    while (!everyone.every((p) => this.norms.has(p) || !this.isUp(p))) await this.idle();

    const { gradNorm, loss } = combineNorms(this.o.members, this.norms);
    if (applied) this.stage.applyStep(lr, gradNorm);
    const result: SwarmStepResult = {
      step, loss, gradNorm, processed: this.processed, dropped: this.droppedMicros,
      rerouted: this.stats.rerouted, applied, busyMs: this.stats.busyMs - busy0, wallMs: performance.now() - t0,
    };
    this.phase = 'idle';
    return result;
  }

  /** Stops waiting: a pending step() rejects. */
  abort(reason: string): void {
    this.abortReason = reason;
    this.poke();
  }

  private abortReason: string | null = null;

  // ---- the micro-batch phase ----

  private begin(step: number): void {
    this.current = step;
    this.phase = 'micro';
    this.forwards = [];
    this.backwards = [];
    this.inputs = new Map();
    this.outgoing = new Map();
    this.upstreamDone = new Set();
    this.norms = new Map();
    this.injected = 0;
    this.processed = 0;
    this.droppedMicros = 0;
    this.stats.rerouted = 0;
    this.lastProgress = performance.now();
    this.stage.beginOpenStep(step, 1 / this.o.micros);
  }

  /** Does one piece of work (a backward first, then a forward); false when there is none. */
  private async workOnce(data?: (micro: number) => MicroBatchData): Promise<boolean> {
    const b = this.backwards.shift();
    if (b) {
      await this.backwardOne(b.outId, b.bytes);
      return true;
    }
    const window = this.o.members.length - this.o.index;
    if (this.stage.isFirst && this.injected < this.o.micros && this.outgoing.size < window) {
      const m = this.injected++;
      const id = (this.o.members[0].indexOf(this.o.me) * this.o.micros + m) * ATTEMPTS;
      const batch = data!(m);
      const out = await this.timed(() => this.stage.forwardMicro({ micro: id, tokens: batch.tokens, targets: batch.targets }));
      this.inputs.set(id, null);
      this.afterForward(id, out);
      return true;
    }
    const f = this.forwards.shift();
    if (f) {
      let out;
      try {
        out = await this.timed(() => this.stage.forwardMicro(f.bytes));
      } catch (e) {
        if (!(e instanceof ActivationError)) throw e;
        this.count(e.reason);
        return true;
      }
      this.inputs.set(out.micro, f.from);
      this.afterForward(out.micro, out);
      return true;
    }
    return false;
  }

  private afterForward(id: number, out: Awaited<ReturnType<PipelineStage['forwardMicro']>>): void {
    this.lastProgress = performance.now();
    if (out.kind === 'loss') {
      this.backwards.unshift({ outId: id, bytes: null }); // the last stage's backward follows its forward
      return;
    }
    this.route(id, id, out.bytes, null);
  }

  /** Sends an output to the next-stage peer with the least outstanding work, or drops it. */
  private route(inputId: number, outId: number, bytes: Uint8Array, avoid: string | null): void {
    const live = this.downstreamPeers.filter((p) => p !== avoid && this.isUp(p));
    const load = (p: string) => [...this.outgoing.values()].filter((x) => x.to === p).length;
    live.sort((a, b) => load(a) - load(b) || tieBreak(this.o.seed, outId, a) - tieBreak(this.o.seed, outId, b));
    for (const to of live) {
      if (this.o.transport.send(to, 'activations', bytes)) {
        this.outgoing.set(outId, { inputId, to, bytes, gradQueued: false });
        return;
      }
      this.down.add(to);
    }
    this.giveUp(inputId);
  }

  private async backwardOne(outId: number, grad: Uint8Array | null): Promise<void> {
    const o = grad ? this.outgoing.get(outId) : undefined;
    if (grad && !o) return; // dropped or re-routed meanwhile
    const inputId = o ? o.inputId : outId;
    let up: Uint8Array | null;
    try {
      const g = grad && inputId !== outId ? withMicroId(grad, inputId) : grad;
      up = await this.timed(() => this.stage.backwardMicro(inputId, g ?? undefined));
    } catch (e) {
      if (!(e instanceof ActivationError)) throw e;
      this.count(e.reason);
      // A bad gradient: ask another peer of that stage (or drop the micro-batch).
      if (o) {
        o.gradQueued = false;
        this.resend(outId, inputId);
      }
      return;
    }
    if (o) this.outgoing.delete(outId);
    this.processed++;
    this.lastProgress = performance.now();
    const from = this.inputs.get(inputId);
    this.inputs.delete(inputId);
    if (up && from && this.isUp(from)) this.o.transport.send(from, 'grads', up);
  }

  private resend(outId: number, inputId: number): void {
    const o = this.outgoing.get(outId);
    const bytes = o?.bytes;
    if (!bytes) return this.giveUp(inputId);
    this.outgoing.delete(outId);
    const attempt = (outId % ATTEMPTS) + 1;
    if (attempt >= ATTEMPTS) return this.giveUp(inputId);
    this.stats.rerouted++;
    const nextId = outId - (outId % ATTEMPTS) + attempt;
    this.route(inputId, nextId, withMicroId(bytes, nextId), o!.to);
  }

  /** What was sent to a vanished peer and not answered goes to another peer of its stage. */
  private rerouteFrom(peer: string): void {
    for (const [outId, o] of [...this.outgoing]) {
      if (o.to === peer && !o.gradQueued) this.resend(outId, o.inputId);
    }
  }

  /** A micro-batch nobody downstream can take: forget it here and tell the peer it came from. */
  private giveUp(inputId: number): void {
    this.stage.dropMicro(inputId);
    this.droppedMicros++;
    this.stats.droppedMicros++;
    const from = this.inputs.get(inputId);
    this.inputs.delete(inputId);
    if (from && this.isUp(from)) this.sendControl(from, { t: 'drop', round: this.o.round, step: this.current, id: inputId });
  }

  private microPhaseDone(): boolean {
    if (this.forwards.length > 0 || this.backwards.length > 0 || this.outgoing.size > 0 || this.inputs.size > 0) return false;
    if (this.stage.isFirst) return this.injected === this.o.micros;
    return this.upstreamPeers.every((p) => this.upstreamDone.has(p) || !this.isUp(p));
  }

  // ---- receiving ----

  private accept(from: string, kind: HandoffKind, bytes: Uint8Array): void {
    if (kind === 'activations') {
      if (!this.upstreamPeers.includes(from)) return this.count('stage');
      this.forwards.push({ from, bytes });
    } else if (kind === 'grads') {
      if (!this.downstreamPeers.includes(from)) return this.count('stage');
      const outId = peekActivationHeader(bytes).micro;
      const o = this.outgoing.get(outId);
      if (!o || o.to !== from || o.gradQueued) return this.count('micro');
      o.gradQueued = true;
      this.backwards.push({ outId, bytes });
    } else {
      const c = parseControl(bytes);
      if (c.round !== this.o.round) return this.count('round');
      if (c.t === 'done') {
        if (!this.upstreamPeers.includes(from)) return this.count('stage');
        this.upstreamDone.add(from);
      } else if (c.t === 'drop') {
        const o = this.outgoing.get(c.id);
        if (!o || o.to !== from || o.gradQueued) return this.count('micro');
        this.outgoing.delete(c.id);
        this.giveUp(o.inputId);
      } else {
        this.norms.set(from, { sq: c.sq, processed: c.processed, lossSum: c.lossSum, lossCount: c.lossCount });
      }
    }
  }

  private peekStep(kind: HandoffKind, bytes: Uint8Array): number {
    const h = peekActivationHeader(bytes, this.stage.maxMessageBytes);
    if (h.kind !== kind) throw new ActivationError('kind', `${h.kind} sent as ${kind}`);
    if (h.round !== this.o.round) throw new ActivationError('round', `a hand-off of round ${h.round} in round ${this.o.round}`);
    return h.step;
  }

  private sendControl(to: string, c: Control): void {
    this.o.transport.send(to, 'control', encodeControl(c));
  }

  // ---- waiting ----

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async idle(): Promise<void> {
    if (this.abortReason) throw new SwarmStepError(this.abortReason);
    const stall = this.o.stallMs ?? DEFAULT_STALL_MS;
    const left = this.lastProgress + stall - performance.now();
    if (left <= 0) throw new SwarmStepError(`step ${this.current}: no progress for ${Math.round(stall / 1000)} s (${this.describeWait()})`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(left, IDLE_CHECK_MS));
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    // Links can die without a peerDown call: notice it here.
    for (const [outId, o] of [...this.outgoing]) if (!o.gradQueued && !this.isUp(o.to)) this.resend(outId, o.inputId);
  }

  private describeWait(): string {
    if (this.phase === 'norm') return `waiting for norms from ${this.o.members.flat().filter((p) => p !== this.o.me && !this.norms.has(p) && this.isUp(p)).join(', ')}`;
    return `${this.outgoing.size} micro-batch(es) out, ${this.inputs.size} in, waiting for 'done' from ${this.upstreamPeers.filter((p) => !this.upstreamDone.has(p) && this.isUp(p)).join(', ') || 'nobody'}`;
  }

  private async timed<T>(fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      this.stats.busyMs += performance.now() - t;
    }
  }

  private count(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }
}
