// Who is connected to the coordinator, and sending to them: one Session per connection,
// at most one per joined hotkey (a newer connection of the same hotkey replaces the older),
// with every control message's bytes counted by type (the control plane's measured cost).
import { randomBytes } from 'node:crypto';
import { toHex } from '../base/hex.ts';
import type { ServerMessage } from '../protocol/messages.ts';

/** One client connection, as the server gives it. */
export interface Connection {
  send(text: string): void;
  close(code: number, reason: string): void;
}

/** WebSocket close code for a socket that failed a send (1011: the server met an error). */
export const SEND_FAILED_CLOSE_CODE = 1011;

export interface Session {
  id: number;
  conn: Connection;
  /** The join challenge this connection must sign. */
  nonce: string;
  address: string | null;
  lastSeen: number;
  /** The round whose θ_start this peer holds, or -1. */
  synced: number;
  /** The stage of those weights. */
  syncedStage: number;
}

export class Sessions {
  private readonly byId = new Map<number, Session>();
  private readonly byAddress = new Map<string, Session>();
  private nextId = 1;
  /** Bytes of control messages sent, by type. */
  readonly controlBytes: Record<string, number> = {};

  constructor(
    private readonly now: () => number,
    /** A send threw (the socket is gone): the owner drops the session. */
    private readonly onSendFailed: (s: Session) => void,
  ) {}

  open(conn: Connection): Session {
    const s: Session = { id: this.nextId++, conn, nonce: toHex(randomBytes(16)), address: null, lastSeen: this.now(), synced: -1, syncedStage: -1 };
    this.byId.set(s.id, s);
    return s;
  }

  /** False once a session was closed or replaced: its late messages must not act. */
  isOpen(s: Session): boolean {
    return this.byId.has(s.id);
  }

  /** Forgets a session; true when it was this hotkey's current one (the member left). */
  close(s: Session): boolean {
    if (!this.byId.delete(s.id)) return false;
    if (!s.address || this.byAddress.get(s.address) !== s) return false;
    this.byAddress.delete(s.address);
    return true;
  }

  /** Binds a session to the hotkey it proved; returns the older session it replaced, if any. */
  bind(s: Session, address: string): Session | null {
    const old = this.byAddress.get(address);
    let replaced: Session | null = null;
    if (old && old !== s) {
      this.byAddress.delete(address);
      old.address = null;
      this.byId.delete(old.id);
      replaced = old;
    }
    s.address = address;
    this.byAddress.set(address, s);
    return replaced;
  }

  member(address: string): Session | undefined {
    return this.byAddress.get(address);
  }

  isCurrent(s: Session): boolean {
    return !!s.address && this.byAddress.get(s.address) === s;
  }

  get memberCount(): number {
    return this.byAddress.size;
  }

  addresses(): string[] {
    return [...this.byAddress.keys()];
  }

  members(): Session[] {
    return [...this.byAddress.values()];
  }

  all(): Session[] {
    return [...this.byId.values()];
  }

  /**
   * Sends `m` to `s`. False when `m` cannot be written as JSON (a payload another peer made,
   * deeper than JSON.stringify goes): nothing is sent and the recipient, not at fault, stays.
   * A socket that throws on send is gone: the session is dropped and its socket closed, so a
   * dropped session never lingers half-open (unreaped, receiving nothing).
   */
  send(s: Session, m: ServerMessage): boolean {
    let text: string;
    try {
      text = JSON.stringify(m);
    } catch {
      return false;
    }
    this.controlBytes[m.type] = (this.controlBytes[m.type] ?? 0) + text.length;
    try {
      s.conn.send(text);
    } catch {
      this.onSendFailed(s);
      try {
        s.conn.close(SEND_FAILED_CLOSE_CODE, 'send failed');
      } catch {
        // Already closed: nothing left to release.
      }
    }
    return true;
  }

  sendTo(address: string, m: ServerMessage): void {
    const s = this.byAddress.get(address);
    if (s) this.send(s, m);
  }

  broadcast(m: ServerMessage): void {
    for (const s of this.byAddress.values()) this.send(s, m);
  }
}
