// `npm run bench -- checkpoint-sync [--models base,1b]`: a late joiner entering a run after
// round 25, at real model sizes: from a neighbour that holds the checkpoint (its pieces over a
// real WebRTC link on loopback, @roamhq/wrtc, each hashed against the manifest; the manifest
// from the coordinator), and from the coordinator's store.
//
// What is constructed, not trained: the run's state at round 26 (commits of rounds 6–25, as
// the store keeps 20, so replay from the seed is impossible; commit 25 asks an uploader and
// names the consensus weights fingerprint) and the weights (a synthetic θ_start of the
// model's exact layout: seeded values for base, a cheap non-repeating pattern for 1b, so no piece repeats and none is deduplicated). What is real: the
// coordinator and its HTTP server, the asked uploader's signed manifest and 32 MiB pieces
// over HTTP (streamed to disk, hashed), the coordinator's check of the pieces against the
// commit's fingerprint, and the late joiner's fetch (Range requests, each piece hashed), the
// decode of the checkpoint and its fingerprint check — everything a joiner does but upload
// the weights to its GPU. The from-peers fetch runs first (the neighbour's pieces are views
// into the synthetic weights, so one process holds them and the joiner's copy: 2× the
// checkpoint), then the store's, as before.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { serveCoordinator } from '../../src/coordinator/server.ts';
import { CoordinatorStore, type CommitRecord } from '../../src/coordinator/state-store.ts';
import { fetchCheckpoint } from '../../src/contributor/checkpoint-fetch.ts';
import { splitPieces } from '../../src/protocol/checkpoint-manifest.ts';
import { checkpointPeers } from '../support/checkpoint-peer.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';
import { loadavg } from 'node:os';
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
  const keys = ['//Alice', '//Bob', '//Carol', '//Dave'].map((p) => Hotkey.fromMnemonic(DEV, p));
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
    const members = keys.slice(0, 3).map((k) => k.address).sort();
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
      // From a neighbour: Bob holds the checkpoint (as every replica at the checkpoint round
      // does), Dave joins; the coordinator sends the manifest and the commit only.
      const load1 = loadavg()[0];
      const pieces = await splitPieces(w.parts, config.checkpointPieceBytes);
      const net = checkpointPeers(config, [keys[3], keys[1]], 8 * 1024 ** 3);
      let peersMs: number;
      let peersCpuS: number;
      let fromPeers: number;
      let peerSent: number;
      try {
        await net.linked();
        net.peers[1].ckpt.keep(ROUND, 0, pieces);
        const sent0 = server.traffic().sent;
        t = performance.now();
        const cpu0 = process.cpuUsage();
        const viaPeers = await fetchCheckpoint({ http: nodeHttpClient(600_000), httpBase: http, config, stage: 0, peers: net.peers[0].ckpt });
        peersMs = performance.now() - t;
        const cpu = process.cpuUsage(cpu0);
        peersCpuS = (cpu.user + cpu.system) / 1e6;
        peerSent = server.traffic().sent - sent0;
        fromPeers = viaPeers!.sources.piecesFromPeers;
        if (viaPeers!.sources.piecesFromStore !== 0 || viaPeers!.round !== ROUND) throw new Error(`the from-peers fetch took ${viaPeers!.sources.piecesFromStore} pieces from the store`);
      } finally {
        net.close();
        for (const p of net.peers) p.ckpt.drop(); // neither end's copy stays through the store's fetch
      }
      pieces.length = 0;
      const bytes = w.bytes;
      w.parts.length = 0;
      w.tensors.clear();
      // The late joiner.
      t = performance.now();
      const storeCpu0 = process.cpuUsage();
      const got = await fetchCheckpoint({ http: nodeHttpClient(600_000), httpBase: http, config, stage: 0 });
      const fetchMs = performance.now() - t;
      const storeCpu = process.cpuUsage(storeCpu0);
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
        'joiner total s': s(fetchMs + decodeMs + fingerprintMs), 'fetch MB/s': Math.round(bytes / 1e6 / (fetchMs / 1000)), 'fetch CPU s (both ends)': s((storeCpu.user + storeCpu.system) / 1000),
        'from peers: fetch+verify s': s(peersMs), 'from peers MB/s': Math.round(bytes / 1e6 / (peersMs / 1000)), 'from peers CPU s (both ends)': s(peersCpuS * 1000), 'pieces from peers': fromPeers, 'coordinator sent (peers) KB': Math.round(peerSent / 1000),
        'load (1 min)': Number(load1.toFixed(1)), 'peak RSS MiB': Math.round(peakRss),
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
  console.log(`results: ${writeResults(`checkpoint-sync-${models.join('-')}`, { rows, note: 'state and weights constructed (not trained); loopback HTTP and one loopback WebRTC link (@roamhq/wrtc); 32 MiB pieces, 4 MiB ranges, up to 4 in flight per neighbour; CPU s: user + system of this one process (both ends)' })}`);
  const left = await releaseWebRtc();
  if (left.length) console.warn(`libwebrtc threads still running: ${left.join(', ')}`);
  return 0;
}
