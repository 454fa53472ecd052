// The commit's clip floor (issue 19, the two-update shrink): a commit of fewer than three
// updates carries the validator's reference norms, every replica clips with them (aggregate.ts),
// the commit record keeps them (a replica catching up, the validator rebuilding θ_start apply
// the same), and a malformed floor makes the commit malformed. Fake clock, no GPU.
import { beforeAll, afterEach, describe, expect, it } from 'vitest';
import { commitView } from '../../src/coordinator/run-record.ts';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { clipFloorOf, type Trial } from '../../src/coordinator/scoring.ts';
import { recordScores } from '../../src/coordinator/validator.ts';
import { parseCommitView, parseServerMessage } from '../../src/protocol/messages.ts';
import { join } from 'node:path';
import { devKeys, joinAll, makeCoordinator, removeTempDirs, signedUpdate, tempDir, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

describe("the commit's clip floor (issue 19)", () => {
  it('a commit of two carries the floor, one of three does not; the record and the served view keep it', () => {
    const floor = [0.5, 0.25];
    const config = testConfig({ minMembers: 2, gatherK: 5 });
    const two = makeCoordinator(config, { syncGraceMs: 0, clipFloor: () => floor });
    const peers = joinAll(two.coordinator, [k.alice, k.bob]);
    for (const [i, p] of peers.entries()) p.binary(signedUpdate(p.key!, config, 0, i + 1));
    expect(peers[0].last('commit')).toMatchObject({ round: 0, clipFloor: floor });
    const record = two.coordinator.commit(0)!;
    expect(record.clipFloor).toEqual(floor);
    const view = parseCommitView(JSON.stringify(commitView(record)), 0);
    expect(view?.clipFloor).toEqual(floor);
    const closed = two.coordinator.validatorInput.closedRound(0);
    expect(closed.ok && closed.closed.clipFloor).toEqual(floor);
    two.coordinator.stop();

    const three = makeCoordinator(testConfig({ minMembers: 3, gatherK: 5 }), { syncGraceMs: 0, clipFloor: () => floor });
    const more = joinAll(three.coordinator, [k.alice, k.bob, k.carol]);
    for (const [i, p] of more.entries()) p.binary(signedUpdate(p.key!, three.config, 0, i + 1));
    expect(more[0].last('commit')!.round).toBe(0);
    expect(more[0].last('commit')!.clipFloor).toBeUndefined();
    three.coordinator.stop();
  });

  it('a commit with a malformed floor is malformed; no reference, no floor', () => {
    const base = { type: 'commit', round: 3, included: [], delivered: 0, checkpointBy: null };
    expect(parseServerMessage(JSON.stringify({ ...base, clipFloor: [1, 2] }))).toMatchObject({ clipFloor: [1, 2] });
    expect(parseServerMessage(JSON.stringify(base))).not.toHaveProperty('clipFloor');
    for (const bad of [[-1], ['1'], 'x', [null]]) expect(parseServerMessage(JSON.stringify({ ...base, clipFloor: bad })), JSON.stringify(bad)).toBeNull();
    expect(parseCommitView(JSON.stringify({ round: 3, included: [], members: 2, delivered: 2, missing: 0, clipFloor: [-2] }), 3)).toBeNull();
    expect(clipFloorOf([])).toBeUndefined();
    expect(clipFloorOf([[0, 0]])).toBeUndefined();
    expect(clipFloorOf([[1, 4], [2, 3], [3, 2]])).toEqual([2, 3]);
  });

  it('an update scaled ×1/9 beside one honest update stays out of the reference (it scores ~1/9 as much), so the floor is the honest norm', () => {
    const ledger = new Ledger(join(tempDir(), 'ledger.sqlite'));
    const config = testConfig();
    const honest: Trial = { gradient: 0.09, assigned: 0.09, control: 0.01 };
    const shrunk: Trial = { gradient: 0.01, assigned: 0.01, control: 0.001 };
    for (let round = 0; round < 3; round++) {
      const pair = ['honest', 'shrink'];
      const closed = { round, members: pair, missing: [], invalid: {}, others: [], reportedHashes: { honest: 'h', shrink: 'h' }, included: pair.map((sender, i) => ({ sender, payload: new Uint8Array(0), deliveredAt: i })) };
      const evaluation = { round, trials: [['honest', honest], ['shrink', shrunk]] as [string, Trial][], copied: [], undecodable: [], weightsHash: 'h', timing: { fixedMs: 0, perUpdateMs: 0, evaluated: 2, outOfTime: 0 }, norms: [['honest', [0.9, 2.7]], ['shrink', [0.1, 0.3]]] as [string, number[]][] };
      const rows = recordScores(closed, evaluation, { config, ledger, closedRounds: round + 1, log: () => {} });
      // Scored (it helps, above the noise floor), not barred (over 1/10 of the reference): only the floor stops its shrink.
      expect(rows.get('shrink')!.barred).toBe(false);
    }
    // Before, every update that scored joined: the lower median of {0.9, 0.1, …} was the shrunk norm.
    expect(clipFloorOf(ledger.helpfulNorms())).toEqual([0.9, 2.7]);
    ledger.close();
  });
});
