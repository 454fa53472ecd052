// The coordinator's control plane for membership: what joins and leaves cost the swarm. Each
// peer gets at most `neighbours` links (neighbours.ts) and only the peers whose set changed
// are told (their whole, bounded, set); signaling is relayed only between neighbours; while
// no round runs the swarm hears counts (`swarm`), coalesced: at most one message per peer per
// SWARM_MIN_INTERVAL_MS, and no more than SWARM_MESSAGES_PER_SECOND in all (a large swarm
// hears them less often), so a storm of joins costs each join a constant number of bytes.
// With a TURN server (turn.ts) each joining member first gets its STUN/TURN credentials, and
// a fresh grant before the old one expires; a peer that left gets no more.
import type { ServerMessage } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { NeighbourGraph } from './neighbours.ts';
import type { TurnGrants } from './turn.ts';

/** The swarm's counts reach each peer at most this often while no round runs. */
export const SWARM_MIN_INTERVAL_MS = 1000;
/** …and the coordinator sends at most this many `swarm` messages per second in all. */
export const SWARM_MESSAGES_PER_SECOND = 500;

/** What the control plane needs from the coordinator. */
export interface ControlPlaneContext {
  readonly config: RunConfig;
  readonly now: () => number;
  /** To one joined peer (ignored when it is gone). */
  send(address: string, m: ServerMessage): void;
  /** To every joined peer. */
  broadcast(m: ServerMessage): void;
  /** Joined peers, and those ready for the round awaited. */
  peerCount(): number;
  readyCount(): number;
  /** Whether no round runs (counts are sent only then) and the coordinator is not stopping. */
  waiting(): boolean;
  /** The run's TURN credentials, when the coordinator has a TURN server (--turn). */
  readonly turn?: TurnGrants;
}

export class ControlPlane {
  /** Who links with whom (a pipelined run: everyone, see neighbours.ts). */
  private readonly graph: NeighbourGraph;
  /** Whether the counts changed since they were last sent, and when that was. */
  private swarmDirty = false;
  private swarmSentAt = -Infinity;

  constructor(private readonly ctx: ControlPlaneContext) {
    this.graph = new NeighbourGraph(ctx.config.stages > 1 ? Infinity : ctx.config.neighbours, ctx.config.seed);
  }

  /** A peer joined (or a hotkey reconnected: it keeps its links and hears its set again). */
  joined(address: string): void {
    // Credentials before neighbours: the member dials its links with them.
    if (this.ctx.turn) this.ctx.send(address, { type: 'ice', ...this.ctx.turn.grant(address, this.ctx.now()) });
    this.tellNeighbours(this.graph.add(address));
    this.countsChanged();
  }

  left(address: string): void {
    this.ctx.turn?.forget(address);
    this.tellNeighbours(this.graph.remove(address));
    this.countsChanged();
  }

  /** Whether a signal from `from` may be relayed to `to`: only between neighbours. */
  mayRelay(from: string, to: string): boolean {
    return this.graph.areLinked(from, to);
  }

  neighboursOf(address: string): string[] {
    return this.graph.neighboursOf(address);
  }

  /** The counts changed (a join, a leave, a peer ready, a round started or closed): sent now if allowed, else at a later tick. */
  countsChanged(): void {
    this.swarmDirty = true;
    this.flush();
  }

  /** One beat of the clock: counts held back are sent once their interval has passed. */
  tick(): void {
    this.flush();
    const turn = this.ctx.turn;
    if (!turn) return;
    const now = this.ctx.now();
    for (const address of turn.due(now)) this.ctx.send(address, { type: 'ice', ...turn.grant(address, now) });
  }

  /** How often the swarm hears its counts: at most once a second, and SWARM_MESSAGES_PER_SECOND in all. */
  private intervalMs(): number {
    return Math.max(SWARM_MIN_INTERVAL_MS, (1000 * this.ctx.peerCount()) / SWARM_MESSAGES_PER_SECOND);
  }

  private flush(): void {
    // While a round runs its members know what they need (the round); nobody hears counts.
    if (!this.swarmDirty || !this.ctx.waiting()) return;
    const now = this.ctx.now();
    if (now - this.swarmSentAt < this.intervalMs()) return;
    this.swarmDirty = false;
    this.swarmSentAt = now;
    this.ctx.broadcast({ type: 'swarm', peers: this.ctx.peerCount(), ready: this.ctx.readyCount(), need: this.ctx.config.minMembers });
  }

  /** Each peer named gets its whole (bounded) neighbour set. */
  private tellNeighbours(changed: Iterable<string>): void {
    for (const address of changed) this.ctx.send(address, { type: 'neighbours', neighbours: this.graph.neighboursOf(address) });
  }
}
