// `npm run bench -- checkpoint-sync [--models base,1b]`: a late joiner entering a run after
// round 25 from the coordinator's store, at real model sizes.
//
// What is constructed, not trained: the run's state at round 26 (commits of rounds 6–25, as
// the store keeps 20, so replay from the seed is impossible; commit 25 asks an uploader and
// names the consensus weights fingerprint) and the weights (a synthetic θ_start of the
// model's exact layout: seeded values for base, a cheap non-repeating pattern for 1b, so no piece repeats and none is deduplicated). What is real: the
// coordinator and its HTTP server, the asked uploader's signed manifest and 32 MiB pieces
// over HTTP (streamed to disk, hashed), the coordinator's check of the pieces against the
// commit's fingerprint, and the late joiner's fetch (Range requests, each piece hashed), the
// decode of the checkpoint and its fingerprint check — everything a joiner does but upload
// the weights to its GPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { serveCoordinator } from '../../src/coordinator/server.ts';
import { CoordinatorStore, type CommitRecord } from '../../src/coordinator/state-store.ts';
import { fetchCheckpoint } from '../../src/contributor/checkpoint-fetch.ts';
import { uploadCheckpoint } from '../../src/contributor/checkpoint-upload.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import { weightsFingerprint } from '../../src/train/weights-fingerprint.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { syntheticWeights } from '../coordinator/checkpoint-support.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
const ROUND = 26;

async function one(model: string): Promise<BenchRow> {
  await cryptoReady();
  const keys = ['//Alice', '//Bob', '//Carol'].map((p) => Hotkey.fromMnemonic(DEV, p));
  const uploader = keys[0];
  const config = parseRunConfig({ run: `bench-${model}`, model, minMembers: 3, checkpointEvery: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ckptbench-'));
  const rss = () => process.memoryUsage().rss / 2 ** 20;
  let peakRss = rss();
  const watch = setInterval(() => (peakRss = Math.max(peakRss, rss())), 50);
  try {
    let t = performance.now();
    const w = await syntheticWeights(config, ROUND, 1, model === 'base' ? undefined : 0.01);
    const makeMs = performance.now() - t;
    // The run's state at round 26, as the store keeps it.
    const members = keys.map((k) => k.address).sort();
    const commits: CommitRecord[] = [];
    for (let r = ROUND - 20; r < ROUND; r++) {
      const included = members.map((sender, i) => ({ sender, stage: 0, hash: (r * 3 + i).toString(16).padStart(64, '0') }));
      commits.push({ round: r, members, included, missing: [], closedAt: r * 1000, ...(r === ROUND - 1 ? { checkpointBy: { 0: uploader.address }, weightsAfter: w.fingerprint } : {}) });
    }
    const store = new CoordinatorStore(dir);
    store.save({ format: 1, run: config.run, round: ROUND, checkpointRound: -1, commits, reports: {}, tokensTrained: 0 });
    const log: string[] = [];
    const coordinator = new Coordinator(config, store, { log: (l) => log.push(l) });
    const server = await serveCoordinator(coordinator, { port: 0, shard: new Uint8Array(16) });
    const http = `http://127.0.0.1:${server.port}`;
    try {
      t = performance.now();
      const warnings: string[] = [];
      await uploadCheckpoint({
        key: uploader, http: nodeHttpClient(600_000), httpBase: http, run: config.run, stage: 0, round: ROUND, pieceBytes: config.checkpointPieceBytes,
        weights: async () => w.parts, fingerprint: async () => w.fingerprint,
        traffic: { sent: () => {}, received: () => {} } as never, onEvent: (e) => void (e.event === 'warning' && warnings.push(e.text)),
      });
      if (warnings.length) throw new Error(warnings.join('; '));
      const uploadMs = performance.now() - t;
      t = performance.now();
      while (coordinator.status().checkpointRound !== ROUND) {
        if (performance.now() - t > 600_000) throw new Error(`the checkpoint was not accepted: ${log.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const verifyMs = performance.now() - t;
      const bytes = w.bytes;
      w.parts.length = 0;
      w.tensors.clear();
      // The late joiner.
      t = performance.now();
      const got = await fetchCheckpoint({ http: nodeHttpClient(600_000), httpBase: http, config, stage: 0 });
      const fetchMs = performance.now() - t;
      t = performance.now();
      const c = decodeCheckpoint(got!.bytes, 'the coordinator’s checkpoint');
      const decodeMs = performance.now() - t;
      t = performance.now();
      const held = await weightsFingerprint([...c.tensors].map(([n, x]) => [n.slice('param/'.length), x] as const));
      const fingerprintMs = performance.now() - t;
      if (held !== got!.weights || (c.dataPosition as { round: number }).round !== ROUND) throw new Error('the fetched checkpoint is not the committed one');
      const s = (ms: number) => Number((ms / 1000).toFixed(2));
      return {
        model, MB: Number((bytes / 1e6).toFixed(1)), pieces: Math.ceil(bytes / config.checkpointPieceBytes), 'build s': s(makeMs),
        'upload s': s(uploadMs), 'coordinator check s': s(verifyMs), 'joiner fetch+verify s': s(fetchMs), 'decode s': s(decodeMs), 'fingerprint s': s(fingerprintMs),
        'joiner total s': s(fetchMs + decodeMs + fingerprintMs), 'fetch MB/s': Math.round(bytes / 1e6 / (fetchMs / 1000)), 'peak RSS MiB': Math.round(peakRss),
      };
    } finally {
      await server.close();
      coordinator.stop();
    }
  } finally {
    clearInterval(watch);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCheckpointSyncBench(argv: string[]): Promise<number> {
  const i = argv.indexOf('--models');
  const models = i >= 0 ? argv[i + 1].split(',') : ['base', '1b'];
  const rows: BenchRow[] = [];
  for (const m of models) {
    rows.push(await one(m));
    printTable('checkpoint sync from the store (late joiner after round 25)', rows);
  }
  console.log(`results: ${writeResults(`checkpoint-sync-${models.join('-')}`, { rows, note: 'state and weights constructed (not trained); loopback HTTP; 32 MiB pieces' })}`);
  return 0;
}
