// Pipelined runs at the coordinator: the stage balancer (placement by capacity, moves to a
// starved stage) and the coordinator around it — a round starts only when every stage has a
// ready peer, a peer moved to another stage must sync that stage first, updates are checked
// against the sender's stage, commits tag entries with stages, checkpoints are per stage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StageBalancer } from '../../src/coordinator/stages.ts';
import { stageBounds } from '../../src/protocol/run-config.ts';
import { Clock, Peer, devKeys, makeCoordinator, modelUpdate, removeTempDirs, seal, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterAll(removeTempDirs);

const ranges = [{ from: 0, to: 1 }, { from: 1, to: 3 }];
const MiB = 2 ** 20;

describe('StageBalancer', () => {
  it('places each newcomer in the stage with the least throughput per layer, a stage nobody holds first, every stage two replicas before a third', () => {
    const b = new StageBalancer(ranges, [100 * MiB, 200 * MiB]);
    expect(b.assign('a', { memoryBytes: 0, tokensPerSecond: 1000 }).stage).toBe(0); // both empty: the lower
    expect(b.assign('b', { memoryBytes: 0, tokensPerSecond: 1000 }).stage).toBe(1); // stage 1 is empty
    // stage 0: 1000 tok/s over 1 layer; stage 1: 1000 over 2 layers → stage 1 is hungrier
    expect(b.assign('c', { memoryBytes: 0, tokensPerSecond: 500 }).stage).toBe(1);
    // now stage 1 has 1500/2 = 750 < 1000, but stage 0 has one replica (before: 3 + 1, and the one could leave)
    expect(b.assign('d', { memoryBytes: 0, tokensPerSecond: 100 }).stage).toBe(0);
    expect(b.counts()).toEqual([2, 2]);
    // with MIN_STAGE_REPLICAS everywhere, throughput decides again: stage 1 (1500/2) < stage 0 (1100/1)
    expect(b.assign('e', { memoryBytes: 0, tokensPerSecond: 100 }).stage).toBe(1);
    expect(b.counts()).toEqual([2, 3]);
    expect(b.assign('a', { memoryBytes: 0, tokensPerSecond: 5 }).stage).toBe(0); // a reconnect keeps its stage
  });

  it('places a peer only where it fits in memory, and warns when it fits nowhere', () => {
    const b = new StageBalancer(ranges, [100 * MiB, 200 * MiB]);
    b.assign('a', { memoryBytes: 0, tokensPerSecond: 1 });
    // stage 1 is empty but needs 200 MiB: a 150 MiB peer goes to stage 0
    expect(b.assign('small', { memoryBytes: 150 * MiB, tokensPerSecond: 1 })).toEqual({ stage: 0, warning: null });
    const tiny = b.assign('tiny', { memoryBytes: 10 * MiB, tokensPerSecond: 1 });
    expect(tiny.stage).toBe(0);
    expect(tiny.warning).toMatch(/10 MiB.*100 MiB/);
  });

  it('moves the fastest peer that fits from a crowded stage to a starved one', () => {
    const b = new StageBalancer(ranges, [100 * MiB, 200 * MiB]);
    b.assign('a', { memoryBytes: 0, tokensPerSecond: 10 });
    b.assign('b', { memoryBytes: 0, tokensPerSecond: 10 }); // stage 1
    b.assign('c', { memoryBytes: 0, tokensPerSecond: 1 }); // stage 1? 10/2 = 5 < 10 → stage 1
    b.assign('d', { memoryBytes: 150 * MiB, tokensPerSecond: 99 }); // fits only stage 0
    expect([b.stageOf('a'), b.stageOf('b'), b.stageOf('c'), b.stageOf('d')]).toEqual([0, 1, 1, 0]);
    b.remove('b');
    b.remove('c'); // stage 1 lost everyone
    expect(b.rebalance(['a', 'd'])).toEqual([{ address: 'a', from: 0, to: 1 }]); // d is faster but does not fit
    expect(b.counts()).toEqual([1, 1]);
    expect(b.rebalance(['a', 'd'])).toEqual([]);
    // nobody to spare: no move, the stage stays starved
    const lone = new StageBalancer(ranges, [1, 1]);
    lone.assign('x', { memoryBytes: 0, tokensPerSecond: 1 });
    expect(lone.rebalance(['x'])).toEqual([]);
  });
});

describe('coordinator: a pipelined run (stages: 2)', () => {
  const config = testConfig({ stages: 2, minMembers: 2 });
  const bounds = stageBounds(config);

  function setup() {
    const clock = new Clock();
    const { coordinator } = makeCoordinator(config, { clock, syncGraceMs: 0 });
    return { clock, coordinator };
  }

  it('places peers in stages, starts a round only once every stage has a ready peer, and announces the stages', () => {
    const { coordinator } = setup();
    const a = new Peer(coordinator, k.alice);
    const b = new Peer(coordinator, k.bob);
    const c = new Peer(coordinator, k.carol);
    expect(a.join()?.stage).toBe(0);
    expect(b.join()?.stage).toBe(1);
    expect(c.join()?.stage).toBe(0);
    a.synced(0);
    c.synced(0);
    expect(coordinator.status().phase).toBe('waiting'); // two ready, but stage 1 has none
    b.synced(0);
    const round = a.last('round')!;
    expect(round.members).toEqual([k.alice.address, k.bob.address, k.carol.address].sort());
    expect(round.stages).toEqual(round.members.map((m) => (m === k.bob.address ? 1 : 0)));
  });

  it('refuses an update of another stage, tags commit entries with stages, and keeps checkpoints per stage', () => {
    const { coordinator } = setup();
    const a = new Peer(coordinator, k.alice);
    const b = new Peer(coordinator, k.bob);
    a.join();
    b.join();
    a.synced(0);
    b.synced(0);
    expect(coordinator.status().phase).toBe('training');
    // bob holds stage 1: a stage-0 update (the wrong layers, stage field 0) is refused
    b.binary(seal(k.bob, 0, modelUpdate(config, 0, 1, bounds[0]), { run: config.run, stage: 0 }));
    expect(coordinator.rejected['wrong-stage']).toBe(1);
    // stage field right, layers wrong: the SparseLoCo decode against stage 1's layout refuses it
    b.binary(seal(k.bob, 0, modelUpdate(config, 0, 1, bounds[0]), { run: config.run, stage: 1 }));
    expect(Object.keys(coordinator.rejected).some((r) => r.startsWith('update-'))).toBe(true);
    // bob's right update before alice's: a refused member counts as done, so alice's would close the round
    b.binary(seal(k.bob, 0, modelUpdate(config, 0, 2, bounds[1]), { run: config.run, stage: 1 }));
    a.binary(seal(k.alice, 0, modelUpdate(config, 0, 1, bounds[0]), { run: config.run, stage: 0 }));
    const commit = a.last('commit')!;
    expect(commit.included.map((e) => [e.sender, e.stage])).toEqual([[k.alice.address, 0], [k.bob.address, 1]].sort());
    // checkpoints: each stage's holder is asked for its own; nobody may upload another stage's
    expect(coordinator.commit(0)?.checkpointBy).toEqual({ 0: k.alice.address, 1: k.bob.address });
    expect(coordinator.checkpoints.stageAskedOf(k.alice.address)).toBe(0);
    expect(coordinator.checkpoints.stageAskedOf(k.bob.address)).toBe(1);
    expect(coordinator.checkpoints.stageAskedOf(k.carol.address)).toBeNull();
    expect(coordinator.checkpoints.manifest(0)).toBeNull();
  });

  it('moves a peer to a stage left empty; the round waits until the moved peer synced that stage', () => {
    const { coordinator } = setup();
    const a = new Peer(coordinator, k.alice);
    const b = new Peer(coordinator, k.bob);
    const c = new Peer(coordinator, k.carol);
    a.join();
    b.join();
    c.join();
    expect([a.stage, b.stage, c.stage]).toEqual([0, 1, 0]);
    a.synced(0);
    c.synced(0); // both hold stage 0's weights; the round waits for stage 1
    b.disconnect(); // the only stage-1 peer leaves
    coordinator.tick();
    // one of the two stage-0 peers is told to move, and the round does not start without it
    const moved = [a, c].filter((p) => p.last('stage'));
    expect(moved).toHaveLength(1);
    expect(moved[0].last('stage')).toMatchObject({ stage: 1, reason: expect.stringMatching(/stage 1/) });
    expect(coordinator.status().phase).toBe('waiting');
    moved[0].synced(0); // now with stage 1's weights (Peer.synced reports its current stage)
    expect(coordinator.status().phase).toBe('training');
    expect(a.last('round')!.stages.sort()).toEqual([0, 1]);
  });
});
