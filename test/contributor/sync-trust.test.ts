// Weights from a peer are used only if their fingerprint is the one the run's commit names
// (issue 19: a late joiner synced θ_start from an attacker and kept a different fingerprint forever).
import { describe, expect, it } from 'vitest';
import { SyncError, syncWeights, type SyncContext } from '../../src/contributor/sync.ts';
import type { HttpClient } from '../../src/protocol/http.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import type { ModelReplica } from '../../src/round/replica.ts';
import { weightsFingerprint } from '../../src/train/weights-fingerprint.ts';

const honest = new Map([['w', new Float32Array([1, 2, 3])]]);
const poisoned = new Map([['w', new Float32Array([1, 2, 300])]]);

async function sync(fromPeer: Map<string, Float32Array>, named: string | undefined, size = 3): Promise<{ result: Promise<{ round: number; source: string }>; loaded: unknown[]; warnings: string[]; asked: () => number }> {
  const loaded: unknown[] = [];
  const warnings: string[] = [];
  let asked = 0;
  const replica = {
    layout: [{ name: 'w', shape: [size], size, weightDecay: false }],
    decodeWeights: () => ({ round: 5, weights: fromPeer }),
    loadStart: (w: unknown) => void loaded.push(w),
  } as unknown as ModelReplica;
  const http: HttpClient = {
    get: async (url) => (url.endsWith('/commit/4') ? new TextEncoder().encode(JSON.stringify({ round: 4, included: [], weightsAfter: named })) : null),
    put: async () => ({ status: 500, text: '' }),
  };
  const c: SyncContext = {
    state: { round: 5, phase: 'waiting', memberCount: 2, checkpointRound: -1, oldestCommit: 3 }, held: -1, replica, http, httpBase: 'http://c',
    run: 'r', config: parseRunConfig({ run: 'r' }), address: 'me', stage: 0, stages: 1,
    askPeers: async () => (asked++, { from: 'peer-x', round: 5, bytes: new Uint8Array(1) }), peerTimeoutMs: 1,
    commitFor: () => null, currentRound: () => 5, onWarning: (t) => void warnings.push(t), exclusive: async (fn) => fn(),
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

  it('are not asked for when θ_start cannot fit one peer message (a base or 1b model): the checkpoint is next', async () => {
    const tooBig = parseRunConfig({ run: 'r' }).maxMessageBytes / 4 + 1;
    const s = await sync(honest, await weightsFingerprint(honest), tooBig);
    await expect(s.result).rejects.toThrow(SyncError); // no checkpoint either, in this test
    expect(s.asked()).toBe(0);
    expect(s.loaded).toEqual([]);
  });
});
