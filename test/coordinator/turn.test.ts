// Short-lived TURN credentials (TURN REST, as coturn's use-auth-secret checks them): the
// credential itself against openssl's answer, the settings' checks, and on a hand-moved clock
// the coordinator's grants — a member gets its own before its neighbours, a fresh one at half
// its life, none once gone; a connection that has not joined never gets one.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TurnGrants, TurnSettingsError, checkTurnSettings, turnCredential } from '../../src/coordinator/turn.ts';
import { parseServerMessage } from '../../src/protocol/messages.ts';
import { Clock, Peer, devKeys, makeCoordinator, removeTempDirs, testConfig, type Keys } from './helpers.ts';

const SECRET = 'north-sea-shared-secret';
const URLS = ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:443?transport=tcp'];

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

describe('TURN REST credentials', () => {
  it('username is expiry:address and the credential is base64 HMAC-SHA1 of the secret (as openssl computes it)', () => {
    const c = turnCredential(SECRET, '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', 1_700_003_600);
    expect(c.username).toBe('1700003600:5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
    // echo -n "$username" | openssl dgst -sha1 -hmac "$secret" -binary | base64
    expect(c.credential).toBe('zoKKAe/7VltV1Y/g6EuzH+RX5Ho=');
  });

  it('a grant lists coturn as STUN (no credentials) and TURN (the member\'s own), expiring after the TTL', () => {
    const g = new TurnGrants({ urls: URLS, secret: SECRET, ttlSeconds: 600 }).grant('alice', 1_000_000);
    expect(g.expiresAt).toBe(1_000_000 + 600_000);
    expect(g.servers[0]).toEqual({ urls: ['stun:turn.example.org:3478'] });
    expect(g.servers[1]).toEqual({ urls: URLS, ...turnCredential(SECRET, 'alice', 1600) });
  });

  it('settings mistakes name the flag', () => {
    const ok = { urls: URLS, secret: SECRET, ttlSeconds: 600 };
    const bad = (s: Partial<typeof ok>, field: string) => {
      expect(() => checkTurnSettings({ ...ok, ...s })).toThrow(TurnSettingsError);
      expect(() => checkTurnSettings({ ...ok, ...s })).toThrow(new RegExp(`^${field}`));
    };
    bad({ urls: [] }, '--turn');
    bad({ urls: ['http://turn.example.org'] }, '--turn');
    bad({ urls: ['stun:turn.example.org:3478'] }, '--turn');
    bad({ secret: 'short' }, '--turn-secret-file');
    bad({ ttlSeconds: 10 }, '--turn-ttl');
    expect(checkTurnSettings({ ...ok, urls: ['stun:s.example.org', ...URLS] }).urls).toHaveLength(3); // a listed STUN URL is kept, none derived
  });
});

describe('coordinator: TURN grants on a hand-moved clock', () => {
  it('each member gets its own grant before its neighbours, a fresh one at half its life, and none once it left; strangers get none', () => {
    const clock = new Clock();
    const turn = new TurnGrants({ urls: URLS, secret: SECRET, ttlSeconds: 60 });
    const h = makeCoordinator(testConfig(), { clock, turn });
    const stranger = new Peer(h.coordinator, null);
    stranger.hello();
    const alice = new Peer(h.coordinator, k.alice);
    const bob = new Peer(h.coordinator, k.bob);
    alice.join();
    bob.join();
    for (const p of [alice, bob]) {
      const types = p.conn.sent.map((m) => m.type);
      expect(types.indexOf('ice')).toBeGreaterThan(types.indexOf('welcome'));
      expect(types.indexOf('ice')).toBeLessThan(types.indexOf('neighbours'));
      const relay = p.last('ice')!.servers.find((s) => s.username)!;
      expect(relay.username).toBe(`${Math.floor((clock.t + 60_000) / 1000)}:${p.address}`);
      expect(relay.credential).toBe(turnCredential(SECRET, p.address, Math.floor((clock.t + 60_000) / 1000)).credential);
    }
    // The secret never goes out.
    expect(JSON.stringify([...alice.conn.sent, ...bob.conn.sent])).not.toContain(SECRET);
    const heartbeats = (ms: number) => {
      for (let t = 0; t < ms; t += 5000) {
        clock.advance(5000);
        for (const p of [alice, bob]) if (!p.conn.closed) p.text({ type: 'heartbeat' });
        h.coordinator.tick();
      }
    };
    heartbeats(25_000);
    expect(alice.all('ice')).toHaveLength(1); // not yet half its life
    heartbeats(5000);
    expect(alice.all('ice')).toHaveLength(2); // renewed at 30 s, 30 s before it expires
    expect(alice.last('ice')!.expiresAt).toBe(Math.floor((clock.t + 60_000) / 1000) * 1000);
    bob.disconnect();
    const bobGrants = bob.all('ice').length;
    heartbeats(60_000);
    expect(alice.all('ice').length).toBeGreaterThanOrEqual(4);
    expect(bob.all('ice')).toHaveLength(bobGrants);
    expect(turn.members).toBe(1);
    expect(stranger.all('ice')).toEqual([]);
  });

  it("an 'ice' message is parsed, and a malformed one is refused", () => {
    const ok = { type: 'ice', servers: [{ urls: ['turn:a:3478'], username: '1:x', credential: 'c' }], expiresAt: 5 };
    expect(parseServerMessage(JSON.stringify(ok))).toEqual(ok);
    for (const bad of [{ ...ok, servers: 'turn:a' }, { ...ok, servers: [{ urls: 5 }] }, { ...ok, servers: [{ urls: 'turn:a', username: 7 }] }, { ...ok, expiresAt: 'soon' }, { ...ok, servers: Array(9).fill({ urls: 'stun:a' }) }]) {
      expect(parseServerMessage(JSON.stringify(bad))).toBeNull();
    }
  });
});
