import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/base/hex.ts';
import { PROTOCOL_VERSION, joinChallenge } from '../../src/protocol/messages.ts';
import { Peer, RUN, devKeys, makeCoordinator, removeTempDirs, signedUpdate, type Keys } from './helpers.ts';

/** WebRTC signaling as simple-peer emits it (the coordinator relays nothing else). */
const OFFER = { type: 'offer', sdp: 'v=0\r\n' };
const CANDIDATE = { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host', sdpMLineIndex: 0, sdpMid: '0' } };

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

describe('coordinator: joining', () => {
  it('welcomes a correct signature over joinChallenge(run, nonce) with the config and the state', () => {
    const { coordinator, config } = makeCoordinator();
    const p = new Peer(coordinator, k.alice);
    const challenge = p.hello();
    expect(challenge).toMatchObject({ type: 'challenge', run: RUN, version: PROTOCOL_VERSION });
    expect(challenge.nonce).toMatch(/^[0-9a-f]{32}$/);
    p.text({ type: 'join', address: k.alice.address, signature: toHex(k.alice.sign(joinChallenge(RUN, challenge.nonce))) });
    const welcome = p.last('welcome');
    expect(welcome).toEqual({
      type: 'welcome', address: k.alice.address, config,
      state: { round: 0, phase: 'waiting', memberCount: 0, checkpointRound: -1, oldestCommit: 0 }, stage: 0,
    });
    expect(p.last('neighbours')?.neighbours).toEqual([]);
    expect(p.conn.closed).toBeNull();
    expect(coordinator.status().peers).toEqual([k.alice.address]);
    expect(coordinator.status().rejected).toEqual({});
  });

  it('gives every connection its own nonce', () => {
    const { coordinator } = makeCoordinator();
    const nonces = new Set(Array.from({ length: 5 }, () => new Peer(coordinator).hello().nonce));
    expect(nonces.size).toBe(5);
  });

  it('links a newcomer with its neighbours and tells only them', () => {
    const { coordinator } = makeCoordinator();
    const a = new Peer(coordinator, k.alice);
    a.join();
    const b = new Peer(coordinator, k.bob);
    b.join();
    expect(a.last('neighbours')?.neighbours).toEqual([k.bob.address]);
    expect(b.last('neighbours')?.neighbours).toEqual([k.alice.address]);
  });

  const refusals: [string, (p: Peer, nonce: string) => { address: string; signature: string }][] = [
    ['a signature by another key', (_p, nonce) => ({ address: k.alice.address, signature: toHex(k.bob.sign(joinChallenge(RUN, nonce))) })],
    ['a signature of other bytes', () => ({ address: k.alice.address, signature: toHex(k.alice.sign(new Uint8Array([1, 2, 3]))) })],
    ['a signature for another run', (_p, nonce) => ({ address: k.alice.address, signature: toHex(k.alice.sign(joinChallenge('other-run', nonce))) })],
    ['a signature for another nonce', () => ({ address: k.alice.address, signature: toHex(k.alice.sign(joinChallenge(RUN, '00'.repeat(16)))) })],
    ['a flipped signature bit', (_p, nonce) => {
      const sig = k.alice.sign(joinChallenge(RUN, nonce));
      sig[10] ^= 1;
      return { address: k.alice.address, signature: toHex(sig) };
    }],
    ['a truncated signature', (_p, nonce) => ({ address: k.alice.address, signature: toHex(k.alice.sign(joinChallenge(RUN, nonce)).subarray(0, 63)) })],
    ['a signature that is not hex', () => ({ address: k.alice.address, signature: 'zz'.repeat(64) })],
    ['an invalid address', (_p, nonce) => ({ address: 'not-an-ss58-address-at-all-but-long-enough-1234', signature: toHex(k.alice.sign(joinChallenge(RUN, nonce))) })],
    ['an address with a broken checksum', (_p, nonce) => {
      const a = k.alice.address;
      const last = a[a.length - 1] === 'x' ? 'y' : 'x';
      return { address: a.slice(0, -1) + last, signature: toHex(k.alice.sign(joinChallenge(RUN, nonce))) };
    }],
  ];
  for (const [name, make] of refusals) {
    it(`refuses ${name}: closed, counted, not a peer`, () => {
      const { coordinator } = makeCoordinator();
      const p = new Peer(coordinator, k.alice);
      const { nonce } = p.hello();
      p.text({ type: 'join', ...make(p, nonce) });
      expect(p.last('welcome')).toBeUndefined();
      expect(p.last('rejected')?.what).toBe('bad-join');
      expect(p.conn.closed?.code).toBe(4001);
      expect(coordinator.status().rejected).toEqual({ 'bad-join': 1 });
      expect(coordinator.status().peers).toEqual([]);
    });
  }

  it('refuses a signature made for another connection (replay of its nonce)', () => {
    const { coordinator } = makeCoordinator();
    const first = new Peer(coordinator, k.alice);
    const { nonce } = first.hello();
    const signature = toHex(k.alice.sign(joinChallenge(RUN, nonce)));
    const thief = new Peer(coordinator);
    thief.hello();
    thief.text({ type: 'join', address: k.alice.address, signature });
    expect(thief.conn.closed?.code).toBe(4001);
    expect(coordinator.status().peers).toEqual([]);
    // The signature still works on the connection it was made for.
    first.text({ type: 'join', address: k.alice.address, signature });
    expect(first.last('welcome')).toBeDefined();
  });

  it('refuses every message before join, counted, without closing', () => {
    const { coordinator, config } = makeCoordinator();
    const p = new Peer(coordinator, k.alice);
    p.hello();
    p.text({ type: 'synced', round: 0, weightsHash: 'aa' });
    p.text({ type: 'heartbeat' });
    p.text({ type: 'signal', to: k.bob.address, data: OFFER });
    p.text({ type: 'report', round: 0, loss: 1, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 });
    p.binary(signedUpdate(k.alice, config, 0));
    expect(p.all('rejected').map((r) => r.what)).toEqual(Array(5).fill('unknown-member'));
    expect(coordinator.status().rejected).toEqual({ 'unknown-member': 5 });
    expect(coordinator.status().phase).toBe('waiting'); // the synced did not count
    expect(p.conn.closed).toBeNull();
  });

  it('refuses malformed control messages', () => {
    const { coordinator } = makeCoordinator();
    const p = new Peer(coordinator, k.alice);
    p.text('not json');
    p.text({ type: 'nope' });
    p.text({ type: 'join', address: 42, signature: 'aa' });
    expect(coordinator.status().rejected).toEqual({ 'malformed-control': 3 });
    expect(p.join()).toBeDefined(); // the connection is still usable
  });

  it('answers hello with another protocol version with an error and closes', () => {
    const { coordinator } = makeCoordinator();
    const p = new Peer(coordinator, k.alice);
    p.text({ type: 'hello', version: PROTOCOL_VERSION + 1 });
    expect(p.last('challenge')).toBeUndefined();
    expect(p.last('error')?.message).toMatch(new RegExp(`protocol version ${PROTOCOL_VERSION + 1} .*speaks ${PROTOCOL_VERSION}.*update Tessera`));
    expect(p.conn.closed?.code).toBe(4000);
  });

  it('lets a second connection of the same hotkey replace the first', () => {
    const { coordinator } = makeCoordinator();
    const first = new Peer(coordinator, k.alice);
    first.join();
    const bob = new Peer(coordinator, k.bob);
    bob.join();
    const second = new Peer(coordinator, k.alice);
    expect(second.join()).toBeDefined();
    expect(first.conn.closed?.code).toBe(4002);
    expect(coordinator.status().peers).toEqual([k.alice.address, k.bob.address].sort());
    // Signals reach the new connection only.
    bob.text({ type: 'signal', to: k.alice.address, data: OFFER });
    expect(second.last('signal')).toEqual({ type: 'signal', from: k.bob.address, data: OFFER });
    expect(first.last('signal')).toBeUndefined();
    // The old socket's late close does not remove the new one.
    first.disconnect();
    expect(coordinator.status().peers).toEqual([k.alice.address, k.bob.address].sort());
    // Nor can the old socket act, or join again, while its close is under way.
    const before = second.conn.sent.length;
    const sentToFirst = first.conn.sent.length;
    first.text({ type: 'heartbeat' });
    first.join();
    expect(first.conn.sent.length).toBe(sentToFirst);
    expect(second.conn.sent.length).toBe(before);
    expect(second.conn.closed).toBeNull();
    bob.text({ type: 'signal', to: k.alice.address, data: CANDIDATE });
    expect(second.last('signal')?.data).toEqual(CANDIDATE);
  });

  it('refuses a joined connection joining again as another hotkey', () => {
    const { coordinator } = makeCoordinator();
    const p = new Peer(coordinator, k.alice);
    p.join();
    const { nonce } = p.hello();
    p.text({ type: 'join', address: k.bob.address, signature: toHex(k.bob.sign(joinChallenge(RUN, nonce))) });
    expect(p.last('rejected')?.what).toBe('bad-join');
    expect(coordinator.status().peers).toEqual([k.alice.address]);
    p.disconnect();
    expect(coordinator.status().peers).toEqual([]);
  });

  it('forgets a peer whose connection closes', () => {
    const { coordinator } = makeCoordinator();
    const a = new Peer(coordinator, k.alice);
    a.join();
    const b = new Peer(coordinator, k.bob);
    b.join();
    b.disconnect();
    expect(coordinator.status().peers).toEqual([k.alice.address]);
    expect(a.last('neighbours')?.neighbours).toEqual([]);
  });
});

describe('coordinator: signaling relay', () => {
  it('relays a signal to the addressed peer only, with `from` set by the coordinator', () => {
    const { coordinator } = makeCoordinator();
    const [a, b, c] = [k.alice, k.bob, k.carol].map((key) => new Peer(coordinator, key));
    for (const p of [a, b, c]) p.join();
    a.text({ type: 'signal', to: k.bob.address, data: { ...OFFER, nested: [1, 2, { x: null }] } });
    expect(b.all('signal')).toEqual([{ type: 'signal', from: k.alice.address, data: OFFER }]); // known fields only
    expect(a.all('signal')).toEqual([]);
    expect(c.all('signal')).toEqual([]);
    // A client cannot choose `from`.
    a.text({ type: 'signal', to: k.bob.address, from: k.carol.address, data: CANDIDATE });
    expect(b.last('signal')).toEqual({ type: 'signal', from: k.alice.address, data: CANDIDATE });
    expect(coordinator.status().rejected).toEqual({});
  });

  it('refuses a sender whose signal data nests 6,000 deep (12 KB), counted; the recipient stays a member and keeps receiving', () => {
    const { coordinator } = makeCoordinator();
    const [a, b] = [k.alice, k.bob].map((key) => new Peer(coordinator, key));
    for (const p of [a, b]) p.join();
    const nest = '['.repeat(6000) + ']'.repeat(6000); // JSON.stringify throws on it: written by hand
    const deep = `{"type":"signal","to":"${k.bob.address}","data":${nest}}`;
    expect(deep.length).toBeLessThan(12_200);
    a.text(deep);
    a.text(`{"type":"signal","to":"${k.bob.address}","data":{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","junk":${nest}}}}`);
    expect(a.last('rejected')?.what).toBe('malformed-control');
    expect(coordinator.status().rejected).toEqual({ 'malformed-control': 1 });
    // The second's nesting was outside the known fields: dropped, the candidate relayed.
    expect(b.all('signal')).toEqual([{ type: 'signal', from: k.alice.address, data: { type: 'candidate', candidate: { candidate: 'c', sdpMid: '0' } } }]);
    expect(coordinator.status().peers).toEqual([k.alice.address, k.bob.address].sort());
    expect(b.conn.closed).toBeNull();
    a.text({ type: 'signal', to: k.bob.address, data: OFFER });
    expect(b.last('signal')).toEqual({ type: 'signal', from: k.alice.address, data: OFFER });
  });

  it('refuses a signal to an address that is not a joined peer, and counts it', () => {
    const { coordinator } = makeCoordinator();
    const a = new Peer(coordinator, k.alice);
    a.join();
    const pending = new Peer(coordinator, k.bob); // connected, never joined
    pending.hello();
    a.text({ type: 'signal', to: k.bob.address, data: OFFER });
    a.text({ type: 'signal', to: k.dave.address, data: OFFER });
    a.text({ type: 'signal', to: 'nobody', data: OFFER });
    const left = new Peer(coordinator, k.carol);
    left.join();
    left.disconnect();
    a.text({ type: 'signal', to: k.carol.address, data: OFFER });
    expect(a.all('rejected').map((r) => r.what)).toEqual(Array(4).fill('signal-unknown-peer'));
    expect(coordinator.status().rejected).toEqual({ 'signal-unknown-peer': 4 });
    expect(pending.all('signal')).toEqual([]);
    expect(left.all('signal')).toEqual([]);
  });
});
