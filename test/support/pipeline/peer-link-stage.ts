// A StageLink over a WebRTC PeerLink (src/net/peer-link.ts): every hand-off travels inside a
// signed envelope (src/net/envelope.ts, DESIGN.md "Wire"), so a stage accepts activations
// only from the peer it was wired to, for this run, this round and the right neighbour stage.
//
// Outgoing: each encoded hand-off (activation-codec.ts) is sealed with this peer's hotkey, as
// kind 'activations' (forward) or 'activation-grads' (backward) from the codec header's kind,
// with the run id, the current round and this peer's stage.
//
// Incoming, in order: the envelope itself (size, magic, version, type, structure, exact
// length, run id, payload hash, signature: openEnvelope, reasons are EnvelopeError's), then
//   'sender'   signed by someone other than the remote this link was opened to
//   'kind'     not the kind that flows this way (activations from upstream, grads from
//              downstream), or a payload whose codec kind disagrees with its envelope
//   'round'    an envelope round other than the current round, or a payload whose codec
//              round disagrees with its envelope
//   'stage'    the sender does not claim the remote's stage (previous stage for activations,
//              next for gradients)
//   'payload'  the payload is not a hand-off (its codec header does not parse)
// Anything that fails is dropped and counted in `dropped` by reason, never delivered; only
// the payload of what passes goes on to the handler, where the stage decodes and validates
// it in full (shape, step, micro-batch, CRC, values). Environment-free.
import { EnvelopeError, type MessageKind, openEnvelope, sealEnvelope } from '../../../src/net/envelope.ts';
import type { PeerLink } from '../../../src/net/peer-link.ts';
import type { Hotkey } from '../../../src/wallet/keys.ts';
import { ActivationError, type ActivationKind, peekActivationHeader } from '../../../src/pipeline/activation-codec.ts';
import type { StageLink } from './link.ts';

export type PeerStageDropReason =
  | EnvelopeError['reason'] | 'sender' | 'kind' | 'round' | 'stage' | 'payload';

export interface PeerStageLinkOptions {
  /** The connection to the neighbouring stage's peer (connecting or connected). */
  link: PeerLink;
  /** This peer's key: it signs everything sent. */
  key: Hotkey;
  run: string;
  /** This peer's stage index. */
  stage: number;
  /**
   * Where the remote sits: 'upstream' (stage − 1: activations arrive, gradients leave) or
   * 'downstream' (stage + 1: activations leave, gradients arrive).
   */
  remoteIs: 'upstream' | 'downstream';
  /** The remote's ss58 address: the only sender accepted. */
  remoteAddress: string;
  /** The current round, read at every send and receive (a number: fixed until setRound). */
  round: number | (() => number);
  /** The largest hand-off accepted (PipelineStage.maxMessageBytes); larger envelopes are refused unread. */
  maxPayloadBytes: number;
}

const ENVELOPE_KIND: Record<ActivationKind, MessageKind> = { activations: 'activations', grads: 'activation-grads' };

export interface PeerStageLinkStats {
  sent: number;
  delivered: number;
  /** Sends the PeerLink refused (it closed before the message went out). */
  sendFailures: number;
}

export class PeerStageLink implements StageLink {
  /** Received messages dropped, by reason (see the header). */
  readonly dropped: Partial<Record<PeerStageDropReason, number>> & Record<string, number> = {};
  readonly stats: PeerStageLinkStats = { sent: 0, delivered: 0, sendFailures: 0 };
  readonly remoteStage: number;
  /** The kind that arrives on this link, and the one that leaves. */
  readonly incomingKind: ActivationKind;
  readonly outgoingKind: ActivationKind;
  private handler: ((bytes: Uint8Array) => void) | null = null;
  private closeHandler: ((reason: string) => void) | null = null;
  private queued: Uint8Array[] = [];
  private roundValue: number | (() => number);

  constructor(readonly options: PeerStageLinkOptions) {
    const { stage, remoteIs, maxPayloadBytes } = options;
    if (!Number.isInteger(stage) || stage < 0 || stage > 0xffff) throw new RangeError(`PeerStageLink: stage must be a u16, got ${stage}`);
    if (remoteIs !== 'upstream' && remoteIs !== 'downstream') throw new RangeError(`PeerStageLink: remoteIs must be 'upstream' or 'downstream', got '${String(remoteIs)}'`);
    if (remoteIs === 'upstream' && stage === 0) throw new RangeError('PeerStageLink: stage 0 has no upstream');
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) throw new RangeError(`PeerStageLink: maxPayloadBytes must be a positive integer, got ${maxPayloadBytes}`);
    this.remoteStage = remoteIs === 'upstream' ? stage - 1 : stage + 1;
    this.incomingKind = remoteIs === 'upstream' ? 'activations' : 'grads';
    this.outgoingKind = remoteIs === 'upstream' ? 'grads' : 'activations';
    this.roundValue = options.round;
    options.link.onMessage((m) => this.receive(m));
    options.link.onClose((reason) => this.closeHandler?.(reason));
  }

  get round(): number {
    return typeof this.roundValue === 'function' ? this.roundValue() : this.roundValue;
  }

  /** Moves the link to `round` (replaces a round function given to the constructor). */
  setRound(round: number): void {
    if (!Number.isInteger(round) || round < 0 || round > 0xffffffff) throw new RangeError(`round must be a u32, got ${round}`);
    this.roundValue = round;
  }

  get closed(): boolean {
    return this.options.link.closeReason !== null;
  }

  /** Total dropped messages. */
  get droppedCount(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  /**
   * Seals one hand-off and queues it on the PeerLink. Throws once the link is closed, or when
   * `bytes` is not a hand-off of the kind that leaves this way or of the current round (a
   * local bug: the sender learns it at once).
   */
  send(bytes: Uint8Array): void {
    if (this.closed) throw new Error(`PeerStageLink: send on a closed link (${this.options.link.closeReason})`);
    const h = peekActivationHeader(bytes);
    if (h.kind !== this.outgoingKind) throw new Error(`PeerStageLink: ${h.kind} cannot leave towards the ${this.options.remoteIs} stage (only ${this.outgoingKind})`);
    const round = this.round;
    if (h.round !== round) throw new Error(`PeerStageLink: a hand-off of round ${h.round} in round ${round}`);
    const env = sealEnvelope(this.options.key, { kind: ENVELOPE_KIND[h.kind], run: this.options.run, round, stage: this.options.stage }, bytes);
    this.stats.sent++;
    this.options.link.send(env).catch(() => {
      this.stats.sendFailures++; // closed meanwhile: onClose tells the user
    });
  }

  onMessage(handler: (bytes: Uint8Array) => void): void {
    this.handler = handler;
    const backlog = this.queued;
    this.queued = [];
    for (const m of backlog) handler(m);
  }

  onClose(handler: (reason: string) => void): void {
    this.closeHandler = handler;
  }

  close(reason = 'closed'): void {
    this.options.link.close(reason);
  }

  private receive(bytes: Uint8Array): void {
    const payload = this.verify(bytes);
    if (!payload) return;
    this.stats.delivered++;
    if (this.handler) this.handler(payload);
    else this.queued.push(payload);
  }

  /** The payload of a message that passes every check, or null (counted). */
  private verify(bytes: Uint8Array): Uint8Array | null {
    const { run, remoteAddress, maxPayloadBytes } = this.options;
    let opened;
    try {
      opened = openEnvelope(bytes, { run, maxPayloadBytes });
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      return this.drop(e.reason);
    }
    const { header, payload } = opened;
    if (header.sender !== remoteAddress) return this.drop('sender');
    if (header.kind !== ENVELOPE_KIND[this.incomingKind]) return this.drop('kind');
    if (header.round !== this.round) return this.drop('round');
    if (header.stage !== this.remoteStage) return this.drop('stage');
    let h;
    try {
      h = peekActivationHeader(payload, maxPayloadBytes);
    } catch (e) {
      if (!(e instanceof ActivationError)) throw e;
      return this.drop('payload');
    }
    if (h.kind !== this.incomingKind) return this.drop('kind');
    if (h.round !== header.round) return this.drop('round');
    return payload;
  }

  private drop(reason: PeerStageDropReason): null {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    return null;
  }
}
