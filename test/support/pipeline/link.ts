// The transport between two neighbouring pipeline stages: an ordered, reliable channel of
// whole messages (encoded hand-offs, activation-codec.ts). The network layer provides one
// over a WebRTC PeerLink (framing, backpressure and signed envelopes are its business); here
// is the in-process loopback pair the tests and a one-machine pipeline use.
//
// A StageLink carries bytes only: it neither decodes nor trusts them; the receiving stage
// decodes and validates every message (decodeActivations) and counts what it drops.
// Environment-free.

/** One end of a link between two stages. */
export interface StageLink {
  /** Queues one whole message for the other end. Throws once the link is closed. */
  send(bytes: Uint8Array): void;
  /** Sets the handler of received messages (one handler; a later call replaces it). */
  onMessage(handler: (bytes: Uint8Array) => void): void;
  /** Closes both directions; the other end's onClose handler runs. Idempotent. */
  close(reason?: string): void;
  onClose(handler: (reason: string) => void): void;
  readonly closed: boolean;
}

export interface LoopbackStats {
  messages: number;
  bytes: number;
}

class LoopbackEnd implements StageLink {
  peer!: LoopbackEnd;
  private handler: ((bytes: Uint8Array) => void) | null = null;
  private closeHandler: ((reason: string) => void) | null = null;
  /** Messages that arrived before a handler was set, delivered when one is. */
  private queued: Uint8Array[] = [];
  closed = false;
  readonly sent: LoopbackStats = { messages: 0, bytes: 0 };

  send(bytes: Uint8Array): void {
    if (this.closed) throw new Error('StageLink: send on a closed link');
    if (!(bytes instanceof Uint8Array)) throw new TypeError('StageLink: send takes a Uint8Array');
    const copy = bytes.slice(); // the sender may reuse its buffer; the receiver owns its copy
    this.sent.messages++;
    this.sent.bytes += copy.length;
    const peer = this.peer;
    // asynchronous like a network: never re-enters the sender
    queueMicrotask(() => peer.deliver(copy));
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
    if (this.closed) return;
    this.closed = true;
    this.peer.close(reason);
    this.closeHandler?.(reason);
  }

  private deliver(bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.handler) this.handler(bytes);
    else this.queued.push(bytes);
  }
}

/** Two connected in-process ends: what one sends, the other receives, in order, asynchronously. */
export function loopbackPair(): [StageLink & { readonly sent: LoopbackStats }, StageLink & { readonly sent: LoopbackStats }] {
  const a = new LoopbackEnd();
  const b = new LoopbackEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
