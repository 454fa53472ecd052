import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { toHex } from '../../src/base/hex.ts';
import { envelopeRoot } from '../../src/net/pieces.ts';
import { Peer, devKeys, joinAll, makeCoordinator, modelUpdate, removeTempDirs, seal, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

const sorted = (...a: string[]) => [...a].sort();

describe('coordinator: starting a round', () => {
  it('starts once minMembers peers are synced, and tells each member the member count and deadline', () => {
    const h = makeCoordinator(testConfig({ minMembers: 2, seed: 77 }));
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]).slice(0, 2);
    // joinAll synced both: with nobody else awaited, the round starts at once.
    const round = { type: 'round', round: 0, memberCount: 2, members: [], stages: [], seed: 77, deadline: h.clock.t + 60_000, tokensTrained: 0 };
    expect(a.last('round')).toEqual(round);
    expect(b.last('round')).toEqual(round);
    expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: 0, members: sorted(k.alice.address, k.bob.address), deadline: round.deadline, delivered: [] });
  });

  it('does not start with fewer than minMembers synced peers, however long it waits', () => {
    const h = makeCoordinator(testConfig({ minMembers: 2 }));
    const a = new Peer(h.coordinator, k.alice);
    a.join();
    a.synced(0);
    const b = new Peer(h.coordinator, k.bob);
    b.join(); // joined, never synced
    for (let i = 0; i < 10; i++) {
      h.clock.advance(10_000);
      a.text({ type: 'heartbeat' });
      b.text({ type: 'heartbeat' });
      h.coordinator.tick();
    }
    expect(h.coordinator.status().phase).toBe('waiting');
    expect(a.all('round')).toEqual([]);
    b.synced(0);
    expect(h.coordinator.status().phase).toBe('training');
  });

  it('waits the grace period for the other joined peers, then starts without them', () => {
    const h = makeCoordinator(testConfig({ minMembers: 1 }), { syncGraceMs: 1000 });
    const a = new Peer(h.coordinator, k.alice);
    a.join();
    const b = new Peer(h.coordinator, k.bob);
    b.join();
    a.synced(0);
    expect(h.coordinator.status().phase).toBe('waiting');
    h.clock.advance(999);
    h.coordinator.tick();
    expect(h.coordinator.status().phase).toBe('waiting');
    h.clock.advance(1);
    h.coordinator.tick();
    expect(h.coordinator.status()).toMatchObject({ phase: 'training', members: [k.alice.address] });
    // Not a member: it is not told of the round.
    expect(a.last('round')?.memberCount).toBe(1);
    expect(b.all('round')).toEqual([]);
  });

  it('starts with everyone at once when the awaited peer syncs within the grace period', () => {
    const h = makeCoordinator(testConfig({ minMembers: 1 }), { syncGraceMs: 5000 });
    const [a, b] = [k.alice, k.bob].map((key) => new Peer(h.coordinator, key));
    a.join();
    b.join();
    a.synced(0);
    h.clock.advance(2000);
    h.coordinator.tick();
    expect(a.all('round')).toEqual([]);
    b.synced(0);
    expect(a.all('round')).toHaveLength(1);
    expect(a.last('round')?.memberCount).toBe(2);
  });

  it('adds a peer that syncs mid-round and tells only it, same deadline', () => {
    const h = makeCoordinator(testConfig({ minMembers: 1 }), { syncGraceMs: 0 });
    const a = new Peer(h.coordinator, k.alice);
    a.join();
    a.synced(0);
    const first = a.last('round')!;
    expect(first.memberCount).toBe(1);
    h.clock.advance(5000);
    const b = new Peer(h.coordinator, k.bob);
    b.join();
    expect(b.last('welcome')?.state).toMatchObject({ phase: 'training', round: 0, memberCount: 1 });
    b.synced(0);
    expect(b.last('round')).toEqual({ ...first, memberCount: 2 });
    expect(a.all('round')).toHaveLength(1);
    const again = { members: sorted(k.alice.address, k.bob.address) };
    // A peer holding an older round is not added.
    const c = new Peer(h.coordinator, k.carol);
    c.join();
    c.synced(3);
    expect(h.coordinator.status().members).toEqual(again.members);
  });

  it('records synced weight hashes and reports for the status page', () => {
    const h = makeCoordinator();
    const a = new Peer(h.coordinator, k.alice);
    a.join();
    a.synced(0, 'cd'.repeat(16));
    a.text({ type: 'report', round: 0, loss: 2.5, bytesUp: 10, bytesDown: 20, rejected: 1, peers: 3 });
    expect(h.coordinator.status().reports['0'][k.alice.address]).toEqual({ weightsHash: 'cd'.repeat(16), stage: 0, loss: 2.5, bytesUp: 10, bytesDown: 20, rejected: 1, peers: 3 });
    a.text({ type: 'report', round: 99, loss: 1, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 }); // far future: ignored
    expect(Object.keys(h.coordinator.status().reports)).toEqual(['0']);
  });
});

describe('coordinator: closing a round', () => {
  it('commits when every member delivered: updates sorted by sender, with payload hashes', () => {
    const h = makeCoordinator(testConfig({ minMembers: 3 }));
    const peers = joinAll(h.coordinator, [k.alice, k.bob, k.carol]);
    const watcher = new Peer(h.coordinator, k.dave);
    watcher.join(); // joined, not a member: still told of the commit
    const payloads = peers.map((_, i) => modelUpdate(h.config, 0, i + 1));
    const envelopes = peers.map((p, i) => seal(p.key!, 0, payloads[i]));
    // Deliver in reverse address order, so the sort is visible.
    const order = peers.map((_, i) => i).sort((i, j) => (peers[i].address < peers[j].address ? 1 : -1));
    for (const i of order.slice(0, 2)) peers[i].binary(envelopes[i]);
    expect(h.coordinator.status().phase).toBe('training');
    expect(h.coordinator.status().delivered).toEqual(sorted(...order.slice(0, 2).map((i) => peers[i].address)));
    // Stored as it arrived, served before the commit (its sender offers it to neighbours already).
    expect(h.coordinator.storedUpdate(0, peers[order[0]].address)).toEqual(envelopes[order[0]]);
    h.clock.advance(1234);
    peers[order[2]].binary(envelopes[order[2]]);

    // Each committed entry names the root of its envelope's piece hashes (src/net/pieces.ts); the delivered list does not.
    const delivered = peers
      .map((p, i) => ({ sender: p.address, hash: toHex(blake2AsU8a(payloads[i], 256)), stage: 0 }))
      .sort((x, y) => (x.sender < y.sender ? -1 : 1));
    const included = delivered.map((e) => ({ ...e, pieces: envelopeRoot(envelopes[peers.findIndex((p) => p.address === e.sender)]) }));
    const commit = { type: 'commit', round: 0, included, delivered: 3, checkpointBy: included[0].sender };
    for (const p of [...peers, watcher]) expect(p.last('commit')).toEqual(commit);
    // When each update arrived (the copy check orders by it): the last one 1234 ms after the others.
    const deliveredAt = Object.fromEntries(order.map((i, n) => [peers[i].address, h.clock.t - (n < 2 ? 1234 : 0)]));
    // The round started when the first two delivered (no time passed before them).
    expect(h.coordinator.commit(0)).toEqual({ round: 0, members: included.map((e) => e.sender), included, delivered, missing: [], startedAt: h.clock.t - 1234, closedAt: h.clock.t, deliveredAt, invalid: {}, checkpointBy: { 0: included[0].sender } });
    expect(h.coordinator.status()).toMatchObject({ round: 1, phase: 'waiting', members: [], delivered: [], deadline: null, rejected: {} });
    for (const [i, p] of peers.entries()) expect(h.coordinator.storedUpdate(0, p.address)).toEqual(envelopes[i]);
    expect(h.coordinator.storedUpdate(0, k.dave.address)).toBeNull();
  });

  it('commits at the deadline, listing the members that delivered nothing', () => {
    const h = makeCoordinator(testConfig({ minMembers: 2, roundSeconds: 30 }));
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
    a.binary(seal(k.alice, 0, modelUpdate(h.config, 0)));
    h.clock.advance(29_999);
    for (const p of [a, b]) p.text({ type: 'heartbeat' });
    h.coordinator.tick();
    expect(h.coordinator.status().phase).toBe('training');
    h.clock.advance(1);
    h.coordinator.tick();
    expect(b.last('commit')).toMatchObject({ round: 0, included: [{ sender: k.alice.address }], checkpointBy: k.alice.address });
    expect(h.coordinator.commit(0)).toMatchObject({ members: sorted(k.alice.address, k.bob.address), missing: [k.bob.address] });
    expect(h.coordinator.status().commits).toEqual([{ round: 0, members: 2, included: [k.alice.address], delivered: 1, missing: [k.bob.address] }]);
    expect(h.coordinator.round).toBe(1);
  });

  it('commits an empty round at the deadline, with no one to checkpoint', () => {
    const h = makeCoordinator();
    const [a] = joinAll(h.coordinator, [k.alice]);
    h.clock.advance(60_000);
    a.text({ type: 'heartbeat' });
    h.coordinator.tick();
    expect(a.last('commit')).toEqual({ type: 'commit', round: 0, included: [], delivered: 0, checkpointBy: null });
    expect(h.coordinator.commit(0)?.missing).toEqual([k.alice.address]);
  });

  it('removes a member that disconnects mid-round and closes the round without it', () => {
    const h = makeCoordinator(testConfig({ minMembers: 2 }));
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
    a.binary(seal(k.alice, 0, modelUpdate(h.config, 0)));
    b.disconnect();
    expect(a.last('commit')?.included.map((e) => e.sender)).toEqual([k.alice.address]);
    expect(h.coordinator.commit(0)).toMatchObject({ members: [k.alice.address], missing: [] });
    expect(a.last('neighbours')?.neighbours).toEqual([]);
  });

  it('keeps the update of a member that delivered and then left', () => {
    const h = makeCoordinator(testConfig({ minMembers: 3 }));
    const [a, b, c] = joinAll(h.coordinator, [k.alice, k.bob, k.carol]);
    const env = seal(k.alice, 0, modelUpdate(h.config, 0));
    a.binary(env);
    a.disconnect();
    b.binary(seal(k.bob, 0, modelUpdate(h.config, 0, 2)));
    expect(h.coordinator.status().phase).toBe('training'); // carol still owes hers
    c.binary(seal(k.carol, 0, modelUpdate(h.config, 0, 3)));
    expect(h.coordinator.commit(0)).toMatchObject({ members: [k.bob.address, k.carol.address].sort(), missing: [] });
    expect(b.last('commit')?.included.map((e) => e.sender)).toEqual([k.alice.address, k.bob.address, k.carol.address].sort());
    expect(h.coordinator.storedUpdate(0, k.alice.address)).toEqual(env);
  });

  it('closes the round when its last member leaves', () => {
    const h = makeCoordinator();
    const [a] = joinAll(h.coordinator, [k.alice]);
    const other = new Peer(h.coordinator, k.bob);
    other.join();
    a.disconnect();
    expect(other.last('commit')).toEqual({ type: 'commit', round: 0, included: [], delivered: 0, checkpointBy: null });
    expect(h.coordinator.status()).toMatchObject({ round: 1, phase: 'waiting' });
  });

  it('drops a peer silent for heartbeatSeconds × heartbeatMisses, and takes it out of the round', () => {
    // 5 s × 3 misses: silent for more than 15 s.
    const h = makeCoordinator(testConfig({ minMembers: 2, roundSeconds: 600 }));
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
    const lurker = new Peer(h.coordinator); // connected, never joined, never speaks
    for (let t = 0; t < 3; t++) {
      h.clock.advance(5000);
      a.text({ type: 'heartbeat' });
      h.coordinator.tick();
    }
    expect(b.conn.closed).toBeNull();
    h.clock.advance(1);
    h.coordinator.tick();
    expect(b.conn.closed?.code).toBe(4003);
    expect(lurker.conn.closed?.code).toBe(4003);
    expect(a.conn.closed).toBeNull();
    expect(h.coordinator.status()).toMatchObject({ peers: [k.alice.address], members: [k.alice.address], phase: 'training' });
    expect(a.last('neighbours')?.neighbours).toEqual([]);
    // Its update no longer counts; alice's alone closes the round.
    a.binary(seal(k.alice, 0, modelUpdate(h.config, 0)));
    expect(h.coordinator.commit(0)).toMatchObject({ members: [k.alice.address], missing: [] });
  });

  it('any message counts as a sign of life, binary ones too', () => {
    const h = makeCoordinator(testConfig({ minMembers: 1 }));
    const [a] = joinAll(h.coordinator, [k.alice]);
    h.clock.advance(14_000);
    a.binary(new Uint8Array([1, 2, 3])); // refused, but alive
    h.clock.advance(14_000);
    h.coordinator.tick();
    expect(a.conn.closed).toBeNull();
    h.clock.advance(1001);
    h.coordinator.tick();
    expect(a.conn.closed?.code).toBe(4003);
  });

  it('runs round after round: the next starts when the members sync its θ_start', () => {
    const h = makeCoordinator(testConfig({ minMembers: 2, checkpointEvery: 2 }), { syncGraceMs: 1000 });
    const [a, b] = joinAll(h.coordinator, [k.alice, k.bob]);
    for (let r = 0; r < 3; r++) {
      for (const p of [a, b]) p.binary(seal(p.key!, r, modelUpdate(h.config, r, r + 10)));
      const c = a.last('commit')!;
      expect(c.round).toBe(r);
      expect(c.checkpointBy).toBe(r % 2 === 1 ? c.included[0].sender : null);
      a.synced(r + 1);
      h.clock.advance(500);
      h.coordinator.tick();
      expect(h.coordinator.status().phase).toBe('waiting'); // bob is awaited
      b.synced(r + 1);
      expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: r + 1 });
      expect(b.last('round')).toMatchObject({ round: r + 1, deadline: h.clock.t + 60_000 });
    }
    expect(h.coordinator.status().commits.map((c) => c.round)).toEqual([0, 1, 2]);
    expect(h.coordinator.runState().oldestCommit).toBe(0);
  });
});
