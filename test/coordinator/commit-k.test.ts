// A round's commit through the coordinator: gather-K of the stored updates (by the
// validator's standings), the delivered count, the record keeping both, tokens counted for
// the committed only, every update stored as it arrives and served before the commit.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Standing } from '../../src/protocol/messages.ts';
import { devKeys, joinAll, makeCoordinator, removeTempDirs, signedUpdate, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

const standing = (address: string, ema: number): Standing => ({ address, ema, assignedEma: 1, rank: 1, of: 4, share: 0.25, epoch: 0, epochReward: 0, totalReward: 0, lastRound: 0, pendingRounds: 0 });

describe('coordinator: gather-K commits', () => {
  it('commits K of the delivered (the best standing, then exploration), counts all delivered, tokens for the K', () => {
    const config = testConfig({ minMembers: 4, gatherK: 2 });
    const h = makeCoordinator(config, { syncGraceMs: 0 });
    const keys = [k.alice, k.bob, k.carol, k.dave];
    const peers = joinAll(h.coordinator, keys);
    // The validator's latest word: dave best, then carol; alice and bob unknown (newcomers).
    h.coordinator.sendScores(0, new Map([[k.dave.address, standing(k.dave.address, 0.9)], [k.carol.address, standing(k.carol.address, 0.5)]]));
    const envelopes = keys.map((key, i) => signedUpdate(key, config, 0, i + 1));
    for (const [i, p] of peers.entries()) {
      p.binary(envelopes[i]);
      // Stored at once, and served while the round still runs.
      expect(h.coordinator.storedUpdate(0, p.address)).toEqual(envelopes[i]);
    }
    const commit = peers[0].last('commit')!;
    expect(commit.delivered).toBe(4);
    expect(commit.included).toHaveLength(2);
    const senders = commit.included.map((e) => e.sender);
    expect(senders).toEqual([...senders].sort());
    // K − ceil(K/4) = 1 slot by standing (dave), 1 explored among the newcomers (alice or bob).
    expect(senders).toContain(k.dave.address);
    expect(senders.some((s) => s === k.alice.address || s === k.bob.address)).toBe(true);
    const record = h.coordinator.commit(0)!;
    expect(record.included).toEqual(commit.included);
    expect(record.delivered!.map((e) => e.sender)).toEqual(keys.map((x) => x.address).sort());
    expect(Object.keys(record.deliveredAt!)).toHaveLength(4);
    expect(record.missing).toEqual([]);
    expect(h.coordinator.tokensTrained).toBe(2 * config.innerSteps * config.batch * config.seq);
    expect(h.coordinator.status().commits[0]).toMatchObject({ included: senders, delivered: 4 });
    // The validator gets the committed with payloads and names the rest.
    const closed = h.coordinator.validatorInput.closedRound(0);
    expect(closed.ok).toBe(true);
    if (!closed.ok) return;
    expect(closed.closed.included.map((u) => u.sender)).toEqual(senders);
    expect(closed.closed.others.map((u) => u.sender)).toEqual(keys.map((x) => x.address).filter((a) => !senders.includes(a)).sort());
    for (const o of closed.closed.others) expect(h.coordinator.storedPayload(0, o.sender)).not.toBeNull();
    // Replay (late joiners, the validator's sync) applies the committed only.
    expect(h.coordinator.validatorInput.commitPayloads(0)).toHaveLength(2);
  });

  it('commits everything when at most K were delivered', () => {
    const config = testConfig({ minMembers: 2, gatherK: 5 });
    const h = makeCoordinator(config, { syncGraceMs: 0 });
    const peers = joinAll(h.coordinator, [k.alice, k.bob]);
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 0, i + 1));
    expect(peers[1].last('commit')).toMatchObject({ delivered: 2 });
    expect(peers[1].last('commit')!.included).toHaveLength(2);
  });

  it('leaves out a sender the validator bars, until a later verdict clears it (issue 19)', () => {
    const config = testConfig({ minMembers: 2, gatherK: 5 });
    const h = makeCoordinator(config, { syncGraceMs: 0 });
    const peers = joinAll(h.coordinator, [k.alice, k.bob]);
    // The validator found alice's last update harmful: her update is stored, not committed.
    h.coordinator.sendScores(0, new Map([[k.alice.address, { ...standing(k.alice.address, 0.9), barred: true }]]));
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 0, i + 1));
    expect(peers[1].last('commit')).toMatchObject({ delivered: 2, included: [{ sender: k.bob.address }] });
    for (const p of peers) p.synced(1);
    // A verdict without a word on the bar keeps it; a clean evaluation lifts it.
    h.coordinator.sendScores(1, new Map([[k.alice.address, standing(k.alice.address, 0.9)]]));
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 1, i + 1));
    expect(peers[1].last('commit')).toMatchObject({ round: 1, included: [{ sender: k.bob.address }] });
    for (const p of peers) p.synced(2);
    h.coordinator.sendScores(2, new Map([[k.alice.address, { ...standing(k.alice.address, 0.9), barred: false }]]));
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 2, i + 1));
    expect(peers[1].last('commit')!.included).toHaveLength(2);
  });
});
