// The round's state machine of one contributor (src/contributor/exchange.ts), in-process on a
// hand-moved clock: the test plays the coordinator and the other peers, and checks each
// transition — waiting, training, sending (coordinator first), collecting, applying — its
// deadlines, and that bad peer messages are dropped and counted, never applied.
import { beforeAll, describe, expect, it } from 'vitest';
import { openEnvelope } from '../../src/net/envelope.ts';
import { COORDINATOR_FIRST_MS, PEER_UPDATE_GRACE_MS, WAIT_REPORT_MS } from '../../src/contributor/exchange.ts';
import { RECHECK_MS } from '../../src/contributor/waiting.ts';
import { FakeReplica, devKeys, entry, envelope, makeExchange, settle, updatePayload, type Harness, type Keys } from './exchange-harness.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const H = 3; // inner steps per round (the harness's run config)
const deadline = 60_000;

/** Alice (us), Bob and Carol in the run, all linked; Alice holds θ_start(0) and runs her rounds. */
function threePeers(): { h: Harness; done: Promise<void>; members: string[] } {
  const h = makeExchange(k.alice);
  const members = [k.alice.address, k.bob.address, k.carol.address].sort();
  h.peers.push(...members);
  h.mesh.linked.add(k.bob.address).add(k.carol.address);
  h.exchange.hold(0);
  const done = h.exchange.run();
  return { h, done, members };
}

function announce(h: Harness, round: number, members: string[]): void {
  h.hear({ type: 'round', round, members, stages: members.map(() => 0), seed: 1, deadline: h.clock.t + deadline, tokensTrained: round * 1000 });
}

/** Our update of `round` as the coordinator received it. */
function ours(h: Harness, round: number): Uint8Array {
  const sent = h.link.binary.filter((b) => openEnvelope(b, { run: h.config.run, maxPayloadBytes: 1e6 }).header.round === round);
  expect(sent).toHaveLength(1);
  return sent[0];
}

describe('contributor exchange (fake clock)', () => {
  it('waits for its round, trains H steps, sends to the coordinator first, then to the members, and applies the commit', async () => {
    const { h, done, members } = threePeers();
    await settle();
    expect(h.of('round')).toEqual([]);
    // A wait for a round is reported once it lasts WAIT_REPORT_MS, not before.
    await h.clock.advance(WAIT_REPORT_MS - RECHECK_MS);
    expect(h.of('progress')).toEqual([]);
    await h.clock.advance(RECHECK_MS);
    expect(h.of('progress').map((e) => e.text)).toEqual(['waiting for the next round to start (3 contributors connected)']);

    // waiting → training: the round names us.
    announce(h, 0, members);
    await settle();
    expect(h.of('round')).toEqual([{ event: 'round', round: 0, members: 3, plannedRounds: h.config.plannedRounds, tokensTrained: 0 }]);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    expect(h.replica.stepsTaken).toEqual([0, 1, 2].map((step) => ({ round: 0, step })));
    expect(h.of('step').map((e) => e.loss)).toEqual([3, 2.9, 2.8]);

    // sending: the coordinator has it; the members get it only once the coordinator confirms.
    const mine = ours(h, 0);
    expect(openEnvelope(mine, { run: h.config.run, maxPayloadBytes: 1e6 }).header).toMatchObject({ kind: 'update', sender: k.alice.address, round: 0, stage: 0 });
    expect(h.mesh.sends).toEqual([]);
    h.hear({ type: 'accepted', round: 0, hash: entry(k.alice, mine).hash });
    await settle();
    expect(h.mesh.sends).toEqual([{ to: [k.bob.address, k.carol.address].sort(), envelope: mine }]);
    expect(h.of('sent')).toEqual([{ event: 'sent', round: 0, bytes: mine.length, delivered: 2, failed: 0 }]);

    // collecting: Bob's update comes peer to peer; Carol's only reaches the coordinator.
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    h.fromPeer(k.bob, bob);
    h.http.updates.set(`0/${k.carol.address}`, carol);

    // applying: linked Carol gets PEER_UPDATE_GRACE_MS to deliver before we fetch hers.
    const included = [entry(k.alice, mine), entry(k.bob, bob), entry(k.carol, carol)];
    h.hear({ type: 'commit', round: 0, included, checkpointBy: null });
    await settle();
    await h.clock.advance(PEER_UPDATE_GRACE_MS - 1);
    expect(h.http.gets).toEqual([]);
    expect(h.replica.applied).toEqual([]);
    await h.clock.advance(1);
    expect(h.http.gets).toEqual([`http://coordinator.test/update/0/${k.carol.address}`]);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0), updatePayload(0, 0xc0)] }]);
    expect(h.exchange.held).toBe(1);
    expect(h.of('commit')).toEqual([expect.objectContaining({ round: 0, trained: true, included: 3, fromPeers: 2, fetched: 1, rejected: { frames: 0 }, weightsHash: 'weights-after-1' })]);
    expect(h.of('commit')[0].loss).toBeCloseTo(2.9, 10);
    expect(h.link.text).toEqual([
      { type: 'synced', round: 1, weightsHash: 'weights-after-1', stage: 0 },
      expect.objectContaining({ type: 'report', round: 0, rejected: 0, peers: 2 }),
    ]);
    expect(h.committed.map((c) => c.round)).toEqual([0]);
    expect(h.replica.discarded).toBe(0);

    // Round 1: the coordinator never confirms; the members still get our update after COORDINATOR_FIRST_MS.
    announce(h, 1, members);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    ours(h, 1);
    await h.clock.advance(COORDINATOR_FIRST_MS - 1);
    expect(h.mesh.sends).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.mesh.sends).toHaveLength(2);

    h.state.stopMode = 'now';
    h.hear({ type: 'error', message: 'stop' });
    await done;
    expect(h.clock.pending).toBe(0);
  });

  it('drops a bad peer message and counts it by reason, and applies only what the commit lists', async () => {
    const { h, done, members } = threePeers();
    announce(h, 0, members);
    await h.clock.advance(H * FakeReplica.STEP_MS);
    const mine = ours(h, 0);
    h.hear({ type: 'accepted', round: 0, hash: entry(k.alice, mine).hash });
    await settle();

    const carolCorrupt = envelope(k.carol, 0, new Uint8Array([FakeReplica.CORRUPT, 0, 1]));
    h.fromPeer(k.carol, carolCorrupt); // decodes badly
    h.fromPeer(k.bob, envelope(k.carol, 0, updatePayload(0, 0xc0))); // Carol's, relayed by Bob's link
    h.fromPeer(k.bob, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])); // not an envelope
    h.fromPeer(k.bob, envelope(k.bob, 0, updatePayload(0, 0xb0), 'update', 'another-run'));
    h.fromPeer(k.dave, envelope(k.dave, 0, updatePayload(0, 0xd0))); // not in the run
    h.fromPeer(k.bob, envelope(k.bob, 5, updatePayload(5, 0xb0))); // a round not current
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.fromPeer(k.bob, bob);
    h.fromPeer(k.bob, envelope(k.bob, 0, updatePayload(0, 0xb1))); // a second one
    h.fromPeer(k.bob, envelope(k.bob, 0, new Uint8Array(0), 'activations')); // a run of one stage

    const reasons = h.of('rejected').map((e) => e.reason);
    expect(reasons).toEqual(['update-corrupt', 'wrong-sender', 'envelope-magic', 'envelope-run', 'unknown-member', 'stale-round', 'duplicate', 'unexpected-kind']);
    expect(h.refusals.total).toBe(8);

    // Carol's good update is committed but never came intact: fetched; Bob's from the peer.
    const carol = envelope(k.carol, 0, updatePayload(0, 0xc0));
    h.http.updates.set(`0/${k.carol.address}`, carol);
    h.hear({ type: 'commit', round: 0, included: [entry(k.alice, mine), entry(k.bob, bob), entry(k.carol, carol)], checkpointBy: null });
    await h.clock.advance(PEER_UPDATE_GRACE_MS);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xa1), updatePayload(0, 0xb0), updatePayload(0, 0xc0)] }]);
    const commit = h.of('commit')[0];
    expect(commit).toMatchObject({ fromPeers: 2, fetched: 1 });
    expect(commit.rejected).toEqual({ 'update-corrupt': 1, 'wrong-sender': 1, 'envelope-magic': 1, 'envelope-run': 1, 'unknown-member': 1, 'stale-round': 1, duplicate: 1, 'unexpected-kind': 1, frames: 0 });
    expect(h.link.text.find((m) => m.type === 'report')).toMatchObject({ rejected: 8 });

    h.state.stopMode = 'now';
    h.hear({ type: 'error', message: 'stop' });
    await done;
  });

  it('drops its training when the round closes without it, sends nothing, and still applies the commit', async () => {
    const { h, done, members } = threePeers();
    announce(h, 0, members);
    await h.clock.advance(FakeReplica.STEP_MS); // one of H steps done
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.fromPeer(k.bob, bob);
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, bob)], checkpointBy: null });
    await h.clock.advance(FakeReplica.STEP_MS);
    expect(h.replica.stepsTaken.length).toBeLessThan(H);
    expect(h.replica.discarded).toBe(1);
    expect(h.link.binary).toEqual([]);
    expect(h.mesh.sends).toEqual([]);
    expect(h.replica.applied).toEqual([{ round: 0, payloads: [updatePayload(0, 0xb0)] }]);
    expect(h.of('commit')).toEqual([expect.objectContaining({ round: 0, trained: false, loss: null, fromPeers: 1, fetched: 0 })]);
    // No loss, no report; synced still goes.
    expect(h.link.text.map((m) => m.type)).toEqual(['synced']);

    h.state.stopMode = 'now';
    h.hear({ type: 'error', message: 'stop' });
    await done;
  });

  it("applies a round it is not a member of, and stops after the round when asked to", async () => {
    const { h, done } = threePeers();
    const others = [k.bob.address, k.carol.address].sort();
    announce(h, 0, others);
    await h.clock.advance(10_000);
    expect(h.of('round')).toEqual([]);
    const bob = envelope(k.bob, 0, updatePayload(0, 0xb0));
    h.fromPeer(k.bob, bob);
    h.state.stopMode = 'after-round';
    h.hear({ type: 'commit', round: 0, included: [entry(k.bob, bob)], checkpointBy: null });
    await h.clock.advance(PEER_UPDATE_GRACE_MS);
    await done;
    expect(h.replica.stepsTaken).toEqual([]);
    expect(h.exchange.held).toBe(1);
    expect(h.of('commit')).toEqual([expect.objectContaining({ round: 0, trained: false, included: 1, fromPeers: 1 })]);
  });
});
