// A contributor's connection to the coordinator: the join handshake (sign the challenge with
// the hotkey), then control messages in, control and binary envelopes out. Environment-free:
// the caller passes how to open a WebSocket (the page's WebSocket, or the `ws` package).
import { toHex } from '../base/hex.ts';
import { PROTOCOL_VERSION, joinChallenge, parseServerMessage, type Capacity, type ClientMessage, type RunState, type ServerMessage } from '../protocol/messages.ts';
import type { Hotkey } from '../wallet/keys.ts';

/** The part of the browser WebSocket API used here (the `ws` package has the same). */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type OpenSocket = (url: string) => SocketLike;

const utf8 = new TextEncoder();

/** The coordinator could not be reached or refused us; `retry` says whether trying again may help. */
export class CoordinatorError extends Error {
  override name = 'CoordinatorError';
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

export interface Welcome {
  config: unknown;
  state: RunState;
  /** The pipeline stage the coordinator placed us in (0 in a run of one stage). */
  stage: number;
}

export class CoordinatorClient {
  private socket: SocketLike | null = null;
  /** Each gets a message and the bytes it took on the wire (its UTF-8 text, without the socket's framing). */
  private listeners: ((m: ServerMessage, bytes: number) => void)[] = [];
  private closeListeners: ((reason: string) => void)[] = [];
  /** Control messages that failed to parse (counted, dropped). */
  malformed = 0;

  constructor(
    readonly url: string,
    private readonly key: Hotkey,
    private readonly openSocket: OpenSocket,
    /** Reported when joining, for the stage assignment of a pipelined run. */
    private readonly capacity?: Capacity,
  ) {}

  onMessage(cb: (m: ServerMessage, bytes: number) => void): void {
    this.listeners.push(cb);
  }

  onClose(cb: (reason: string) => void): void {
    this.closeListeners.push(cb);
  }

  /** Opens the socket and joins; resolves with the run config (unvalidated) and state. */
  connect(timeoutMs = 15_000): Promise<Welcome> {
    return new Promise<Welcome>((resolve, reject) => {
      let settled = false;
      const fail = (e: CoordinatorError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          socket.close();
        } catch {
          /* already closed */
        }
        reject(e);
      };
      const timer = setTimeout(() => fail(new CoordinatorError(`no answer from the coordinator at ${this.url} within ${timeoutMs / 1000} s`, true)), timeoutMs);
      let socket: SocketLike;
      try {
        socket = this.openSocket(this.url);
      } catch (e) {
        clearTimeout(timer);
        return reject(new CoordinatorError(`cannot open ${this.url}: ${(e as Error).message}`, false));
      }
      this.socket = socket;
      socket.binaryType = 'arraybuffer';
      socket.onopen = () => this.send({ type: 'hello', version: PROTOCOL_VERSION });
      socket.onerror = () => fail(new CoordinatorError(`cannot reach the coordinator at ${this.url}: is it running, and is the address right?`, true));
      socket.onclose = (ev) => {
        if (!settled) return fail(new CoordinatorError(`the coordinator closed the connection (${ev.code ?? '?'} ${ev.reason ?? ''})`, ev.code !== 4000 && ev.code !== 4001));
        for (const cb of this.closeListeners) cb(`${ev.code ?? ''} ${ev.reason ?? ''}`.trim() || 'closed');
      };
      socket.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return; // the coordinator sends no binary
        const m = parseServerMessage(ev.data);
        if (!m) {
          this.malformed++;
          return;
        }
        if (!settled) {
          if (m.type === 'challenge') {
            const signature = toHex(this.key.sign(joinChallenge(m.run, m.nonce)));
            return this.send({ type: 'join', address: this.key.address, signature, ...(this.capacity ? { capacity: this.capacity } : {}) });
          }
          if (m.type === 'error') return fail(new CoordinatorError(`the coordinator refused us: ${m.message}`, false));
          if (m.type === 'welcome') {
            settled = true;
            clearTimeout(timer);
            return resolve({ config: m.config, state: m.state, stage: m.stage });
          }
          return; // peers/round messages before welcome: the welcome carries the state
        }
        const bytes = utf8.encode(ev.data).length;
        for (const cb of this.listeners) cb(m, bytes);
      };
    });
  }

  send(m: ClientMessage): void {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(m));
  }

  sendBinary(bytes: Uint8Array): boolean {
    if (!this.socket || this.socket.readyState !== 1) return false;
    this.socket.send(bytes);
    return true;
  }

  get open(): boolean {
    return this.socket?.readyState === 1;
  }

  close(): void {
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.close(1000, 'bye');
    }
  }
}
