// The consensus weights fingerprint a commit names, per stage in a pipelined run. One
// fingerprint over every member named whichever stage had more replicas, so a late joiner of
// the other stage refused its peers' honest weights and the coordinator's checkpoint (a CI run
// of `tessera swarm --stages 2` waited out its round deadlines); with two replicas a stage, no
// fingerprint had a majority and nothing was ever named.
import { describe, expect, it } from 'vitest';
import { CheckpointIntake } from '../../src/coordinator/checkpoint-intake.ts';
import type { CheckpointPieces } from '../../src/coordinator/checkpoint-pieces.ts';
import type { CommitRecord, MemberReport, PersistedState } from '../../src/coordinator/state-store.ts';
import { weightsNamed } from '../../src/protocol/messages.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';

const H0 = 'a0'.repeat(32);
const H1 = 'b1'.repeat(32);
const OTHER = 'cc'.repeat(32);

function intake(stages: number, delivered: [string, number][], members = delivered.map(([a]) => a)) {
  const commit = { round: 0, members, included: [], delivered: delivered.map(([sender, stage]) => ({ sender, hash: 'h', stage })), missing: [], startedAt: 0 } as unknown as CommitRecord;
  const state = { commits: [commit], reports: {} as Record<number, Record<string, MemberReport>>, checkpointRound: -1 } as unknown as PersistedState;
  let saves = 0;
  const i = new CheckpointIntake({ config: parseRunConfig({ run: 'r', stages }), state, pieces: {} as CheckpointPieces, save: () => void saves++, log: () => {}, count: () => {} });
  const synced = (address: string, weightsHash: string, stage: number) => {
    ((state.reports[1] ??= {})[address] = { loss: NaN, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0, weightsHash, stage });
    i.noteSynced(1);
  };
  return { commit, synced, saves: () => saves };
}

describe('the weights a commit names', () => {
  it('a pipelined run: per stage, by a majority of the stage replicas that delivered', () => {
    // Stage 0 has two replicas, stage 1 one (its other one was killed): the old rule named H0 for all.
    const t = intake(2, [['a', 0], ['b', 0], ['c', 1]]);
    t.synced('a', H0, 0);
    expect(t.commit.stageWeightsAfter).toBeUndefined(); // 1 of 2: no majority yet
    t.synced('c', H1, 1);
    expect(t.commit.stageWeightsAfter).toEqual({ 1: H1 });
    t.synced('b', H0, 0);
    expect(t.commit.stageWeightsAfter).toEqual({ 0: H0, 1: H1 });
    expect(t.commit.weightsAfter).toBeUndefined();
    expect([0, 1].map((s) => weightsNamed(t.commit, s, 2))).toEqual([H0, H1]);
    expect(t.saves()).toBe(2);
  });

  it('a pipelined run of two replicas a stage: each stage is named (no stage outvotes another)', () => {
    const t = intake(2, [['a', 0], ['b', 0], ['c', 1], ['d', 1]]);
    for (const [a, h, s] of [['a', H0, 0], ['b', H0, 0], ['c', H1, 1], ['d', H1, 1]] as const) t.synced(a, h, s);
    expect(t.commit.stageWeightsAfter).toEqual({ 0: H0, 1: H1 });
  });

  it('a minority of a stage cannot name it; a report of another stage does not vote', () => {
    const t = intake(2, [['a', 0], ['b', 0], ['e', 0], ['c', 1]]);
    t.synced('a', H0, 0);
    t.synced('b', OTHER, 0);
    t.synced('c', H0, 0); // c delivered for stage 1: its report of stage 0 weights does not count there
    expect(t.commit.stageWeightsAfter?.[0]).toBeUndefined();
    t.synced('e', H0, 0);
    expect(t.commit.stageWeightsAfter?.[0]).toBe(H0);
    expect(t.commit.stageWeightsAfter?.[1]).toBeUndefined();
  });

  it('one stage: the whole model’s fingerprint, by a majority of the members', () => {
    const t = intake(1, [['a', 0], ['b', 0], ['c', 0]]);
    t.synced('a', H0, 0);
    expect(t.commit.weightsAfter).toBeUndefined();
    t.synced('b', H0, 0);
    expect(t.commit.weightsAfter).toBe(H0);
    expect(weightsNamed(t.commit, 0, 1)).toBe(H0);
    expect(t.commit.stageWeightsAfter).toBeUndefined();
  });
});
