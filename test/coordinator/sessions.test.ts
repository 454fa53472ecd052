// Sending to a session: a socket that fails is dropped and closed (never left half-open,
// unreaped), and a message that cannot be written is the sender's problem, not the recipient's.
import { describe, expect, it } from 'vitest';
import { SEND_FAILED_CLOSE_CODE, Sessions, type Connection, type Session } from '../../src/coordinator/sessions.ts';
import type { ServerMessage } from '../../src/protocol/messages.ts';

class Conn implements Connection {
  readonly sent: string[] = [];
  closed: { code: number; reason: string } | null = null;
  constructor(private readonly failing = false) {}
  send(text: string): void {
    if (this.failing) throw new Error('socket gone');
    this.sent.push(text);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
}

function setup() {
  const failed: Session[] = [];
  const sessions = new Sessions(() => 0, (s) => {
    failed.push(s);
    sessions.close(s);
  });
  return { sessions, failed };
}

describe('Sessions.send', () => {
  it('sends, counting control bytes by type', () => {
    const { sessions, failed } = setup();
    const conn = new Conn();
    const s = sessions.open(conn);
    expect(sessions.send(s, { type: 'swarm', peers: 1, ready: 0, need: 2 })).toBe(true);
    expect(conn.sent).toEqual([JSON.stringify({ type: 'swarm', peers: 1, ready: 0, need: 2 })]);
    expect(sessions.controlBytes.swarm).toBe(conn.sent[0].length);
    expect(failed).toEqual([]);
  });

  it('a socket that throws on send: the session is dropped and its socket closed', () => {
    const { sessions, failed } = setup();
    const conn = new Conn(true);
    const s = sessions.open(conn);
    sessions.bind(s, 'addr');
    sessions.send(s, { type: 'swarm', peers: 1, ready: 0, need: 2 });
    expect(failed).toEqual([s]);
    expect(sessions.isOpen(s)).toBe(false);
    expect(conn.closed).toEqual({ code: SEND_FAILED_CLOSE_CODE, reason: 'send failed' });
  });

  it('a message that cannot be written as JSON: false, nothing sent, the recipient neither dropped nor closed', () => {
    const { sessions, failed } = setup();
    const conn = new Conn();
    const s = sessions.open(conn);
    sessions.bind(s, 'addr');
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(sessions.send(s, { type: 'signal', from: 'other', data: deep } as ServerMessage)).toBe(false);
    expect(conn.sent).toEqual([]);
    expect(failed).toEqual([]);
    expect(conn.closed).toBeNull();
    expect(sessions.member('addr')).toBe(s);
    expect(sessions.send(s, { type: 'swarm', peers: 1, ready: 0, need: 2 })).toBe(true);
    expect(conn.sent.length).toBe(1);
  });
});
