// `npm run bench -- s3-store [--members N] [--rounds R] [--model small] [--joiners J] [--part updates|checkpoint|all]`:
// the coordinator's bytes on the wire with the run's store on its own disk and in an
// S3-compatible bucket (a real single-node Ceph radosgw started here: test/support/ceph-s3.ts).
// Updates: N protocol clients over real WebSockets send a real signed update each round and
// fetch every committed update from the store, as contributors do with no neighbours to gather
// from (the worst case for the store: every update fetched N−1 times). Checkpoint: the asked
// uploader's real upload of a 'tiny' checkpoint in 64 KiB pieces, then J late joiners' real
// verified fetches (test/support/bucket-checkpoint.ts). Needs Ceph installed.
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore } from '../../src/coordinator/object-store.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { cephUnavailable, startCephS3 } from '../support/ceph-s3.ts';
import { startBucketSwarm, swarmRound, type SwarmRound } from '../support/bucket-swarm.ts';
import { checkpointAsked, checkpointTraffic, type CheckpointTraffic } from '../support/bucket-checkpoint.ts';
import { DEV, testConfig } from '../coordinator/helpers.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

/** Small pieces, so that the 'tiny' checkpoint (~0.5 MB) is several pieces as a large one is. */
const CHECKPOINT_PIECE_BYTES = 64 * 1024;

export async function runS3StoreBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { members: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' }, model: { type: 'string', default: 'small' }, joiners: { type: 'string', default: '4' }, part: { type: 'string', default: 'all' } } });
  if (!['updates', 'checkpoint', 'all'].includes(values.part)) {
    console.error(`s3-store: --part must be updates, checkpoint or all, got '${values.part}'`);
    return 1;
  }
  const joiners = Number(values.joiners);
  const unavailable = cephUnavailable();
  if (unavailable) {
    console.error(`s3-store: ${unavailable}`);
    return 1;
  }
  await cryptoReady();
  const members = Number(values.members);
  const rounds = Number(values.rounds);
  const config = testConfig({ model: values.model, minMembers: members, gatherK: members, roundSeconds: 300 });
  const keys = Array.from({ length: members }, (_, i) => Hotkey.fromMnemonic(DEV, `//bench${i}`));
  const ceph = await startCephS3();
  const work = mkdtempSync(join(tmpdir(), 'tessera-s3-bench-'));
  const results: Record<string, SwarmRound[]> = {};
  const checkpoints: Record<string, CheckpointTraffic> = {};
  const checkpointConfig = testConfig({ model: 'tiny', minMembers: 3, checkpointPieceBytes: CHECKPOINT_PIECE_BYTES });
  try {
    await ceph.createBucket('tessera-bench');
    for (const store of ['disk', 's3'] as const) {
      const bucket = store === 's3' ? new S3ObjectStore({ endpoint: ceph.endpoint, region: ceph.region, bucket: 'tessera-bench', accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey }) : undefined;
      if (values.part !== 'checkpoint') {
        const swarm = await startBucketSwarm(config, keys, join(work, store), bucket);
        results[store] = [];
        for (let r = 0; r < rounds; r++) results[store].push(await swarmRound(swarm, config, r));
        await swarm.stop();
      }
      if (values.part !== 'updates') {
        const s = await checkpointAsked(checkpointConfig, keys.slice(0, 3), join(work, `${store}-checkpoint`), bucket);
        checkpoints[store] = await checkpointTraffic(s, joiners);
        await s.stop();
      }
      bucket?.destroy();
    }
  } finally {
    ceph.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const rows: BenchRow[] = Object.entries(results).flatMap(([store, rs]) =>
    rs.map((r) => ({ store, round: r.round, members, updateKB: r.updateBytes / 1000, fetched: r.fetched, fetchedKB: r.fetchedBytes / 1000, coordinatorSentKB: r.coordinatorSent / 1000, coordinatorReceivedKB: r.coordinatorReceived / 1000, paths: [...new Set(r.paths)].join('/') })),
  );
  if (rows.length) printTable(`coordinator bytes per round, ${members} members, model ${values.model} (Ceph started in ${ceph.startSeconds.toFixed(1)} s)`, rows);
  const checkpointRows: BenchRow[] = Object.entries(checkpoints).map(([store, t]) => ({
    store, checkpointKB: t.checkpointBytes / 1000, pieces: t.pieces, uploadReceivedKB: t.uploadReceived / 1000, uploadSentKB: t.uploadSent / 1000, joiners: t.joiners, fetchSentKB: t.fetchSent / 1000, sentPerJoinerKB: t.fetchSent / t.joiners / 1000,
  }));
  if (checkpointRows.length) printTable(`coordinator bytes for one checkpoint (tiny, ${CHECKPOINT_PIECE_BYTES / 1024} KiB pieces): its upload, then ${joiners} late joiners' fetches`, checkpointRows);
  console.log(`\nwrote ${writeResults('s3-store', { members, rounds, model: values.model, cephStartSeconds: ceph.startSeconds, rows, checkpointRows })}`);
  return 0;
}
