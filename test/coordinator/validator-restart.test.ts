// What the validator keeps for a restart (src/coordinator/validator-restart.ts): its saved
// weights' round and its queue's measurements survive a new start on the same folder, the
// commits it may replay are named (rebuildFrom), weights are saved every `every` rounds, and
// the newer of its weights and the run's checkpoint not after the round is what it rebuilds from.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RESTART_FILE, ValidatorRestart, WEIGHTS_FILE } from '../../src/coordinator/validator-restart.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterEach(removeTempDirs);

/** Weights whose first byte is their round (what the engine's weightsRound would read). */
const weightsOf = (round: number) => new Uint8Array([round, 1, 2, 3]);
const engine = {
  weightsRound: async (bytes: Uint8Array, source: string) => {
    if (bytes[1] !== 1) throw new Error(`${source} holds another model's weights`);
    return bytes[0];
  },
};

describe('ValidatorRestart', () => {
  it('before any weights are saved the seed is the base: nothing from round 0 on may be pruned', () => {
    const r = new ValidatorRestart(tempDir(), () => {});
    expect(r.savedRound).toBeNull();
    expect(r.pacing).toBeNull();
    expect(r.rebuildFrom(7)).toBe(0);
    expect(r.due(1, 10)).toBe(true);
  });

  it('saves every `every` rounds; a new start on the folder knows the round and the pacing', async () => {
    const dir = tempDir();
    const r = new ValidatorRestart(dir, () => {});
    await r.saveWeights(1, weightsOf(1));
    r.notePacing({ intervalMs: 6000, fixedMs: 900, perUpdateMs: 1070 });
    expect(r.rebuildFrom(4)).toBe(1);
    expect(r.due(10, 10)).toBe(false);
    expect(r.due(11, 10)).toBe(true);
    // Never after the first round not scored.
    expect(r.rebuildFrom(0)).toBe(0);

    const again = new ValidatorRestart(dir, () => {});
    expect(again.savedRound).toBe(1);
    expect(again.pacing).toEqual({ intervalMs: 6000, fixedMs: 900, perUpdateMs: 1070 });
    expect(new Uint8Array(readFileSync(join(dir, WEIGHTS_FILE)))).toEqual(weightsOf(1));
  });

  it('an unreadable record, or one whose weights file is gone, falls back to the seed as the base, said so', async () => {
    const dir = tempDir();
    const r = new ValidatorRestart(dir, () => {});
    await r.saveWeights(5, weightsOf(5));
    rmSync(join(dir, WEIGHTS_FILE));
    expect(new ValidatorRestart(dir, () => {}).rebuildFrom(9)).toBe(0);

    writeFileSync(join(dir, RESTART_FILE), '{ not json');
    const logs: string[] = [];
    const broken = new ValidatorRestart(dir, (l) => logs.push(l));
    expect(broken.rebuildFrom(9)).toBe(0);
    expect(broken.pacing).toBeNull();
    expect(logs).toEqual([expect.stringMatching(/^validator: .*validator-restart\.json not used \(.*\): pacing starts unmeasured/)]);
  });

  it('rebuilds from the newer of its weights and the run checkpoint not after the round; neither: the seed', async () => {
    const dir = tempDir();
    const logs: string[] = [];
    const r = new ValidatorRestart(dir, (l) => logs.push(l));
    const checkpoint = (round: number) => ({ round, weights: weightsOf(round) });
    expect(await r.startFor(4, engine, null)).toBeNull();
    await r.saveWeights(3, weightsOf(3));
    expect((await r.startFor(4, engine, null))?.round).toBe(3);
    expect((await r.startFor(4, engine, checkpoint(4)))?.round).toBe(4);
    // The run's checkpoint moved past the round: the validator's own weights still serve.
    expect((await r.startFor(4, engine, checkpoint(10)))?.round).toBe(3);
    expect(await r.startFor(2, engine, checkpoint(10))).toBeNull();
    // Weights of another model: not used, said so.
    writeFileSync(join(dir, WEIGHTS_FILE), new Uint8Array([3, 9]));
    expect(await r.startFor(4, engine, null)).toBeNull();
    expect(logs).toEqual([expect.stringContaining('validator-weights.bin not used: ')]);
  });
});
