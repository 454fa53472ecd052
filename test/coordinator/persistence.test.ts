import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { CoordinatorStore } from '../../src/coordinator/state-store.ts';
import type { ClosedRound } from '../../src/coordinator/validator.ts';
import { Clock, Peer, devKeys, joinAll, makeCoordinator, removeTempDirs, signedUpdate, tempDir, testConfig, type Harness, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

/** Runs `rounds` full rounds with alice and bob; leaves the next round waiting for its sync. */
function runRounds(h: Harness, rounds: number): Peer[] {
  const peers = joinAll(h.coordinator, [k.alice, k.bob]);
  for (let r = 0; r < rounds; r++) {
    if (r > 0) for (const p of peers) p.synced(r);
    expect(h.coordinator.status()).toMatchObject({ phase: 'training', round: r });
    for (const p of peers) p.binary(signedUpdate(p.key!, h.config, r, r + 1));
  }
  return peers;
}


describe('coordinator: persisted state', () => {
  it('resumes on the same state folder at the next round, with its commits and updates (checkpoints: checkpoint-trust.test.ts)', () => {
    const dir = tempDir();
    const h = makeCoordinator(testConfig({ minMembers: 2 }), { dir });
    runRounds(h, 2);
    h.coordinator.stop();
    const before = h.coordinator.status();

    const again = makeCoordinator(testConfig({ minMembers: 2 }), { dir });
    expect(again.log).toContain("resuming run 'test-run' at round 2");
    expect(again.coordinator.round).toBe(2);
    const status = again.coordinator.status();
    expect(status).toMatchObject({ round: 2, phase: 'waiting', checkpointRound: -1, oldestCommit: 0, peers: [], rejected: {} });
    expect(status.commits).toEqual(before.commits);
    expect(again.coordinator.commit(1)).toEqual(h.coordinator.commit(1));
    expect(again.coordinator.storedUpdate(1, k.bob.address)).toEqual(h.coordinator.storedUpdate(1, k.bob.address));
    // Peers come back, sync round 2, and it runs.
    const peers = joinAll(again.coordinator, [k.alice, k.bob], 2);
    expect(peers[0].last('welcome')?.state).toMatchObject({ round: 2, checkpointRound: -1, oldestCommit: 0 });
    expect(peers[0].last('round')?.round).toBe(2);
    for (const p of peers) p.binary(signedUpdate(p.key!, again.config, 2));
    expect(again.coordinator.status().commits.map((c) => c.round)).toEqual([0, 1, 2]);
  });

  it('counts the tokens trained in committed updates, tells each round, and keeps the count across a restart', () => {
    const dir = tempDir();
    const config = testConfig({ minMembers: 2, innerSteps: 3, batch: 2, seq: 16, plannedRounds: 40 });
    const perUpdate = 3 * 2 * 16;
    const h = makeCoordinator(config, { dir });
    const [a, b] = runRounds(h, 2);
    expect(h.coordinator.progress()).toEqual({ round: 2, plannedRounds: 40, tokensTrained: 4 * perUpdate, validating: false, scoredRounds: 0, pendingRounds: 0, skippedRounds: 0 });
    a.synced(2);
    b.synced(2);
    expect(a.last('round')).toMatchObject({ round: 2, tokensTrained: 4 * perUpdate });
    a.binary(signedUpdate(k.alice, config, 2));
    h.clock.advance(60_000);
    h.coordinator.tick(); // bob missed the deadline: only alice's update counts
    expect(h.coordinator.status()).toMatchObject({ round: 3, plannedRounds: 40, tokensTrained: 5 * perUpdate });
    const again = makeCoordinator(config, { dir });
    expect(again.coordinator.tokensTrained).toBe(5 * perUpdate);
  });

  it('reports how far the validator got: rounds scored, and closed rounds still to score', () => {
    let progress = { scoredRounds: 0, decidedThrough: -1 };
    const h = makeCoordinator(testConfig({ minMembers: 2 }), { scoring: () => progress });
    runRounds(h, 3);
    expect(h.coordinator.status()).toMatchObject({ round: 3, validating: true, scoredRounds: 0, pendingRounds: 3 });
    progress = { scoredRounds: 1, decidedThrough: 1 }; // round 0 skipped, round 1 scored
    expect(h.coordinator.progress()).toMatchObject({ scoredRounds: 1, pendingRounds: 1 });
  });

  it('restarts a round that was running when the coordinator stopped', () => {
    const dir = tempDir();
    const h = makeCoordinator(testConfig({ minMembers: 2 }), { dir });
    const [a, b] = runRounds(h, 1);
    a.synced(1);
    b.synced(1);
    expect(h.coordinator.status()).toMatchObject({ round: 1, phase: 'training' });
    a.binary(signedUpdate(k.alice, h.config, 1));
    expect(h.coordinator.status().delivered).toEqual([k.alice.address]);
    const again = makeCoordinator(testConfig({ minMembers: 2 }), { dir });
    expect(again.coordinator.status()).toMatchObject({ round: 1, phase: 'waiting', delivered: [] });
    expect(again.coordinator.status().commits.map((c) => c.round)).toEqual([0]);
    expect(again.coordinator.storedUpdate(1, k.alice.address)).toBeNull();
  });

  it('refuses a state folder of another run, naming it', () => {
    const dir = tempDir();
    const h = makeCoordinator(testConfig({ minMembers: 1 }), { dir });
    runRounds(h, 1);
    expect(() => makeCoordinator(testConfig({ run: 'another-run' }), { dir })).toThrow(/belongs to run 'test-run', not 'another-run'.*--state/);
  });

  it('refuses an unreadable or foreign state file, naming it', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'state.json'), '{ not json');
    expect(() => makeCoordinator(testConfig(), { dir })).toThrow(/state\.json is unreadable/);
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ hello: 'world' }));
    expect(() => makeCoordinator(testConfig(), { dir })).toThrow(/not a Tessera coordinator state/);
  });

  it('keeps only the last keepRounds rounds of commits and updates', () => {
    const dir = tempDir();
    const config = testConfig({ minMembers: 2 });
    const store = new CoordinatorStore(dir, 2);
    const clock = new Clock();
    const coordinator = new Coordinator(config, store, { now: clock.now, syncGraceMs: 0 });
    runRounds({ coordinator, store, clock, config, log: [] }, 4);
    expect(coordinator.status().commits.map((c) => c.round)).toEqual([2, 3]);
    expect(coordinator.runState().oldestCommit).toBe(2);
    expect(existsSync(join(dir, 'updates', '1'))).toBe(false);
    expect(coordinator.storedUpdate(1, k.alice.address)).toBeNull();
    expect(coordinator.storedUpdate(3, k.alice.address)).not.toBeNull();
  });
});

describe('coordinator: rounds the validator has not scored', () => {
  it('keeps their commits and updates past keepRounds, and prunes them once scored', () => {
    const dir = tempDir();
    const config = testConfig({ minMembers: 2 });
    const store = new CoordinatorStore(dir, 2);
    const clock = new Clock();
    let progress = { scoredRounds: 1, decidedThrough: 0 }; // the validator scored round 0 only
    const coordinator = new Coordinator(config, store, { now: clock.now, syncGraceMs: 0, scoring: () => progress });
    const peers = runRounds({ coordinator, store, clock, config, log: [] }, 5);
    expect(coordinator.status().commits.map((c) => c.round)).toEqual([1, 2, 3, 4]);
    expect(coordinator.status()).toMatchObject({ pendingRounds: 4, scoredRounds: 1 });
    expect(coordinator.storedUpdate(1, k.alice.address)).not.toBeNull();
    progress = { scoredRounds: 5, decidedThrough: 4 };
    for (const p of peers) p.synced(5);
    for (const p of peers) p.binary(signedUpdate(p.key!, config, 5, 6));
    expect(coordinator.status().commits.map((c) => c.round)).toEqual([4, 5]);
    expect(existsSync(join(dir, 'updates', '3'))).toBe(false);
  });

  it('rebuilds what the validator scores from the saved state, after a restart too, and says when it cannot', () => {
    const dir = tempDir();
    const config = testConfig({ minMembers: 2 });
    const closed: ClosedRound[] = [];
    const h = makeCoordinator(config, { dir, onRoundClosed: (c) => closed.push(c) });
    runRounds(h, 2);
    // Exactly what the coordinator handed the validator when round 1 closed, live and after a restart.
    expect(h.coordinator.validatorInput.closedRound(1)).toEqual({ ok: true, closed: closed[1] });
    const again = makeCoordinator(config, { dir });
    expect(again.coordinator.validatorInput.closedRound(1)).toEqual({ ok: true, closed: closed[1] });
    expect(closed[1].reportedHashes[k.alice.address]).not.toBe('');
    expect(again.coordinator.validatorInput.closedRound(7)).toEqual({ ok: false, reason: expect.stringMatching(/commit of round 7 is no longer kept/) });
    rmSync(join(dir, 'updates', '1', `${k.bob.address}.bin`));
    expect(again.coordinator.validatorInput.closedRound(1)).toEqual({ ok: false, reason: expect.stringMatching(new RegExp(`update of ${k.bob.address} in round 1 is gone`)) });
  });
});
