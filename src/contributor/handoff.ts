// A pipelined run's hand-offs (activations, their gradients, control) on this contributor's
// side: passed to the round's pipeline while it runs; kept when they come for a round we have
// not started yet (a quicker peer started it) and handed over when we do; refused when stale
// or flooding. And the round itself: built from the announcement, fed what came early, run.
// Environment-free.
import { SwarmStepError, type HandoffKind } from '../pipeline/swarm-peer.ts';
import type { EnvelopeHeader } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { ModelReplica } from '../round/replica.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { OnEvent } from './events.ts';
import type { Refusal, Refusals } from './inbox.ts';
import { PipelinedRound } from './pipelined-round.ts';

/**
 * Hand-offs kept for rounds not started here: a few rounds' worth of micro-batches from every
 * other stage, not an unbounded queue a flooding peer could grow.
 */
export const MAX_EARLY_HANDOFFS = 4096;

interface EarlyHandoff {
  round: number;
  from: string;
  kind: HandoffKind;
  payload: Uint8Array;
}

export interface HandoffHost {
  key: Hotkey;
  config(): RunConfig;
  replica(): ModelReplica;
  mesh(): PeerMesh;
  /** The round whose θ_start we hold (the one we train next) and the coordinator's round. */
  held(): number;
  coordRound(): number;
  /** Whether an address is still in the run (the coordinator's peer list). */
  inRun(address: string): boolean;
  /** Round `r` closed (its commit came): our part in it is moot. */
  closed(r: number): boolean;
  exclusive<T>(fn: () => Promise<T> | T): Promise<T>;
  onEvent: OnEvent;
  refusals: Refusals;
}

export class Handoffs {
  private running: PipelinedRound | null = null;
  private early: EarlyHandoff[] = [];

  constructor(private readonly h: HandoffHost) {}

  /** A hand-off from a verified peer: to the running round, kept for a later one, or refused. */
  admit(from: string, header: EnvelopeHeader, kind: HandoffKind, payload: Uint8Array): Refusal | null {
    const { round } = header;
    const held = this.h.held();
    if (this.running && round === held) {
      this.running.receive(from, kind, payload);
      return null;
    }
    if (round < held || round > this.h.coordRound() + 1) return { reason: 'stale-round', message: `'${header.kind}' for round ${round}; we are at round ${held}` };
    if (this.early.length >= MAX_EARLY_HANDOFFS) return { reason: 'flood', message: 'too many hand-offs ahead of our round' };
    this.early = this.early.filter((e) => e.round >= held);
    this.early.push({ round, from, kind, payload });
    return null;
  }

  /** Ends the running round's step at once (stop, stage move, the round closed without us). */
  abort(reason: string): void {
    this.running?.abort(reason);
  }

  peerDown(address: string): void {
    this.running?.peerDown(address);
  }

  /** Round r's H pipelined steps, this peer holding its stage; the mean loss, or null if the round could not run or was cut short. */
  async train(r: number, members: readonly string[], stages: readonly number[]): Promise<number | null> {
    const config = this.h.config();
    const replica = this.h.replica();
    if (!PipelinedRound.covers(config, stages)) return null;
    const round = new PipelinedRound({
      replica, config, key: this.h.key, mesh: this.h.mesh(), round: r, members, stages,
      inRun: (p) => this.h.inRun(p),
      onStep: (i, s) => {
        const tokens = s.processed * config.batch * config.seq;
        if (s.loss !== null) this.h.onEvent({ event: 'step', round: r, step: i + 1, loss: s.loss, tokensPerSecond: (tokens * 1000) / s.wallMs, busy: s.busyMs / s.wallMs, rerouted: s.rerouted, dropped: s.dropped });
        if (this.h.closed(r)) this.abort('the round closed without us');
      },
    });
    this.running = round;
    for (const m of this.early.splice(0)) if (m.round === r) round.receive(m.from, m.kind, m.payload);
    try {
      return await round.run();
    } catch (e) {
      if (!(e instanceof SwarmStepError)) throw e;
      this.h.onEvent({ event: 'warning', text: `round ${r} cut short: ${e.message}` });
      await this.h.exclusive(() => replica.discardRound());
      return null;
    } finally {
      this.running = null;
      // hand-offs the pipeline dropped (bad shape, wrong round, unknown peer …) count as refused
      for (const [reason, n] of Object.entries(round.peer.dropped)) this.h.refusals.add(`handoff-${reason}`, n);
    }
  }
}
