// Peer-message admission: every message another peer sends us over the mesh is opened and
// checked here before anything acts on it — a valid envelope of this run, signed by the peer
// it came from (a piece of an update too: the neighbour that serves it signs it; the gather
// checks its bytes against the commit), a neighbour, a kind that belongs in this run — then handed to its
// owner (the gather exchange, the pipeline's hand-offs, peer weights), which may refuse it
// too. A refused message is dropped and counted by reason, never thrown at the receiver.
// Environment-free.
import { EnvelopeError, openEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import type { HandoffKind } from '../pipeline/swarm-peer.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { OnEvent } from './events.ts';
import { handoffKind } from './pipelined-round.ts';

/** Why a message was refused: `reason` is the counter's name, `message` says it to a person. */
export interface Refusal {
  reason: string;
  message: string;
}

/** Refused messages, counted by reason (the commit event and the round's report carry them). */
export class Refusals {
  readonly byReason: Record<string, number> = {};

  constructor(private readonly onEvent: OnEvent) {}

  /** One message refused: counted and reported. */
  count(reason: string, from: string, message: string): void {
    this.add(reason, 1);
    this.onEvent({ event: 'rejected', from, reason, message });
  }

  /** `n` refused elsewhere (the pipeline counts its dropped hand-offs itself): counted only. */
  add(reason: string, n: number): void {
    this.byReason[reason] = (this.byReason[reason] ?? 0) + n;
  }

  get total(): number {
    return Object.values(this.byReason).reduce((a, b) => a + b, 0);
  }
}

/** Where admitted messages go; each may still refuse one (a Refusal) or act on it (null). */
export interface InboxRoutes {
  /** The run, once joined (before that, nothing is admitted or counted). */
  config(): RunConfig | undefined;
  /** Our neighbours (and a pipelined round's members), as the coordinator last listed them. */
  peers(): readonly string[];
  /** A piece of an update, served by neighbour `from` (a 'piece' envelope it signed). */
  piece(from: string, header: EnvelopeHeader, payload: Uint8Array): Refusal | null;
  /** A neighbour's have/want-list/list/want/refuse. */
  gather(from: string, payload: Uint8Array): Refusal | null;
  handoff(from: string, header: EnvelopeHeader, kind: HandoffKind, payload: Uint8Array): Refusal | null;
  weightsRequest(from: string, stage: number): void;
  /** A neighbour's which/holds/want/refuse about the run's checkpoint, and a range of one of its pieces (checkpoint-peers.ts). */
  checkpoint(from: string, payload: Uint8Array): Refusal | null;
  checkpointRange(from: string, header: EnvelopeHeader, payload: Uint8Array): Refusal | null;
  /** False: weights nobody asked for. */
  weights(from: string, round: number, payload: Uint8Array): boolean;
}

export class Inbox {
  constructor(
    private readonly routes: InboxRoutes,
    private readonly refusals: Refusals,
  ) {}

  /** A whole message from `from` (the mesh's link address, not yet believed). */
  admit(from: string, bytes: Uint8Array): void {
    const refusal = this.check(from, bytes);
    if (refusal) this.refusals.count(refusal.reason, from, refusal.message);
  }

  private check(from: string, bytes: Uint8Array): Refusal | null {
    const config = this.routes.config();
    if (!config) return null;
    let header: EnvelopeHeader;
    let payload: Uint8Array;
    try {
      ({ header, payload } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes }));
    } catch (e) {
      if (e instanceof EnvelopeError) return { reason: `envelope-${e.reason}`, message: e.message };
      throw e;
    }
    if (header.sender !== from) return { reason: 'wrong-sender', message: `signed by ${header.sender} but sent by ${from}` };
    if (!this.routes.peers().includes(from)) return { reason: 'unknown-member', message: `${from} is not a neighbour of ours in this run` };
    const handoff = handoffKind(header.kind);
    if (handoff) {
      if (config.stages === 1) return { reason: 'unexpected-kind', message: `'${header.kind}' in a run of one stage` };
      return this.routes.handoff(from, header, handoff, payload);
    }
    switch (header.kind) {
      case 'piece':
        return this.routes.piece(from, header, payload);
      case 'gather':
        return this.routes.gather(from, payload);
      case 'checkpoint':
        return this.routes.checkpoint(from, payload);
      case 'checkpoint-range':
        return this.routes.checkpointRange(from, header, payload);
      case 'weights-request':
        this.routes.weightsRequest(from, header.stage);
        return null;
      case 'weights':
        return this.routes.weights(from, header.round, payload) ? null : { reason: 'unexpected-kind', message: 'weights we did not ask for' };
      default:
        return { reason: 'unexpected-kind', message: `'${header.kind}' is not part of a data-parallel round` };
    }
  }
}
