import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { toHex } from '../../src/base/hex.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { parameterLayout, preset } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { UPDATE_HEADER_BYTES, UpdateError, decodeUpdate } from '../../src/sparseloco/wire.ts';
import { devKeys, joinAll, makeCoordinator, modelUpdate, removeTempDirs, seal, signedUpdate, testConfig, undecodableUpdate, type Harness, type Keys, type Peer } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

/** Round 0 running with alice and bob as members; carol joined but not synced. */
function running(config = testConfig({ minMembers: 2 })): { h: Harness; a: Peer; b: Peer; c: Peer } {
  const h = makeCoordinator(config);
  const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
  const [c] = joinAll(h.coordinator, [k.carol], 99);
  expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: 0, members: [k.alice.address, k.bob.address].sort() });
  return { h, a, b, c };
}

/** The sender field of an envelope replaced by another address of the same length (signature left as it was). */
function withSender(envelope: Uint8Array, from: Hotkey, to: Hotkey): Uint8Array {
  const out = envelope.slice();
  const at = 7 + 1 + out[7] + 6; // magic, version, type | run | round, stage
  expect(out[at]).toBe(from.address.length);
  expect(new TextDecoder().decode(out.subarray(at + 1, at + 1 + out[at]))).toBe(from.address);
  expect(to.address.length).toBe(from.address.length);
  out.set(new TextEncoder().encode(to.address), at + 1);
  return out;
}

function storedUpdates(h: Harness, round: number): string[] {
  const dir = join(h.store.dir, 'updates', String(round));
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

const hashOf = (envelopePayload: Uint8Array) => toHex(blake2AsU8a(envelopePayload, 256));

/** The update with its first lookup-table entry set to NaN (checksum recomputed): refused by the frame check. */
function nonFiniteTable(update: Uint8Array): Uint8Array {
  const cfg = preset(testConfig().model);
  const hash = configHash(cfg);
  const layout = parameterLayout(cfg).map((p) => ({ name: p.name, shape: p.shape }));
  for (let at = UPDATE_HEADER_BYTES; at < update.length - 8; at++) {
    const bad = update.slice();
    new DataView(bad.buffer).setFloat32(at, NaN, true);
    new DataView(bad.buffer).setUint32(bad.length - 4, crc32(bad.subarray(0, bad.length - 4)), true);
    try {
      decodeUpdate(bad, { configHash: hash, round: 0, layout, structureOnly: true });
    } catch (e) {
      if (e instanceof UpdateError && e.reason === 'nonfinite') return bad;
    }
  }
  throw new Error('no table entry found');
}

describe('coordinator: updates refused', () => {
  const cases: [string, string, (x: { h: Harness; a: Peer; b: Peer; c: Peer }) => void][] = [
    ['a forged signature (signed by another key, sender field of a member)', 'envelope-signature', ({ h, a }) => {
      a.binary(withSender(signedUpdate(k.dave, h.config, 0), k.dave, k.alice));
    }],
    ['a payload changed after signing', 'envelope-hash', ({ h, a }) => {
      const env = signedUpdate(k.alice, h.config, 0);
      env[env.length - 100] ^= 0xff;
      a.binary(env);
    }],
    ['another run', 'envelope-run', ({ h, a }) => a.binary(seal(k.alice, 0, modelUpdate(h.config, 0), { run: 'other-run' }))],
    ['bytes that are not an envelope', 'envelope-magic', ({ a }) => a.binary(new TextEncoder().encode('hello, coordinator'))],
    ['a truncated envelope', 'envelope-truncated', ({ h, a }) => a.binary(signedUpdate(k.alice, h.config, 0).subarray(0, 500))],
    ['another kind of message', 'unexpected-kind', ({ h, a }) => a.binary(seal(k.alice, 0, modelUpdate(h.config, 0), { kind: 'weights' }))],
    ['a future round', 'stale-round', ({ h, a }) => a.binary(signedUpdate(k.alice, h.config, 5))],
    ["an envelope signed by another member (sender ≠ the connection's hotkey)", 'wrong-sender', ({ h, b }) => b.binary(signedUpdate(k.alice, h.config, 0))],
    ['a joined peer that is not a member of the round', 'unknown-member', ({ h, c }) => c.binary(signedUpdate(k.carol, h.config, 0))],
    ['a valid envelope around garbage', 'update-magic', ({ a }) => a.binary(seal(k.alice, 0, new Uint8Array(4000).fill(7)))],
    ['a valid envelope around an update for another round', 'update-round', ({ h, a }) => a.binary(seal(k.alice, 0, modelUpdate(h.config, 1)))],
    ['a valid envelope around an update of another model', 'update-config', ({ a }) => a.binary(seal(k.alice, 0, modelUpdate(testConfig({ model: 'small' }), 0)))],
    ['a valid envelope around a truncated update', 'update-truncated', ({ h, a }) => a.binary(seal(k.alice, 0, modelUpdate(h.config, 0).subarray(0, 300)))],
    ['a valid envelope around an update with a corrupted byte', 'update-crc', ({ h, a }) => {
      const u = modelUpdate(h.config, 0);
      u[u.length - 50] ^= 1;
      a.binary(seal(k.alice, 0, u));
    }],
  ];

  for (const [name, reason, send] of cases) {
    it(`refuses ${name} as '${reason}', stores nothing, and still takes the real update`, () => {
      const x = running();
      const { h, a, b } = x;
      send(x);
      expect(h.coordinator.status().rejected).toEqual({ [reason]: 1 });
      const sentTo = [a, b, x.c].flatMap((p) => p.all('rejected'));
      expect(sentTo).toHaveLength(1);
      expect(sentTo[0].what).toBe(reason);
      expect(h.coordinator.status()).toMatchObject({ phase: 'training', delivered: [] });
      expect(storedUpdates(h, 0)).toEqual([]);
      expect([a, b, x.c].flatMap((p) => p.all('accepted'))).toEqual([]); // nothing confirmed
      // The members' real updates are still taken, and the commit holds exactly those. A
      // refused member's turn is over (the round would not wait for it), so it sends first.
      const payloads = [modelUpdate(h.config, 0, 1), modelUpdate(h.config, 0, 2)];
      const [first, second] = b.all('rejected').length > 0 ? [b, a] : [a, b];
      const payloadOf = (p: Peer) => (p === a ? payloads[0] : payloads[1]);
      first.binary(seal(first.key!, 0, payloadOf(first)));
      // each sender, and only it, hears its update is held (then it shares it with peers)
      expect(first.all('accepted')).toEqual([{ type: 'accepted', round: 0, hash: hashOf(payloadOf(first)) }]);
      expect(second.all('accepted')).toEqual([]);
      second.binary(seal(second.key!, 0, payloadOf(second)));
      expect(h.coordinator.status().rejected).toEqual({ [reason]: 1 });
      const commit = h.coordinator.commit(0)!;
      expect(commit.included).toEqual(
        [{ sender: k.alice.address, hash: hashOf(payloads[0]), stage: 0, pieces: expect.stringMatching(/^[0-9a-f]{64}$/) }, { sender: k.bob.address, hash: hashOf(payloads[1]), stage: 0, pieces: expect.stringMatching(/^[0-9a-f]{64}$/) }].sort((p, q) => (p.sender < q.sender ? -1 : 1)),
      );
      expect(storedUpdates(h, 0)).toEqual([`${k.alice.address}.bin`, `${k.bob.address}.bin`].sort());
    });
  }

  it.each([
    ['a NaN lookup table', 'update-nonfinite', (h: Harness) => nonFiniteTable(modelUpdate(h.config, 0, 3))],
    ['an unchanged replay of its update of an earlier round', 'stale-round', (h: Harness) => modelUpdate(h.config, 0, 3)],
  ] as const)('a member whose update is refused (%s) is done: the round closes at once, not at the deadline (issue 19)', (_, reason, bad) => {
    const h = makeCoordinator(testConfig({ minMembers: 2, roundSeconds: 600 }));
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
    if (reason === 'stale-round') {
      // Round 0 closes normally; in round 1 alice resends her round-0 envelope unchanged.
      const replay = seal(k.alice, 0, bad(h));
      a.binary(replay);
      b.binary(signedUpdate(k.bob, h.config, 0));
      a.synced(1);
      b.synced(1);
      expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: 1 });
      b.binary(signedUpdate(k.bob, h.config, 1));
      a.binary(replay);
    } else {
      b.binary(signedUpdate(k.bob, h.config, 0));
      a.binary(seal(k.alice, 0, bad(h)));
    }
    const round = h.coordinator.round - 1;
    expect(h.coordinator.status().rejected).toEqual({ [reason]: 1 });
    // No clock advance: it closed on the refusal, with bob's update alone.
    expect(h.coordinator.commit(round)).toMatchObject({ included: [{ sender: k.bob.address }], missing: [k.alice.address] });
    expect(b.last('commit')?.round).toBe(round);
  });

  it('checks only the frame: an update whose body does not decode is stored (replicas and the validator refuse it alike)', () => {
    const { h, a, b } = running();
    const bad = undecodableUpdate(h.config, 0);
    a.binary(seal(k.alice, 0, bad));
    expect(h.coordinator.status().rejected).toEqual({});
    expect(a.last('accepted')).toEqual({ type: 'accepted', round: 0, hash: hashOf(bad) });
    b.binary(signedUpdate(k.bob, h.config, 0));
    expect(h.coordinator.commit(0)!.included.map((e) => e.sender)).toEqual([k.alice.address, k.bob.address].sort());
  });

  it('refuses a second update from the same member and keeps the first', () => {
    const { h, a, b } = running();
    const first = signedUpdate(k.alice, h.config, 0, 1);
    a.binary(first);
    a.binary(signedUpdate(k.alice, h.config, 0, 2));
    a.binary(first);
    expect(h.coordinator.status().rejected).toEqual({ duplicate: 2 });
    expect(h.coordinator.status().delivered).toEqual([k.alice.address]);
    b.binary(signedUpdate(k.bob, h.config, 0));
    expect(h.coordinator.storedUpdate(0, k.alice.address)).toEqual(first);
  });

  it('refuses an update for a round already committed (stale)', () => {
    const { h, a, b } = running();
    const old = signedUpdate(k.alice, h.config, 0);
    a.binary(old);
    b.binary(signedUpdate(k.bob, h.config, 0));
    a.synced(1);
    b.synced(1);
    h.clock.advance(1000); // carol is awaited for the grace period
    h.coordinator.tick();
    expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: 1 });
    a.binary(signedUpdate(k.alice, h.config, 0, 9));
    expect(h.coordinator.status().rejected).toEqual({ 'stale-round': 1 });
    expect(h.coordinator.status().delivered).toEqual([]);
    expect(h.coordinator.storedUpdate(0, k.alice.address)).toEqual(old);
    expect(storedUpdates(h, 1)).toEqual([]);
  });

  it('refuses an update while no round is running', () => {
    const { h, a, b } = running();
    a.binary(signedUpdate(k.alice, h.config, 0));
    b.binary(signedUpdate(k.bob, h.config, 0));
    expect(h.coordinator.status().phase).toBe('waiting');
    a.binary(signedUpdate(k.alice, h.config, 1));
    expect(h.coordinator.status().rejected).toEqual({ 'stale-round': 1 });
  });

  it('refuses an update larger than maxMessageBytes before checking anything else', () => {
    const { h, a, b } = running(testConfig({ minMembers: 2, maxMessageBytes: 1024 }));
    const env = signedUpdate(k.alice, h.config, 0);
    expect(env.length).toBeGreaterThan(1024 + 200);
    a.binary(env);
    // Even with a bad signature, size is what it is refused for.
    b.binary(withSender(signedUpdate(k.dave, h.config, 0), k.dave, k.bob));
    expect(h.coordinator.status().rejected).toEqual({ 'envelope-size': 2 });
    expect(h.coordinator.status().delivered).toEqual([]);
    expect(storedUpdates(h, 0)).toEqual([]);
  });

  it('tells the sender why, in a rejected message naming the check', () => {
    const { h, b } = running();
    b.binary(signedUpdate(k.alice, h.config, 0));
    expect(b.last('rejected')?.reason).toContain(k.alice.address);
  });
});
