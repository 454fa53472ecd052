// Gather-K in a real swarm: `tessera swarm` with 6 real `tessera contribute` processes
// (Dawn on SwiftShader, WebRTC on loopback), each linked to at most 3 neighbours, each commit
// naming 3 of the delivered updates. Every replica gathers exactly those 3 — from neighbours
// that announced them, else from the coordinator's store — and applies them, so the weights
// stay bit-identical while the loss falls. Slow by nature (six CPU "GPUs"): tiny, 2 steps.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SwarmSummary } from '../../src/cli/swarm-command.ts';
import { servingCap } from '../../src/contributor/gather.ts';
import { BIN } from './helpers.ts';

const N = 6;
const K = 3;
const D = 3;
const ROUNDS = 2;
/** Gather messages (have/want/refuse, ~250 B each) a peer sends a round, with a wide margin: bytes. */
const GATHER_MESSAGE_BYTES = 16 * 1024;

describe('tessera swarm, gather-K', () => {
  it(`${N} contributors, gatherK ${K}, ${D} neighbours each: every commit names ${K}, replicas stay identical, the loss falls, and updates come from peers`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-gather-'));
    try {
      // Every contributor in round 0 (minMembers = N), so each round has more deliveries than K.
      const run = { run: `gather-${process.pid}`, model: 'tiny', innerSteps: 2, batch: 2, seq: 32, warmup: 2, lr: 1e-2, minMembers: N, gatherK: K, neighbours: D, plannedRounds: ROUNDS, roundSeconds: 300 };
      writeFileSync(join(dir, 'run.json'), JSON.stringify(run));
      const args = [BIN, 'swarm', '--no-validate', '--force', '--peers', String(N), '--rounds', String(ROUNDS), '--run', join(dir, 'run.json'), '--out', join(dir, 'out'), '--json'];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
      const line = r.stdout.split('\n').find((l) => l.startsWith('{') && l.includes('"summary"'));
      if (r.status !== 0 || !line) throw new Error(`tessera swarm exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
      const s = JSON.parse(line) as SwarmSummary;
      const g = s.peersDetail.map((p) => p.gathered);
      console.log(
        `losses ${s.lossPerRound.map((x) => x.loss?.toFixed(3)).join(' ')}; included ${s.lossPerRound.map((x) => `${x.included}/${x.members}`).join(' ')}; ` +
          `from peers ${g.map((x) => x.fromPeers).join(',')}; from the store ${g.map((x) => x.fromStore).join(',')}; served ${g.map((x) => x.served).join(',')}; ` +
          `max round KiB up ${g.map((x) => (x.maxRoundBytesUp / 1024).toFixed(0)).join(',')}, down ${g.map((x) => (x.maxRoundBytesDown / 1024).toFixed(0)).join(',')}; ` +
          `update ${g[0].maxUpdateBytes} B; held at most ${g.map((x) => x.maxHeld).join(',')}; ${s.seconds.toFixed(0)} s`,
      );
      expect(s.lossPerRound.map((x) => x.round)).toEqual([...Array(ROUNDS).keys()]);
      for (const x of s.lossPerRound) expect(x.included).toBe(K);
      expect(s.lossPerRound.at(-1)!.loss!).toBeLessThan(s.lossPerRound[0].loss!);
      for (let round = 0; round < ROUNDS; round++) {
        const hashes = Object.values(s.weightsHashes[round]);
        expect(hashes).toHaveLength(N);
        expect(new Set(hashes).size).toBe(1);
      }
      expect(s.weightsIdentical).toBe(true);
      // Each replica gathered K per round (its own committed update needs no fetch), some from peers.
      for (const x of g) expect(x.fromPeers + x.fromStore).toBeLessThanOrEqual(K * ROUNDS);
      expect(g.reduce((a, x) => a + x.fromPeers, 0)).toBeGreaterThan(0);
      expect(g.reduce((a, x) => a + x.served, 0)).toBeGreaterThan(0);
      for (const p of s.peersDetail) expect(p.roundsCompleted).toBe(ROUNDS);
      for (const x of g) {
        // Memory: its own update and the committed K at most. Upload a round: its update once, and at most the serving cap.
        expect(x.maxHeld).toBeLessThanOrEqual(K + 1);
        expect(x.maxRoundBytesUp).toBeLessThanOrEqual((1 + servingCap(K)) * x.maxUpdateBytes + GATHER_MESSAGE_BYTES);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 660_000);
});
