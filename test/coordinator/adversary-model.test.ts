// Issue 19, "the model", end to end in this process: two honest `tiny` replicas and four
// attackers, one per attack, through the coordinator's frame check, gather-K, every replica's
// outer step and the real validator and ledger (adversary-swarm.ts). Before the fix every attack
// was committed round after round (the huge table broke the ledger: rounds went unscored);
// now the huge table is refused at the door, the others are committed once (the validator
// scores a round after its commit) and barred from the next commit on, and no attacker is paid
// for a round it attacked. The damage against the same run with the attackers honest is
// measured by `npm run bench -- adversary` (test/bench/RESULTS.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { testGpu } from '../helpers/gpu.ts';
import { ATTACKS, runAdversarySwarm, type SwarmSetup } from './adversary-swarm.ts';

// The smallest run that shows each verdict: round 0 commits the attacks, round 1 the stale
// replay (its first resend), round 2 none of them.
// Two inner steps: after one, Adam moves every weight by the same lr, so every peer's top-k is
// the same tie-broken set (a copy by the overlap rule).
const SETUP: SwarmSetup = { honest: 2, rounds: 3, innerSteps: 2, batch: 1, seq: 16, lr: 1e-2, evalBatches: 2, seed: 3 };
const UNIFORM_LOSS = Math.log(256);

describe('one attacker per attack among honest replicas (issue 19)', () => {
  let gpu: Gpu;
  const dataRoot = mkdtempSync(join(tmpdir(), 'tessera-adversary-model-'));
  beforeAll(async () => {
    gpu = await testGpu();
  });
  afterAll(() => rmSync(dataRoot, { recursive: true, force: true }));

  it('scaled ×1000, sign-flipped, stale and huge-table updates: refused or barred, never paid for an attack, the swarm learns on', async () => {
    const r = await runAdversarySwarm(gpu, SETUP, ATTACKS, dataRoot);
    const by = Object.fromEntries(r.attackers.map((a) => [a.attack, a]));
    console.log(`held-out ${r.curve.map((x) => x.toFixed(4)).join(' ')}, max |w| ${r.maxAbsWeight.toFixed(3)}, ${r.seconds.toFixed(0)} s`);
    for (const a of r.attackers) console.log(`${a.attack}: committed in rounds [${a.committed}], refused [${a.refused}], barred after [${a.barred}], share ${(100 * a.share).toFixed(1)}% (after round 0: ${(100 * a.shareAfterFirst).toFixed(1)}%)`);
    // Every round scored (a NaN trial no longer breaks the ledger), every replica the same weights.
    expect(r.unscored).toEqual([]);
    expect(r.diverged).toBe(0);
    // The honest are in every commit (no honest update is taken for harmful or a copy).
    for (const c of r.commits) expect(c.filter((s) => s.startsWith('honest-'))).toEqual(['honest-0', 'honest-1']);
    // Huge finite table values are refused by the decoder's frame check, every round.
    expect(by.hugetable.refused).toEqual([0, 1, 2]);
    expect(by.hugetable.committed).toEqual([]);
    // Harmful updates: committed in round 0 (clipped to the honest norm), barred from round 1 on.
    for (const attack of ['scale1000', 'signflip'] as const) {
      expect(by[attack].committed, attack).toEqual([0]);
      expect(by[attack].barred, attack).toEqual([0, 1, 2]);
    }
    // The stale replay: round 0 was honest work; its first resend (round 1) is found to repeat it.
    expect(by.stale.committed).toEqual([0, 1]);
    expect(by.stale.barred).toEqual([1, 2]);
    for (const a of r.attackers) expect(a.shareAfterFirst, a.attack).toBe(0);
    // Nor overall: the stale replay's honest round 0 was held in escrow and forfeited by its copy in round 1.
    for (const a of r.attackers) expect(a.share, a.attack).toBe(0);
    // The swarm learned, and no weight was blown up.
    for (const x of r.curve) expect(Number.isFinite(x)).toBe(true);
    expect(r.final).toBeLessThan(UNIFORM_LOSS);
    expect(r.maxAbsWeight).toBeLessThan(5);
  });
});
