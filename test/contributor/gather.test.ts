// The gather exchange (src/contributor/gather.ts) on a hand-moved clock, through the same
// harness as the round's state machine: what a peer serves (at most 2(K+1) updates' worth of
// pieces a round, then 'spent'; at most MAX_CONCURRENT_SERVES pieces at once, then 'busy'),
// how a receiver takes an update's pieces from several neighbours, checks each (a bad piece
// is counted and its sender dropped), resumes when a neighbour vanishes and takes only the
// missing pieces from the store, and that it holds at most K+1 updates. The scheduler's own
// rules (timeouts, backoffs) are test/contributor/piece-scheduler.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { toHex } from '../../src/base/hex.ts';
import { md5Hex } from '../../src/base/md5.ts';
import { FORGED_PAYLOAD, type CommitEntry } from '../../src/protocol/messages.ts';
import { openEnvelope } from '../../src/net/envelope.ts';
import { PIECE_BYTES, listPieces } from '../../src/net/pieces.ts';
import { MAX_CONCURRENT_SERVES, servingCap } from '../../src/contributor/gather.ts';
import { STALL_MS } from '../../src/contributor/piece-scheduler.ts';
import { FakeReplica, announce, devKeys, entry, envelope, makeExchange, pieceEnvelope, settle, updatePayload, type Harness, type Keys } from './exchange-harness.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const H = 3;

/** A payload of three pieces once in its envelope (the fake replica reads only its first byte). */
function bigPayload(round: number, tag: number): Uint8Array {
  const p = new Uint8Array(2 * PIECE_BYTES + 500_000).map((_, i) => (i * 7 + tag) & 0xff);
  p.set(updatePayload(round, tag));
  return p;
}

/** What was applied, with each payload as its hash (a deep compare of megabytes, element by element, takes vitest half a minute). */
function digest(applied: { round: number; payloads: Uint8Array[] }[]): { round: number; payloads: string[] }[] {
  return applied.map((a) => ({ round: a.round, payloads: a.payloads.map((p) => `${p.length}:${toHex(blake2AsU8a(p, 256))}`) }));
}

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

const wants = (h: Harness) => h.mesh.gathers.flatMap((x) => (x.gather.type === 'want' || x.gather.type === 'want-list' ? [{ to: x.to, gather: x.gather }] : []));

describe('gather exchange (fake clock)', () => {
  it('serves what it holds to neighbours that ask, at most 2(K+1) updates\' worth a round, then refuses them at once', async () => {
    const K = 1;
    const { h, done, mine, myHash } = await trained(K);
    expect(servingCap(K)).toBe(4);
    h.gatherFrom(k.bob, { type: 'want-list', round: 0, hash: myHash });
    await settle();
    expect(h.mesh.gathers.at(-1)).toMatchObject({ to: k.bob.address, gather: { type: 'list', round: 0, hash: myHash, bytes: mine.length, pieces: [expect.any(String)] } });
    for (let i = 0; i < 5; i++) {
      h.gatherFrom(i % 2 ? k.bob : k.carol, { type: 'want', round: 0, hash: myHash, piece: 0 });
      await settle(); // each send done before the next want
    }
    h.gatherFrom(k.dave, { type: 'want', round: 0, hash: 'cd'.repeat(32), piece: 0 });
    h.gatherFrom(k.dave, { type: 'want', round: 0, hash: myHash, piece: 1 }); // past its last piece
    await settle();
    expect(h.mesh.pieces.map((x) => x.piece)).toEqual(Array(4).fill({ hash: myHash, index: 0, data: mine }));
    expect(h.mesh.gathers.filter((x) => x.gather.type === 'refuse')).toEqual([
      { to: k.carol.address, gather: { type: 'refuse', round: 0, hash: myHash, piece: 0, reason: 'spent' } },
      { to: k.dave.address, gather: { type: 'refuse', round: 0, hash: 'cd'.repeat(32), piece: 0, reason: 'missing' } },
      { to: k.dave.address, gather: { type: 'refuse', round: 0, hash: myHash, piece: 1, reason: 'missing' } },
    ]);
    // Upload this round: our update once to the store, and the cap's worth to neighbours.
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine)], delivered: 9, checkpointBy: null });
    await settle();
    expect(h.of('commit')[0]).toMatchObject({ served: 4, refusedBusy: 1, fromPeers: 0, fetched: 0 });
    expect(h.of('commit')[0].roundBytesUp).toBeLessThanOrEqual(mine.length * (1 + servingCap(K)) + 4000);
    await stop(h, done);
  });

  it(`sends at most ${MAX_CONCURRENT_SERVES} pieces at once and refuses the next want 'busy' at once instead of queueing it`, async () => {
    const { h, done, myHash } = await trained(8);
    h.mesh.slow = true;
    for (const p of [k.bob, k.carol, k.dave]) h.gatherFrom(p, { type: 'want', round: 0, hash: myHash, piece: 0 });
    await settle();
    expect(h.mesh.pieces.map((x) => x.to)).toHaveLength(MAX_CONCURRENT_SERVES);
    expect(h.mesh.gathers.filter((x) => x.gather.type === 'refuse').map((x) => x.gather)).toEqual([{ type: 'refuse', round: 0, hash: myHash, piece: 0, reason: 'busy' }]);
    h.mesh.finish();
    await settle();
    h.gatherFrom(k.dave, { type: 'want', round: 0, hash: myHash, piece: 0 }); // asked again once the uplink is free: served
    await settle();
    expect(h.mesh.pieces).toHaveLength(MAX_CONCURRENT_SERVES + 1);
    h.mesh.finish();
    await stop(h, done);
  });

  it('takes the pieces of one update from several neighbours, drops a bad piece and its sender, and resumes from another when a neighbour vanishes', async () => {
    const { h, done, mine } = await trained(4);
    const keyOf = (address: string) => [k.bob, k.carol, k.dave].find((p) => p.address === address)!;
    const bob = envelope(k.bob, 0, bigPayload(0, 0xb0));
    const bobHash = entry(k.bob, bob).hash;
    for (const p of [k.bob, k.carol, k.dave]) h.gatherFrom(p, { type: 'have', round: 0, hashes: [bobHash] });
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob)], delivered: 2, checkpointBy: null });
    await settle();
    expect(wants(h).map((x) => x.gather.type)).toEqual(['want-list']);
    const lister = keyOf(wants(h)[0].to);
    await h.serve(lister, bob); // the list, then the piece it is asked for (its next ask waits for it)
    // The three pieces went to three neighbours, one each.
    const asked = wants(h).flatMap((x) => (x.gather.type === 'want' ? [{ to: x.to, piece: x.gather.piece }] : []));
    expect(asked.slice(0, 3).map((x) => x.piece).sort()).toEqual([0, 1, 2]);
    expect(new Set(asked.slice(0, 3).map((x) => x.to)).size).toBe(3);
    const [liar, gone] = asked.filter((x) => x.to !== lister.address);
    // One sends its piece with a flipped byte: dropped, counted; the other's link drops before it answers.
    const x = bob.slice(liar.piece * PIECE_BYTES, (liar.piece + 1) * PIECE_BYTES);
    x[99] ^= 1;
    h.fromPeer(keyOf(liar.to), pieceEnvelope(keyOf(liar.to), 0, bob, liar.piece, x));
    h.mesh.linked.delete(gone.to);
    h.exchange.gather.linkDown(gone.to);
    await settle();
    // The lister is asked for the rest, one piece at a time; nothing already checked is asked again.
    expect(await h.serve(lister, bob)).toBe(2);
    await settle();
    expect(digest(h.replica.applied)).toEqual(digest([{ round: 0, payloads: [updatePayload(0, 0xa1), bigPayload(0, 0xb0)] }]));
    expect(h.of('commit')[0]).toMatchObject({ fromPeers: 1, fetched: 0, rejected: { 'bad-piece': 1 } });
    expect(h.http.gets).toEqual([]);
    expect(wants(h).filter((w) => w.to === liar.to)).toHaveLength(1); // not asked again this round
    await stop(h, done);
  });

  it('takes only the missing pieces from the store (one ranged read) when the neighbour serving them vanishes; a whole update when nobody announced it', async () => {
    const { h, done, mine } = await trained(4);
    const bob = envelope(k.bob, 0, bigPayload(0, 0xb0));
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    const bobHash = entry(k.bob, bob).hash;
    for (const [p, env] of [[k.bob, bob], [k.carol, carol]] as const) h.http.updates.set(`0/${p.address}`, env);
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [bobHash] });
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob), entry(k.carol, carol)], delivered: 3, checkpointBy: null });
    await settle();
    const list = listPieces(bob);
    h.gatherFrom(k.bob, { type: 'list', round: 0, hash: bobHash, bytes: list.bytes, pieceBytes: list.pieceBytes, pieces: list.hashes });
    await settle();
    h.fromPeer(k.bob, pieceEnvelope(k.bob, 0, bob, 0));
    h.mesh.linked.delete(k.bob.address);
    h.exchange.gather.linkDown(k.bob.address);
    await h.clock.advance(STALL_MS - 1);
    expect(h.http.gets).toEqual([]);
    await h.clock.advance(1);
    const base = 'http://coordinator.test/update/0/';
    expect(h.http.gets.sort()).toEqual([`${base}${k.bob.address} bytes=${PIECE_BYTES}-${bob.length}`, `${base}${k.carol.address}`].sort());
    await settle();
    expect(digest(h.replica.applied)).toEqual(digest([{ round: 0, payloads: [updatePayload(0, 0xa1), bigPayload(0, 0xb0), updatePayload(0, 0xc0)] }]));
    expect(h.of('commit')[0]).toMatchObject({ fromPeers: 0, fetched: 2 });
    // Down this round: one piece from Bob, two from the store, Carol's whole update.
    expect(h.of('commit')[0].roundBytesDown).toBe(bob.length - PIECE_BYTES + carol.length);
    await stop(h, done);
  });

  it("applies as nothing, counted, a committed update whose store copy does not match its signed hash (a bucket's intake reads only headers); an honest one without a piece root comes whole from the store", async () => {
    const { h, done, mine } = await trained(4);
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    // Carol's object in the store: her signed header and signature, a payload byte changed after signing.
    const forged = carol.slice();
    forged[forged.length - 64 - 1] ^= 0xff;
    h.http.updates.set(`0/${k.bob.address}`, bob);
    h.http.updates.set(`0/${k.carol.address}`, forged);
    // Taken in by the header alone: no piece root in the commit.
    const { pieces: _bobRoot, ...bobEntry } = entry(k.bob, bob);
    const { pieces: _carolRoot, ...carolEntry } = entry(k.carol, carol);
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), bobEntry, carolEntry], delivered: 3, checkpointBy: null });
    await settle();
    expect(h.replica.applied).toHaveLength(1);
    const applied = h.replica.applied[0].payloads;
    expect(digest([{ round: 0, payloads: applied.slice(0, 2) }])).toEqual(digest([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0)] }]));
    expect(applied[2]).toBe(FORGED_PAYLOAD);
    expect(h.refusals.byReason).toEqual({ 'update-forged': 1 });
    await stop(h, done);
  });

  it("with a bucket every replica applies the bucket's envelope, whatever root its author signed: a neighbour's copy with another MD5 than the bucket's gives way to the store's; a store envelope whose root is not the commit's is applied by its signed payload, counted, not served", async () => {
    // Bob signs the same payload twice (sr25519 signatures are randomised): the bucket holds
    // one envelope, the commit names the root of the other, which he serves to neighbours;
    // beside it the commit names the bucket's ETag, the MD5 of the body in the bucket.
    const payload = bigPayload(0, 0xb0);
    const inStore = envelope(k.bob, 0, payload);
    const rooted = envelope(k.bob, 0, payload);
    expect(toHex(inStore)).not.toBe(toHex(rooted)); // the last piece (the signature) differs
    const lying = { ...entry(k.bob, rooted), bodyMd5: md5Hex(inStore) };
    expect(lying.hash).toBe(entry(k.bob, inStore).hash);
    const expected = digest([{ round: 0, payloads: [updatePayload(0, 0xa1), payload] }]);
    const commit = (h: Harness, mine: Uint8Array, e: CommitEntry = lying, stored = inStore) => {
      h.http.updates.set(`0/${k.bob.address}`, stored);
      h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), e], delivered: 2, checkpointBy: null });
    };
    const base = `http://coordinator.test/update/0/${k.bob.address}`;

    // 1. From a neighbour holding the rooted copy: its pieces check against the root, its MD5 is not the bucket's: the bucket's, whole.
    const a = await trained(4);
    a.h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [lying.hash] });
    commit(a.h, a.mine);
    await settle();
    while ((await a.h.serve(k.bob, rooted)) > 0) await settle();
    await settle();
    expect(a.h.http.gets).toEqual([base]);
    expect(digest(a.h.replica.applied)).toEqual(expected);
    expect(a.h.refusals.byReason).toEqual({ 'update-root-mismatch': 1 });
    await stop(a.h, a.done);

    // 2. Nobody announced it: the store's envelope, whole; root mismatch counted, the payload applied.
    const b = await trained(4);
    commit(b.h, b.mine);
    await b.h.clock.advance(STALL_MS);
    await settle();
    expect(b.h.http.gets).toEqual([base]);
    expect(digest(b.h.replica.applied)).toEqual(expected);
    expect(b.h.refusals.byReason).toEqual({ 'update-root-mismatch': 1 });
    // Its list would not check against the commit's root: refused as not held, not served.
    b.h.gatherFrom(k.carol, { type: 'want-list', round: 0, hash: lying.hash });
    await settle();
    expect(b.h.mesh.gathers.at(-1)).toEqual({ to: k.carol.address, gather: { type: 'refuse', round: 0, hash: lying.hash, reason: 'missing' } });
    await stop(b.h, b.done);

    // 3. The rooted list and piece 0 from Bob, who vanishes: the store's pieces 1–2 fail the list (the signature differs), so the whole is read.
    const c = await trained(4);
    c.h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [lying.hash] });
    commit(c.h, c.mine);
    await settle();
    const list = listPieces(rooted);
    c.h.gatherFrom(k.bob, { type: 'list', round: 0, hash: lying.hash, bytes: list.bytes, pieceBytes: list.pieceBytes, pieces: list.hashes });
    await settle();
    c.h.fromPeer(k.bob, pieceEnvelope(k.bob, 0, rooted, 0));
    c.h.mesh.linked.delete(k.bob.address);
    c.h.exchange.gather.linkDown(k.bob.address);
    await c.h.clock.advance(STALL_MS);
    await settle();
    expect(c.h.http.gets).toEqual([`${base} bytes=${PIECE_BYTES}-${inStore.length}`, base]);
    expect(digest(c.h.replica.applied)).toEqual(expected);
    expect(c.h.refusals.byReason).toEqual({ 'update-root-mismatch': 1 });
    await stop(c.h, c.done);

    // 4. The bucket's body forged (its signed header kept, a payload byte changed), a valid copy served by Bob with its root: nothing, as whoever reads the bucket applies.
    const forged = inStore.slice();
    forged[forged.length - 64 - 1] ^= 0xff;
    const d = await trained(4);
    d.h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [lying.hash] });
    commit(d.h, d.mine, { ...lying, bodyMd5: md5Hex(forged) }, forged);
    await settle();
    while ((await d.h.serve(k.bob, rooted)) > 0) await settle();
    await settle();
    expect(d.h.replica.applied).toHaveLength(1);
    expect(d.h.replica.applied[0].payloads[1]).toBe(FORGED_PAYLOAD);
    expect(d.h.refusals.byReason).toEqual({ 'update-root-mismatch': 1, 'update-forged': 1 });
    await stop(d.h, d.done);

    // 5. An honest author's copy (its MD5 the bucket's): all from the neighbour, nothing from the store.
    const e = await trained(4);
    e.h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [lying.hash] });
    commit(e.h, e.mine, { ...entry(k.bob, inStore), bodyMd5: md5Hex(inStore) });
    await settle();
    while ((await e.h.serve(k.bob, inStore)) > 0) await settle();
    await settle();
    expect(e.h.http.gets).toEqual([]);
    expect(digest(e.h.replica.applied)).toEqual(expected);
    expect(e.h.refusals.byReason).toEqual({});
    expect(e.h.of('commit')[0]).toMatchObject({ fromPeers: 1, fetched: 0 });
    await stop(e.h, e.done);
  });

  it('counts what neighbours send out of turn and moves on when one refuses', async () => {
    const { h, done, mine } = await trained(4);
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    const bobHash = entry(k.bob, bob).hash;
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [bobHash] });
    h.gatherFrom(k.dave, { type: 'have', round: 0, hashes: [bobHash] });
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob)], delivered: 2, checkpointBy: null });
    await settle();
    const first = wants(h)[0].to === k.bob.address ? k.bob : k.dave;
    const second = first === k.bob ? k.dave : k.bob;
    h.gatherFrom(first, { type: 'refuse', round: 0, hash: bobHash, reason: 'busy' });
    await settle();
    expect(wants(h).at(-1)).toEqual({ to: second.address, gather: { type: 'want-list', round: 0, hash: bobHash } });
    h.gatherFrom(k.carol, { type: 'refuse', round: 0, hash: bobHash, reason: 'missing' }); // never asked
    h.fromPeer(k.carol, pieceEnvelope(k.carol, 0, bob, 0)); // never asked
    const forged = pieceEnvelope(second, 0, bob, 0).slice();
    forged[forged.length - 1] ^= 1;
    h.fromPeer(second, forged); // a broken signature
    await h.serve(second, bob);
    await settle();
    expect(h.of('rejected').map((e) => e.reason)).toEqual(['unasked', 'unasked', 'envelope-signature']);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0)] }]);
    expect(h.of('commit')[0]).toMatchObject({ fromPeers: 1, fetched: 0 });
    await stop(h, done);
  });

  it('holds at most K+1 updates: its own only while committed, and the previous round is dropped when the next gather starts (a late want for it is refused)', async () => {
    const K = 2;
    const { h, done, mine } = await trained(K);
    const others = [k.bob, k.carol].map((p) => envelope(p, 0, updatePayload(0, p === k.bob ? 0xb0 : 0xc0)));
    for (const [i, p] of [k.bob, k.carol].entries()) h.http.updates.set(`0/${p.address}`, others[i]);
    // Our own is not committed (K = 2 of 3 delivered): after the commit we hold exactly the K.
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, others[0]), entry(k.carol, others[1])], delivered: 3, checkpointBy: null });
    await h.clock.advance(STALL_MS);
    expect(h.of('commit')[0]).toMatchObject({ held: K, fetched: 2 });
    // Round 1: our new update joins round 0's K (kept a round for slower neighbours): K + 1.
    announce(h, 1, 10);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    expect(h.exchange.gather.heldCount).toBe(K + 1);
    const mine1 = h.link.binary[1];
    const bob1 = envelope(k.bob, 1, updatePayload(1, 0xb1));
    h.http.updates.set(`1/${k.bob.address}`, bob1);
    h.hear({ type: 'commit', round: 1, included: [entry(k.alice, mine1), entry(k.bob, bob1)], delivered: 5, checkpointBy: null });
    await h.clock.advance(STALL_MS);
    expect(h.of('commit')[1]).toMatchObject({ round: 1, held: 2, fetched: 1 });
    expect(h.exchange.gather.heldCount).toBeLessThanOrEqual(K + 1);
    expect(openEnvelope(mine, { run: h.config.run, maxPayloadBytes: 1e6 }).header.round).toBe(0);
    // A slower neighbour's news of round 0 is ignored, not counted; its want for round 0 is refused: we no longer hold it.
    const refusedBefore = h.refusals.total;
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [entry(k.bob, others[0]).hash] });
    h.gatherFrom(k.bob, { type: 'want', round: 0, hash: entry(k.carol, others[1]).hash, piece: 0 });
    await settle();
    expect(h.refusals.total).toBe(refusedBefore);
    expect(h.mesh.gathers.at(-1)).toEqual({ to: k.bob.address, gather: { type: 'refuse', round: 0, hash: entry(k.carol, others[1]).hash, piece: 0, reason: 'missing' } });
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
