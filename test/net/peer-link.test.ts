// PeerLink over real WebRTC (@roamhq/wrtc) on loopback, signaling handed across in-process.
import wrtc from '@roamhq/wrtc';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, type ReassemblyLimits } from '../../src/net/framing.ts';
import { LinkClosedError, PeerLink, type PeerLinkOptions } from '../../src/net/peer-link.ts';
import { parseSignalData } from '../../src/protocol/signal-data.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const LIMITS: ReassemblyLimits = { maxMessageBytes: 16 << 20, timeoutMs: 30_000, maxInFlight: 4 };
const open: PeerLink[] = [];
/** Signals simple-peer emitted that the coordinator's check (signal-data.ts) would refuse. */
const refusedSignals: unknown[] = [];

afterEach(() => {
  for (const l of open.splice(0)) l.close();
  expect(refusedSignals.splice(0)).toEqual([]);
});
// End libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
afterAll(async () => expect(await releaseWebRtc()).toEqual([]));

function randomBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) b[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  return b;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/** Two links wired to each other; `extra` options per side. */
function linkPair(a: Partial<PeerLinkOptions> = {}, b: Partial<PeerLinkOptions> = {}): [PeerLink, PeerLink] {
  const base = { wrtc, iceServers: [], limits: LIMITS };
  let left: PeerLink | null = null, right: PeerLink | null = null;
  // As the coordinator relays it: through JSON and parseSignalData, which must keep all real signaling.
  const relay = (d: unknown, to: () => PeerLink | null) => {
    const data = parseSignalData(JSON.parse(JSON.stringify(d)));
    if (data === null) refusedSignals.push(d);
    else setImmediate(() => to()?.signal(data));
  };
  left = new PeerLink('B', { ...base, initiator: true, ...a }, (d) => relay(d, () => right));
  right = new PeerLink('A', { ...base, initiator: false, ...b }, (d) => relay(d, () => left));
  open.push(left, right);
  return [left, right];
}

const connected = (l: PeerLink) => new Promise<void>((resolve) => l.onConnect(resolve));
const closed = (l: PeerLink) => new Promise<string>((resolve) => l.onClose(resolve));

/** The next `n` messages `l` receives. */
function receive(l: PeerLink, n: number): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  return new Promise((resolve) => l.onMessage((m) => {
    got.push(m);
    if (got.length === n) resolve(got);
  }));
}

async function connectedPair(a?: Partial<PeerLinkOptions>, b?: Partial<PeerLinkOptions>): Promise<[PeerLink, PeerLink]> {
  const pair = linkPair(a, b);
  await Promise.all(pair.map(connected));
  return pair;
}

describe('PeerLink', () => {
  it('connects and carries 1 KB, 1 MB and 10 MB messages both ways, byte for byte', async () => {
    const [a, b] = await connectedPair();
    expect(a.connected && b.connected).toBe(true);
    const sizes = [1024, 1 << 20, 10 << 20];
    for (const n of sizes) {
      const ab = randomBytes(n, n), ba = randomBytes(n, n + 1);
      const gotB = receive(b, 1), gotA = receive(a, 1);
      await Promise.all([a.send(ab), b.send(ba)]);
      const [[mb], [ma]] = await Promise.all([gotB, gotA]);
      expect(mb).toBeInstanceOf(Uint8Array);
      expect(Buffer.isBuffer(mb)).toBe(false);
      expect(same(mb, ab), `${n} bytes A→B`).toBe(true);
      expect(same(ma, ba), `${n} bytes B→A`).toBe(true);
    }
    const total = sizes.reduce((x, y) => x + y, 0);
    expect(a.stats.messagesSent).toBe(3);
    expect(b.stats.messagesReceived).toBe(3);
    expect(a.stats.bytesSent).toBeGreaterThan(total);
    expect(b.stats.bytesReceived).toBe(a.stats.bytesSent);
    expect(a.stats.framesDropped + b.stats.framesDropped).toBe(0);
  }, 60_000);

  it('delivers concurrent sends whole and in order', async () => {
    const [a, b] = await connectedPair();
    // (Sizes from 1: an empty message is the link's keepalive, refused by send().)
    const msgs = Array.from({ length: 20 }, (_, i) => randomBytes([1, 2, 100, 16_000, 70_000, 300_000][i % 6], i));
    const got = receive(b, msgs.length);
    const back = receive(a, msgs.length);
    await Promise.all([...msgs.map((m) => a.send(m)), ...msgs.map((m) => b.send(m))]);
    const [atB, atA] = await Promise.all([got, back]);
    msgs.forEach((m, i) => {
      expect(same(atB[i], m), `message ${i}`).toBe(true);
      expect(same(atA[i], m), `message ${i}`).toBe(true);
    });
  }, 60_000);

  it('drops and counts a message over the receiver\'s limit, and stays up', async () => {
    const [a, b] = await connectedPair({}, { limits: { ...LIMITS, maxMessageBytes: 100_000 } });
    const got = receive(b, 1);
    await a.send(randomBytes(300_000, 9)); // over B's limit: every frame dropped
    const small = randomBytes(1000, 10);
    await a.send(small);
    const [m] = await got;
    expect(same(m, small)).toBe(true);
    expect(b.connected).toBe(true);
    expect(b.stats.messagesDropped).toBe(1);
    expect(b.stats.framesDropped).toBe(Math.ceil(300_000 / (16 * 1024 - FRAME_HEADER_BYTES)));
    expect(b.stats.reasons.size).toBe(1);
    expect(b.stats.messagesReceived).toBe(1);
  }, 60_000);

  it('a close on one side fires onClose on the other; sends then reject', async () => {
    const [a, b] = await connectedPair();
    const bClosed = closed(b), aClosed = closed(a);
    a.close();
    expect(await aClosed).toBe('closed locally');
    expect(typeof (await bClosed)).toBe('string');
    expect(a.connected || b.connected).toBe(false);
    await expect(a.send(new Uint8Array(10))).rejects.toBeInstanceOf(LinkClosedError);
    await expect(b.send(new Uint8Array(10))).rejects.toBeInstanceOf(LinkClosedError);
    a.signal({ type: 'offer', sdp: 'x' }); // ignored after close
    let late = '';
    b.onClose((r) => (late = r));
    await new Promise((r) => setImmediate(r));
    expect(late).toBe(b.closeReason);
  }, 30_000);

  it('rejects a send in progress when the link closes mid-message', async () => {
    const [a] = await connectedPair();
    const sending = a.send(randomBytes(20 << 20, 3));
    // Close once the first frames are out: each turn of the event loop lets only a window's
    // worth through (backpressure), so most of the 20 MB is still to go however loaded the
    // machine is. (A 5 ms timer fired after the whole message had gone on a loaded CI machine.)
    while (a.stats.bytesSent === 0) await new Promise((r) => setImmediate(r));
    a.close('test');
    await expect(sending).rejects.toThrow(/closed: test/);
  }, 30_000);

  it('closes with a reason on bad signaling data and on a connect timeout, never throwing', async () => {
    const l = new PeerLink('X', { initiator: false, wrtc, iceServers: [], limits: LIMITS }, () => {});
    open.push(l);
    const why = closed(l);
    expect(() => l.signal({ nonsense: true })).not.toThrow();
    expect(await why).toMatch(/ERR_SIGNALING|signal/i);
    const lonely = new PeerLink('Y', { initiator: true, wrtc, iceServers: [], limits: LIMITS, connectTimeoutMs: 300 }, () => {});
    open.push(lonely);
    expect(await closed(lonely)).toMatch(/not connected within 300 ms/);
    await expect(lonely.send(new Uint8Array(1))).rejects.toBeInstanceOf(LinkClosedError);
  }, 30_000);

  it('an idle link stays up on keepalives; a link whose remote goes silent closes itself, saying so', async () => {
    // Both sides keep alive: idle for 4 silences, still up, and keepalives are not messages.
    const [a, b] = await connectedPair({ keepaliveMs: 100, silenceMs: 400 }, { keepaliveMs: 100, silenceMs: 400 });
    await new Promise((r) => setTimeout(r, 1600));
    expect(a.connected && b.connected).toBe(true);
    expect(b.stats.keepalivesReceived).toBeGreaterThan(3);
    expect(b.stats.messagesReceived).toBe(0);
    await expect(a.send(new Uint8Array(0))).rejects.toThrow(/cannot be empty/);
    const got = receive(b, 1);
    await a.send(randomBytes(1000));
    expect((await got)[0].length).toBe(1000);
    // A remote that sends nothing (here: no keepalives at all) is silent: the link closes on this side.
    const [c, d] = await connectedPair({ keepaliveMs: 100, silenceMs: 400 }, { keepaliveMs: 0, silenceMs: 0 });
    const why = await closed(c);
    expect(why).toMatch(/^silent for \d+ s: nothing from the remote, not even a keepalive/);
    expect(d.stats.keepalivesSent).toBe(0);
  }, 30_000);

  it('a throwing onMessage callback does not break the link', async () => {
    const [a, b] = await connectedPair();
    const errors: unknown[] = [];
    const orig = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      b.onMessage(() => {
        throw new Error('user bug');
      });
      const got = receive(b, 2);
      await a.send(new Uint8Array([1]));
      await a.send(new Uint8Array([2]));
      const ms = await got;
      expect(ms.map((m) => m[0])).toEqual([1, 2]);
      expect(errors.length).toBe(2);
      expect(b.connected).toBe(true);
    } finally {
      console.error = orig;
    }
  }, 30_000);
});
