// `tessera simulate` end to end, small: 30 simulated peers of `tiny` against the real
// coordinator in this process, 3 rounds. Every round closes, its commit names min(K,
// delivered) updates, every replica (and the validator engine) reaches the same fingerprint,
// and a peer's bytes stay bounded by K+1 updates; bad flags are refused naming the flag.
import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../src/sim/simulation.ts';
import { startCoordinator } from '../../src/cli/coordinator-command.ts';
import { parseSimulateArgs } from '../../src/cli/simulate-command.ts';
import { CommandUsageError } from '../../src/cli/args.ts';

const PEERS = 30;
const K = 8;
const SIZE_SLACK = 1.03;

describe('tessera simulate', () => {
  it(`${PEERS} peers, K = ${K}, 3 rounds: rounds close, commits are min(K, delivered), fingerprints agree, bytes bounded`, async () => {
    const lines: string[] = [];
    const report = await runSimulation({
      peers: PEERS, model: 'tiny', rounds: 3, gatherK: K, neighbours: 4, link: { upMbps: 20, downMbps: 100, rttMs: 20, loss: 0 }, unlinkable: 0.2,
      trainMs: 500, trainJitter: 0.2, joinStormS: 1, leave: 0, killAt: null, evalMs: 5, seed: 3, log: (l) => lines.push(l),
    }, startCoordinator);
    const s = report.summary;
    expect(report.rows.map((r) => r.round)).toEqual([0, 1, 2]);
    expect(s.roundsClosed).toBe(3);
    expect(s.allBeforeDeadline).toBe(true);
    for (const r of report.rows) {
      expect(r.committed).toBe(Math.min(K, r.delivered));
      expect(r.delivered).toBeGreaterThanOrEqual(0.95 * r.members);
      expect(r.replicas).toBeGreaterThanOrEqual(r.members - 1);
      expect(r.fingerprints).toBe(1);
      // Each peer: its own update plus at most K fetched, held and moved (updates' sizes vary
      // by a few bytes with their random positions' Rice codes: 3% slack).
      expect(r.heldMax).toBeLessThanOrEqual(K + 1);
      expect(r.downMax).toBeLessThanOrEqual(K * report.envelopeBytes * SIZE_SLACK);
      expect(r.upMax).toBeLessThanOrEqual((K + 1) * report.envelopeBytes * SIZE_SLACK);
    }
    // The validator engine applied the same commits (at least one round scored in this time).
    expect(report.rows.some((r) => r.engineAgrees === true)).toBe(true);
    expect(s.fingerprintsEqual).toBe(true);
    expect(report.unknownMessages).toBe(0);
  }, 120_000);

  it('--store bucket: every update goes through the coordinator\'s bucket intake (presigned PUT, uploaded with a signed root, redirected reads) on the modelled bucket, and neighbours serve committed updates', async () => {
    const peers = 10;
    const report = await runSimulation({
      peers, model: 'tiny', rounds: 2, gatherK: 4, neighbours: 3, link: { upMbps: 20, downMbps: 100, rttMs: 20, loss: 0 }, unlinkable: 0,
      trainMs: 300, trainJitter: 0.2, joinStormS: 0, leave: 0, killAt: null, evalMs: 5, seed: 5, store: 'bucket', templates: 2, log: () => {},
    }, startCoordinator);
    const b = report.bucket!;
    const delivered = report.rows.reduce((n, r) => n + r.delivered, 0);
    expect(report.summary.roundsClosed).toBe(2);
    expect(report.summary.fingerprintsEqual).toBe(true);
    expect(report.refused).toEqual({});
    expect(delivered).toBe(2 * peers);
    // Each update uploaded once, taken in by its header and signature alone (two ranged reads,
    // nothing regenerated for it), copied to its final key; only the validator reads bodies
    // whole: what it scores (the committed and its sample), each regenerated and hash-checked.
    expect(b).toMatchObject({ uploads: delivered, coordinatorRangeReads: 2 * delivered, copies: delivered });
    const committed0 = report.rows[0].committed;
    expect(b.coordinatorReads).toBeGreaterThanOrEqual(committed0);
    expect(b.coordinatorReads).toBeLessThanOrEqual(delivered);
    expect(b.coordinatorReadBytes).toBeLessThanOrEqual(b.coordinatorReads * report.envelopeBytes * SIZE_SLACK + 2 * delivered * 400);
    // Peers' store fetches were redirected to the bucket; the rest came from neighbours (each
    // commit entry carries its author's signed piece root, so a neighbour may serve it).
    expect(b.peerReads).toBe(report.rows.reduce((n, r) => n + r.fromStore, 0));
    expect(report.rows.reduce((n, r) => n + r.fromNeighbours, 0)).toBeGreaterThan(0);
    expect(report.updates).toMatchObject({ store: 'bucket', templates: 2 });
  }, 60_000);

  it('refuses bad flags with a message naming the flag', () => {
    const refused = (args: string[]) => {
      try {
        parseSimulateArgs(args);
      } catch (e) {
        expect(e).toBeInstanceOf(CommandUsageError);
        return (e as Error).message;
      }
      throw new Error(`accepted ${args.join(' ')}`);
    };
    expect(refused(['--peers', '0'])).toMatch(/--peers must be an integer in \[1, 10000\], got '0'/);
    expect(refused(['--model', 'huge'])).toMatch(/--model must be one of tiny, small, base, 1b/);
    expect(refused(['--loss', '0.9'])).toMatch(/--loss/);
    expect(refused(['--up', '-1'])).toMatch(/--up must be a number > 0/);
    expect(refused(['--kill-at', '3', '--rounds', '3'])).toMatch(/--kill-at/);
    expect(refused(['--gather-k', 'x'])).toMatch(/--gather-k/);
    expect(refused(['--store', 'bucket', '--store-config', 'x.json'])).toMatch(/--store-config goes with --store s3, not with the modelled --store bucket/);
    // disk and s3 are read as every command reads them (store-settings.ts): a bad one names --store.
    expect(() => parseSimulateArgs(['--store', 'nfs'])).toThrow(/--store/);
    expect(refused(['--templates', '0'])).toMatch(/--templates/);
    expect(refused(['--peer', '3'])).toMatch(/unknown option '--peer' \(did you mean --peers\?\)/);
    expect(parseSimulateArgs(['--peers', '5', '--leave', '0.1'])?.options).toMatchObject({ peers: 5, leave: 0.1, gatherK: 20, neighbours: 8 });
  });
});
