// What the update store keeps: the committed updates for keepRounds and back to the latest
// checkpoint (late joiners replay from it), the uncommitted only for DELIVERED_KEEP_ROUNDS,
// everything of a round the validator has not scored.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { CoordinatorStore, DELIVERED_KEEP_ROUNDS } from '../../src/coordinator/state-store.ts';
import { Clock, devKeys, joinAll, removeTempDirs, signedUpdate, tempDir, testConfig, type Keys, type Peer } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

/** A coordinator committing 1 of 3 updates per round (gatherK 1), keeping `keepRounds`. */
function setup(keepRounds: number, scoring?: () => { scoredRounds: number; decidedThrough: number; rebuildFrom?: number }) {
  const dir = tempDir();
  const config = testConfig({ minMembers: 3, gatherK: 1, checkpointEvery: 100 });
  const store = new CoordinatorStore(dir, keepRounds);
  const coordinator = new Coordinator(config, store, { now: new Clock().now, syncGraceMs: 0, scoring });
  const peers = joinAll(coordinator, [k.alice, k.bob, k.carol]);
  const run = (from: number, to: number) => {
    for (let r = from; r < to; r++) {
      if (r > 0) for (const p of peers) p.synced(r);
      for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, r, 10 * r + i));
    }
  };
  const files = (round: number) => (existsSync(join(dir, 'updates', String(round))) ? readdirSync(join(dir, 'updates', String(round))).length : 0);
  return { dir, config, store, coordinator, peers: peers as Peer[], run, files };
}

describe('update store retention', () => {
  it(`keeps the uncommitted updates for ${DELIVERED_KEEP_ROUNDS} rounds, the committed for keepRounds`, () => {
    const { coordinator, run, files } = setup(6);
    run(0, 8);
    // Round 8 awaits its sync; rounds 5–7 keep all three updates, rounds 2–4 only the committed one.
    for (let r = 8 - DELIVERED_KEEP_ROUNDS; r < 8; r++) expect(files(r), `round ${r}`).toBe(3);
    for (let r = 2; r < 8 - DELIVERED_KEEP_ROUNDS; r++) expect(files(r), `round ${r}`).toBe(1);
    for (let r = 0; r < 2; r++) expect(files(r), `round ${r}`).toBe(0);
    // The record says the same: old commits no longer list what was delivered.
    expect(coordinator.commit(4)?.delivered).toBeUndefined();
    expect(coordinator.commit(4)?.included).toHaveLength(1);
    expect(Object.keys(coordinator.commit(4)!.deliveredAt!)).toHaveLength(1);
    expect(coordinator.commit(5)?.delivered).toHaveLength(3);
    // What replays needs is still there.
    expect(coordinator.validatorInput.commitPayloads(2)).toHaveLength(1);
  });

  it('keeps the commits since the latest checkpoint past keepRounds, and the one that names it (late joiners replay them)', () => {
    const { coordinator, run, files } = setup(2);
    run(0, 2);
    // A checkpoint of round 1 held (how one is accepted: checkpoint-trust.test.ts; retention only reads the round).
    (coordinator.checkpoints as unknown as { d: { state: { checkpointRound: number } } }).d.state.checkpointRound = 1;
    run(2, 7);
    // Commit 0 names the checkpoint's uploader and weights fingerprint: kept with it.
    expect(coordinator.runState().oldestCommit).toBe(0);
    expect(files(0)).toBe(1);
    for (let r = 0; r < 7; r++) expect(coordinator.validatorInput.commitPayloads(r), `round ${r}`).toHaveLength(1);
  });

  it('keeps everything of the rounds the validator has not scored', () => {
    const { run, files } = setup(2, () => ({ scoredRounds: 0, decidedThrough: 1 }));
    run(0, 8);
    expect(files(1)).toBe(0); // decided and older than keepRounds
    for (let r = 2; r < 8; r++) expect(files(r), `round ${r}`).toBe(3);
  });

  it("keeps the commits back to the validator's saved weights (it replays them after a crash), not their uncommitted updates", () => {
    // Decided through round 5; its saved weights are θ_start of round 3 (saved every few rounds).
    const { coordinator, run, files } = setup(2, () => ({ scoredRounds: 6, decidedThrough: 5, rebuildFrom: 3 }));
    run(0, 10);
    expect(coordinator.runState().oldestCommit).toBe(3);
    for (let r = 0; r < 3; r++) expect(files(r), `round ${r}`).toBe(0);
    for (let r = 3; r < 6; r++) {
      expect(coordinator.validatorInput.commitPayloads(r), `round ${r}`).toHaveLength(1);
      expect(files(r), `round ${r}`).toBe(1); // decided: only what replicas apply
    }
    for (let r = 6; r < 10; r++) expect(files(r), `round ${r}`).toBe(3); // not decided: everything
  });
});
