// The gather exchange (src/contributor/gather.ts) on a hand-moved clock, through the same
// harness as the round's state machine: what a peer serves (at most 2(K+1) updates a round,
// then 'busy'), where it turns when a neighbour refuses, stays silent or sends bad bytes (the
// next neighbour, then the store), and that it holds at most K+1 updates.
import { beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope } from '../../src/net/envelope.ts';
import { HAVE_WAIT_MS, MAX_CONCURRENT_SERVES, WANT_TIMEOUT_MS, servingCap } from '../../src/contributor/gather.ts';
import { FakeReplica, announce, devKeys, entry, envelope, makeExchange, settle, updatePayload, type Harness, type Keys } from './exchange-harness.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const H = 3;

/** Alice (us) with neighbours Bob, Carol and Dave, gatherK = K; she trains round 0 and the store accepts her update. */
async function trained(K: number): Promise<{ h: Harness; done: Promise<void>; mine: Uint8Array; myHash: string }> {
  const h = makeExchange(k.alice, { gatherK: K });
  for (const p of [k.bob, k.carol, k.dave]) {
    h.peers.push(p.address);
    h.mesh.linked.add(p.address);
  }
  h.exchange.hold(0);
  const done = h.exchange.run();
  announce(h, 0, 10);
  await h.clock.advance(H * FakeReplica.STEP_MS);
  const mine = h.link.binary[0];
  const myHash = entry(k.alice, mine).hash;
  h.hear({ type: 'accepted', round: 0, hash: myHash });
  await settle();
  return { h, done, mine, myHash };
}

async function stop(h: Harness, done: Promise<void>): Promise<void> {
  h.state.stopMode = 'now';
  h.hear({ type: 'error', message: 'stop' });
  await done;
}

const wants = (h: Harness) => h.mesh.gathers.flatMap((x) => (x.gather.type === 'want' ? [{ to: x.to, gather: x.gather }] : []));

describe('gather exchange (fake clock)', () => {
  it('serves what it holds to neighbours that ask, at most 2(K+1) a round, then refuses them at once', async () => {
    const K = 1;
    const { h, done, mine, myHash } = await trained(K);
    expect(servingCap(K)).toBe(4);
    for (let i = 0; i < 5; i++) {
      h.gatherFrom(i % 2 ? k.bob : k.carol, { type: 'want', round: 0, hash: myHash });
      await settle(); // each send done before the next want
    }
    h.gatherFrom(k.dave, { type: 'want', round: 0, hash: 'cd'.repeat(32) });
    await settle();
    expect(h.mesh.updates.map((x) => x.update)).toEqual([mine, mine, mine, mine]);
    expect(h.mesh.gathers.filter((x) => x.gather.type === 'refuse')).toEqual([
      { to: k.carol.address, gather: { type: 'refuse', round: 0, hash: myHash, reason: 'busy' } },
      { to: k.dave.address, gather: { type: 'refuse', round: 0, hash: 'cd'.repeat(32), reason: 'missing' } },
    ]);
    // Upload this round: our update once to the store, and the cap's worth to neighbours.
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine)], delivered: 9, checkpointBy: null });
    await settle();
    expect(h.of('commit')[0]).toMatchObject({ served: 4, refusedBusy: 1, fromPeers: 0, fetched: 0 });
    expect(h.of('commit')[0].roundBytesUp).toBeLessThanOrEqual(mine.length * (1 + servingCap(K)) + 2000);
    await stop(h, done);
  });

  it(`sends at most ${MAX_CONCURRENT_SERVES} updates at once and refuses the next want at once instead of queueing it`, async () => {
    const { h, done, myHash } = await trained(8);
    h.mesh.slow = true;
    for (const p of [k.bob, k.carol, k.dave]) h.gatherFrom(p, { type: 'want', round: 0, hash: myHash });
    await settle();
    expect(h.mesh.updates.map((x) => x.to)).toHaveLength(MAX_CONCURRENT_SERVES);
    expect(h.mesh.gathers.filter((x) => x.gather.type === 'refuse').map((x) => x.gather)).toEqual([{ type: 'refuse', round: 0, hash: myHash, reason: 'busy' }]);
    h.mesh.finish();
    await settle();
    h.gatherFrom(k.dave, { type: 'want', round: 0, hash: myHash }); // asked again once the uplink is free: served
    await settle();
    expect(h.mesh.updates).toHaveLength(MAX_CONCURRENT_SERVES + 1);
    h.mesh.finish();
    await stop(h, done);
  });

  it('moves on when a neighbour refuses or stays silent, and takes the store last; bad bytes are counted, not fatal', async () => {
    const { h, done, mine } = await trained(4);
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    const bobHash = entry(k.bob, bob).hash;
    const carolHash = entry(k.carol, carol).hash;
    // Bob's update: Bob and Dave have it. Carol's: only Carol, who will not answer.
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [bobHash] });
    h.gatherFrom(k.dave, { type: 'have', round: 0, hashes: [bobHash] });
    h.gatherFrom(k.carol, { type: 'have', round: 0, hashes: [carolHash] });
    h.http.updates.set(`0/${k.carol.address}`, carol);
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob), entry(k.carol, carol)], delivered: 3, checkpointBy: null });
    await settle();
    // One want for each, to one of its holders.
    expect(wants(h).map((x) => x.gather.hash).sort()).toEqual([bobHash, carolHash].sort());
    const first = wants(h).find((x) => x.gather.hash === bobHash)!.to === k.bob.address ? k.bob : k.dave;
    const second = first === k.bob ? k.dave : k.bob;
    // The first is busy: the other holder is asked next. It first sends the wrong update and a forged one.
    h.gatherFrom(first, { type: 'refuse', round: 0, hash: bobHash, reason: 'busy' });
    await settle();
    expect(wants(h).at(-1)).toEqual({ to: second.address, gather: { type: 'want', round: 0, hash: bobHash } });
    h.fromPeer(second, carol); // not what we asked it for
    const forged = envelope(k.bob, 0, updatePayload(0, 0xb0)).slice();
    forged[forged.length - 1] ^= 1;
    h.fromPeer(second, forged); // a broken signature
    h.fromPeer(second, bob);
    await settle();
    expect(h.of('rejected').map((e) => e.reason)).toEqual(['unasked', 'envelope-signature']);
    // Carol never answers: after WANT_TIMEOUT_MS hers comes from the store.
    await h.clock.advance(WANT_TIMEOUT_MS - 1);
    expect(h.http.gets).toEqual([]);
    await h.clock.advance(1 + HAVE_WAIT_MS);
    expect(h.http.gets).toEqual([`http://coordinator.test/update/0/${k.carol.address}`]);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0), updatePayload(0, 0xc0)] }]);
    expect(h.of('commit')[0]).toMatchObject({ fromPeers: 1, fetched: 1, rejected: { unasked: 1, 'envelope-signature': 1, frames: 0 } });
    // Carol's answer comes at last: a late answer to our own want is dropped without blame.
    h.fromPeer(k.carol, carol);
    expect(h.refusals.total).toBe(2);
    await stop(h, done);
  });

  it('holds at most K+1 updates: its own only while committed, and the previous round is dropped when the next gather starts (a late want for it is refused)', async () => {
    const K = 2;
    const { h, done, mine } = await trained(K);
    const others = [k.bob, k.carol].map((p) => envelope(p, 0, updatePayload(0, p === k.bob ? 0xb0 : 0xc0)));
    for (const [i, p] of [k.bob, k.carol].entries()) h.http.updates.set(`0/${p.address}`, others[i]);
    // Our own is not committed (K = 2 of 3 delivered): after the commit we hold exactly the K.
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, others[0]), entry(k.carol, others[1])], delivered: 3, checkpointBy: null });
    await h.clock.advance(HAVE_WAIT_MS);
    expect(h.of('commit')[0]).toMatchObject({ held: K, fetched: 2 });
    // Round 1: our new update joins round 0's K (kept a round for slower neighbours): K + 1.
    announce(h, 1, 10);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    expect(h.exchange.gather.heldCount).toBe(K + 1);
    const mine1 = h.link.binary[1];
    const bob1 = envelope(k.bob, 1, updatePayload(1, 0xb1));
    h.http.updates.set(`1/${k.bob.address}`, bob1);
    h.hear({ type: 'commit', round: 1, included: [entry(k.alice, mine1), entry(k.bob, bob1)], delivered: 5, checkpointBy: null });
    await h.clock.advance(HAVE_WAIT_MS);
    expect(h.of('commit')[1]).toMatchObject({ round: 1, held: 2, fetched: 1 });
    expect(h.exchange.gather.heldCount).toBeLessThanOrEqual(K + 1);
    expect(openEnvelope(mine, { run: h.config.run, maxPayloadBytes: 1e6 }).header.round).toBe(0);
    // A slower neighbour's news of round 0 is ignored, not counted; its want for round 0 is refused: we no longer hold it.
    const refusedBefore = h.refusals.total;
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [entry(k.bob, others[0]).hash] });
    h.gatherFrom(k.bob, { type: 'want', round: 0, hash: entry(k.carol, others[1]).hash });
    await settle();
    expect(h.refusals.total).toBe(refusedBefore);
    expect(h.mesh.gathers.at(-1)).toEqual({ to: k.bob.address, gather: { type: 'refuse', round: 0, hash: entry(k.carol, others[1]).hash, reason: 'missing' } });
    await stop(h, done);
  });

  it('tells a neighbour whose link comes up what it holds, and refuses a neighbour announcing more than a round can hold', async () => {
    const { h, done, myHash } = await trained(3);
    h.exchange.gather.linkUp(k.bob.address);
    expect(h.mesh.gathers.at(-1)).toEqual({ to: k.bob.address, gather: { type: 'have', round: 0, hashes: [myHash] } });
    const many = Array.from({ length: h.config.gatherK + 1 }, (_, i) => i.toString(16).padStart(64, '0'));
    h.gatherFrom(k.carol, { type: 'have', round: 0, hashes: many });
    h.gatherFrom(k.carol, { type: 'have', round: 0, hashes: ['ff'.repeat(32)] });
    expect(h.of('rejected').map((e) => e.reason)).toEqual(['gather-flood']);
    await stop(h, done);
  });
});
