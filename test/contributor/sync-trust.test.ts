// Weights from a peer are used only if their fingerprint is the one the run's commit names
// (issue 19: a late joiner synced θ_start from an attacker and kept a different fingerprint forever).
import { describe, expect, it } from 'vitest';
import { SyncError, syncWeights, type SyncContext } from '../../src/contributor/sync.ts';
import type { HttpClient } from '../../src/protocol/http.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import type { ModelReplica } from '../../src/round/replica.ts';
import { CheckpointError, type CheckpointStore } from '../../src/train/checkpoint.ts';
import { weightsFingerprint } from '../../src/train/weights-fingerprint.ts';

const honest = new Map([['w', new Float32Array([1, 2, 3])]]);
const poisoned = new Map([['w', new Float32Array([1, 2, 300])]]);

async function sync(fromPeer: Map<string, Float32Array>, named: string | undefined, size = 3, pipelined?: { stage: number; stageWeightsAfter: Record<string, string> }, foreignSave = false): Promise<{ result: Promise<{ round: number; source: string }>; loaded: unknown[]; warnings: string[]; asked: () => number }> {
  const loaded: unknown[] = [];
  const warnings: string[] = [];
  let asked = 0;
  const replica = {
    layout: [{ name: 'w', shape: [size], size, weightDecay: false }],
    decodeWeights: () => ({ round: 5, weights: fromPeer }),
    loadStart: (w: unknown) => void loaded.push(w),
    restoreState: () => {
      throw new CheckpointError('header', "local checkpoint: weights of layers [0, 1), not of this replica's [1, 2)");
    },
  } as unknown as ModelReplica;
  const http: HttpClient = {
    get: async (url) => (url.endsWith('/commit/4') ? new TextEncoder().encode(JSON.stringify({ round: 4, included: [], weightsAfter: named, ...(pipelined ? { stageWeightsAfter: pipelined.stageWeightsAfter } : {}) })) : null),
    put: async () => ({ status: 500, text: '' }),
  };
  const c: SyncContext = {
    state: { round: 5, phase: 'waiting', memberCount: 2, checkpointRound: -1, oldestCommit: 3 }, held: -1, replica, http, httpBase: 'http://c',
    run: 'r', config: parseRunConfig({ run: 'r', stages: pipelined ? 2 : 1 }), address: 'me', stage: pipelined?.stage ?? 0, stages: pipelined ? 2 : 1,
    askPeers: async () => (asked++, { from: 'peer-x', round: 5, bytes: new Uint8Array(1) }), peerTimeoutMs: 1,
    commitFor: () => null, currentRound: () => 5, onWarning: (t) => void warnings.push(t), exclusive: async (fn) => fn(),
    ...(foreignSave ? { store: { load: async () => ({}), save: async () => {} } as unknown as CheckpointStore } : {}),
  };
  return { result: syncWeights(c), loaded, warnings, asked: () => asked };
}

describe('sync: weights from a peer', () => {
  it('are loaded when their fingerprint is the commit’s', async () => {
    const s = await sync(honest, await weightsFingerprint(honest));
    await expect(s.result).resolves.toEqual({ round: 5, source: 'peer peer-x' });
    expect(s.loaded).toEqual([honest]);
  });

  it('are refused, and never loaded, when it is not (or when the commit names none yet)', async () => {
    for (const named of [await weightsFingerprint(honest), undefined]) {
      const s = await sync(poisoned, named);
      await expect(s.result).rejects.toThrow(SyncError);
      expect(s.loaded).toEqual([]);
      expect(s.warnings[0]).toMatch(/weights from peer-x refused: they hold weights [0-9a-f]{12}…, the commit of round 4 names/);
    }
  });

  it("in a pipelined run, are checked against the commit's fingerprint of this stage, not another stage's", async () => {
    const stage0 = await weightsFingerprint(poisoned); // another stage's weights differ from this one's
    const ok = await sync(honest, stage0, 3, { stage: 1, stageWeightsAfter: { 0: stage0, 1: await weightsFingerprint(honest) } });
    await expect(ok.result).resolves.toEqual({ round: 5, source: 'peer peer-x' });
    expect(ok.loaded).toEqual([honest]);
    const refused = await sync(honest, undefined, 3, { stage: 1, stageWeightsAfter: { 0: await weightsFingerprint(honest) } });
    await expect(refused.result).rejects.toThrow(SyncError);
    expect(refused.loaded).toEqual([]);
  });

  it("a saved state of another stage's layers (a peer moved between stages) is ignored with a warning, and the weights come from a peer", async () => {
    const s = await sync(honest, await weightsFingerprint(honest), 3, undefined, true);
    await expect(s.result).resolves.toEqual({ round: 5, source: 'peer peer-x' });
    expect(s.warnings[0]).toMatch(/ignoring the saved state: local checkpoint: weights of layers \[0, 1\)/);
    expect(s.loaded).toEqual([honest]);
  });

  it('are not asked for when θ_start cannot fit one peer message (a base or 1b model): the checkpoint is next', async () => {
    const tooBig = parseRunConfig({ run: 'r' }).maxMessageBytes / 4 + 1;
    const s = await sync(honest, await weightsFingerprint(honest), tooBig);
    await expect(s.result).rejects.toThrow(SyncError); // no checkpoint either, in this test
    expect(s.asked()).toBe(0);
    expect(s.loaded).toEqual([]);
  });
});
