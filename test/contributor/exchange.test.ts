// The round's state machine of one contributor (src/contributor/exchange.ts), in-process on a
// hand-moved clock: the test plays the coordinator and the neighbours, and checks each
// transition — waiting (the swarm's counts), training, sending (once, to the store; offered to
// neighbours only after `accepted`), applying exactly the commit's K (gathered from
// neighbours or the store) — and that bad peer messages are dropped and counted, never applied.
// The gather exchange's own bounds and fallbacks: gather.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope } from '../../src/net/envelope.ts';
import { WAIT_REPORT_MS } from '../../src/contributor/exchange.ts';
import { STALL_MS } from '../../src/contributor/piece-scheduler.ts';
import { RECHECK_MS } from '../../src/contributor/waiting.ts';
import { FakeReplica, announce, devKeys, entry, envelope, makeExchange, pieceEnvelope, settle, updatePayload, type Harness, type Keys } from './exchange-harness.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const H = 3; // inner steps per round (the harness's run config)

/** Alice (us) linked with neighbours Bob and Carol; Alice holds θ_start(0) and runs her rounds. */
function threePeers(overrides: Record<string, unknown> = {}): { h: Harness; done: Promise<void> } {
  const h = makeExchange(k.alice, overrides);
  h.peers.push(k.bob.address, k.carol.address);
  h.mesh.linked.add(k.bob.address).add(k.carol.address);
  h.exchange.hold(0);
  const done = h.exchange.run();
  return { h, done };
}

/** Our update of `round` as the coordinator received it. */
function ours(h: Harness, round: number): Uint8Array {
  const sent = h.link.binary.filter((b) => openEnvelope(b, { run: h.config.run, maxPayloadBytes: 1e6 }).header.round === round);
  expect(sent).toHaveLength(1);
  return sent[0];
}

async function stop(h: Harness, done: Promise<void>): Promise<void> {
  h.state.stopMode = 'now';
  h.hear({ type: 'error', message: 'stop' });
  await done;
}

describe('contributor exchange (fake clock)', () => {
  it('waits with the swarm counts, trains H steps, sends once to the store, offers it after accepted, and applies exactly the commit', async () => {
    const { h, done } = threePeers();
    await settle();
    expect(h.of('round')).toEqual([]);
    // A wait for a round is reported once it lasts WAIT_REPORT_MS, with the coordinator's counts.
    h.hear({ type: 'swarm', peers: 40, ready: 1, need: 2 });
    await h.clock.advance(WAIT_REPORT_MS - RECHECK_MS);
    expect(h.of('progress')).toEqual([]);
    await h.clock.advance(RECHECK_MS);
    expect(h.of('progress')).toEqual([{ event: 'progress', phase: 'peers', done: 1, total: 2, text: 'waiting for peers: 1 of the 2 contributors a round needs are ready (40 contributors connected)' }]);
    h.hear({ type: 'swarm', peers: 41, ready: 30, need: 2 });
    await h.clock.advance(RECHECK_MS);
    expect(h.of('progress').at(-1)!.text).toBe('waiting for the next round to start (41 contributors connected)');

    // waiting → training: a `round` message comes to members only; its count is the round event's.
    announce(h, 0, 300);
    await settle();
    expect(h.of('round')).toEqual([{ event: 'round', round: 0, members: 300, plannedRounds: h.config.plannedRounds, tokensTrained: 0 }]);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    expect(h.replica.stepsTaken).toEqual([0, 1, 2].map((step) => ({ round: 0, step })));

    // sending: the store has it once; neighbours hear of it only once the store accepts it, and never get it unasked.
    const mine = ours(h, 0);
    expect(h.mesh.sends).toEqual([]);
    const myHash = entry(k.alice, mine).hash;
    h.hear({ type: 'accepted', round: 0, hash: myHash });
    await settle();
    expect(h.mesh.gathers).toEqual([k.bob, k.carol].map((p) => ({ to: p.address, gather: { type: 'have', round: 0, hashes: [myHash] } })).sort((a, b) => a.to.localeCompare(b.to)));
    expect(h.mesh.pieces).toEqual([]);
    expect(h.of('sent')).toEqual([{ event: 'sent', round: 0, bytes: mine.length, delivered: 2, failed: 0 }]);

    // Bob's update is committed and Bob says he has it: we ask him. Carol's nobody announced: the store.
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [entry(k.bob, bob).hash] });
    h.http.updates.set(`0/${k.carol.address}`, carol);
    const included = [entry(k.alice, mine), entry(k.bob, bob), entry(k.carol, carol)];
    h.hear({ type: 'commit', round: 0, included, delivered: 300, checkpointBy: null });
    await settle();
    expect(h.mesh.gathers.slice(2)).toEqual([{ to: k.bob.address, gather: { type: 'want-list', round: 0, hash: entry(k.bob, bob).hash } }]);
    expect(await h.serve(k.bob, bob)).toBe(2); // its list, then its one piece
    await h.clock.advance(STALL_MS - 1);
    expect(h.http.gets).toEqual([]);
    await h.clock.advance(1);
    expect(h.http.gets).toEqual([`http://coordinator.test/update/0/${k.carol.address}`]);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0), updatePayload(0, 0xc0)] }]);
    expect(h.exchange.held).toBe(1);
    const commit = h.of('commit')[0];
    expect(commit).toMatchObject({ round: 0, trained: true, included: 3, delivered: 300, fromPeers: 1, fetched: 1, served: 0, held: 3, rejected: { frames: 0 }, weightsHash: 'weights-after-1' });
    expect(commit.loss).toBeCloseTo(2.9, 10);
    // This round's bytes: our update up once, Carol's down from the store; the gather messages up.
    expect(commit.roundBytesDown).toBe(carol.length);
    expect(commit.roundBytesUp).toBe(mine.length + h.mesh.bytesSent);
    // What we gathered we now offer: Bob does not need his own back, but we tell every neighbour once.
    const offered = h.mesh.gathers.filter((x) => x.gather.type === 'have' && x.gather.hashes[0] !== myHash).map((x) => x.gather);
    expect(offered).toHaveLength(4);
    expect(h.link.text).toEqual([{ type: 'synced', round: 1, weightsHash: 'weights-after-1', stage: 0 }, expect.objectContaining({ type: 'report', round: 0, rejected: 0, peers: 2 })]);
    expect(h.committed.map((c) => c.round)).toEqual([0]);
    await stop(h, done);
    expect(h.clock.pending).toBe(0);
  });

  it('drops a bad peer message and counts it by reason, and applies only what the commit lists', async () => {
    const { h, done } = threePeers();
    announce(h, 0, 3);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    const mine = ours(h, 0);
    h.hear({ type: 'accepted', round: 0, hash: entry(k.alice, mine).hash });
    await settle();

    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.fromPeer(k.bob, bob); // a whole update: neighbours serve pieces, never updates
    h.fromPeer(k.bob, pieceEnvelope(k.bob, 0, bob, 0)); // a piece nobody asked for
    h.fromPeer(k.bob, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])); // not an envelope
    h.fromPeer(k.bob, envelope(k.bob, 0, updatePayload(0, 0xb0), 'update', 'another-run'));
    h.fromPeer(k.dave, envelope(k.dave, 0, updatePayload(0, 0xd0))); // not a neighbour
    h.fromPeer(k.bob, envelope(k.carol, 0, new TextEncoder().encode('{"type":"have"}'), 'gather')); // gather signed by another
    h.fromPeer(k.bob, envelope(k.bob, 0, new TextEncoder().encode('{"type":"have","round":0}'), 'gather')); // malformed
    h.gatherFrom(k.bob, { type: 'have', round: 9, hashes: ['ab'.repeat(32)] }); // a round far ahead
    h.fromPeer(k.bob, envelope(k.bob, 0, new Uint8Array(0), 'activations')); // a run of one stage

    const reasons = h.of('rejected').map((e) => e.reason);
    expect(reasons).toEqual(['unexpected-kind', 'unasked', 'envelope-magic', 'envelope-run', 'unknown-member', 'wrong-sender', 'gather-malformed', 'stale-round', 'unexpected-kind']);
    expect(h.refusals.total).toBe(9);

    h.http.updates.set(`0/${k.bob.address}`, bob);
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob)], delivered: 2, checkpointBy: null });
    await h.clock.advance(STALL_MS);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0)] }]);
    expect(h.of('commit')[0]).toMatchObject({ fromPeers: 0, fetched: 1 });
    expect(h.link.text.find((m) => m.type === 'report')).toMatchObject({ rejected: 9 });
    await stop(h, done);
  });

  it('drops its training when the round closes without it, sends nothing, and still applies the commit', async () => {
    const { h, done } = threePeers();
    announce(h, 0, 3);
    await h.clock.advance(FakeReplica.STEP_MS); // one of H steps done
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.gatherFrom(k.bob, { type: 'have', round: 0, hashes: [entry(k.bob, bob).hash] });
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, bob)], delivered: 1, checkpointBy: null });
    await h.clock.advance(FakeReplica.STEP_MS); // the step under way ends; the round is dropped; we ask Bob
    expect(h.mesh.gathers.map((x) => x.gather.type)).toEqual(['want-list']);
    await h.serve(k.bob, bob);
    await settle();
    expect(h.replica.stepsTaken.length).toBeLessThan(H);
    expect(h.replica.discarded).toBe(1);
    expect(h.link.binary).toEqual([]);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xb0)] }]);
    expect(h.of('commit')).toEqual([expect.objectContaining({ round: 0, trained: false, loss: null, fromPeers: 1, fetched: 0 })]);
    expect(h.link.text.map((m) => m.type)).toEqual(['synced']); // no loss, no report
    await stop(h, done);
  });

  it('applies a round it is not a member of, and stops after the round when asked to', async () => {
    const { h, done } = threePeers();
    await h.clock.advance(10_000); // no `round` message: we are not a member
    expect(h.of('round')).toEqual([]);
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.http.updates.set(`0/${k.bob.address}`, bob);
    h.state.stopMode = 'after-round';
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, bob)], delivered: 7, checkpointBy: null });
    await h.clock.advance(STALL_MS);
    await done;
    expect(h.replica.stepsTaken).toEqual([]);
    expect(h.exchange.held).toBe(1);
    expect(h.of('commit')).toEqual([expect.objectContaining({ round: 0, trained: false, included: 1, delivered: 7, fetched: 1 })]);
  });
});
