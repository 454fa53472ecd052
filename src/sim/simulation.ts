// `tessera simulate`: N simulated contributors (sim-peer.ts) in this process against the
// real coordinator, started in-process as the CLI starts it (startCoordinator) on a state
// folder, with the validator's GPU work replaced by SimValidatorEngine; with --store bucket the
// coordinator's updates go through a modelled bucket (sim-bucket.ts) by its real bucket intake
// (bucket-updates.ts: presigned PUT, `uploaded`, redirects for reads). Faults: a join storm
// (all N join within S seconds), a fraction of each round's members leaving mid-round (they
// rejoin after the commit and catch up), the coordinator stopped and started again on the
// same state folder. Per round it records what report.ts prints.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Coordinator } from '../coordinator/coordinator.ts';
import type { ValidatorEngine } from '../coordinator/validator.ts';
import type { ObjectStore } from '../coordinator/object-store.ts';
import type { PresetName } from '../model/config.ts';
import { parseRunConfig, type RunConfig } from '../protocol/run-config.ts';
import { Hotkey, cryptoReady } from '../wallet/keys.ts';
import { measureUpdateCosts } from './update-costs.ts';
import { LinkModel, transferMs, type LinkSpec } from './link-model.ts';
import { COORDINATOR_NODE, SimContext } from './sim-context.ts';
import { SimValidatorEngine } from './sim-engine.ts';
import { SimPeer, type PeerEvent } from './sim-peer.ts';
import { seededRandom } from './update-generator.ts';
import { UpdateTemplates } from './update-templates.ts';
import { BUCKET_NODE, SimBucket } from './sim-bucket.ts';
import { summarise, type RoundRow, type SimulationReport } from './report.ts';
import { RoundLog } from './round-log.ts';

/** A coordinator started in this process (the CLI's startCoordinator: src/cli is the layer above, so it is passed in). */
export interface StartedSimCoordinator {
  coordinator: Coordinator;
  server: { port: number; url: string };
  stop(): Promise<{ unscoredRounds: number }>;
}

export type StartCoordinator = (
  config: RunConfig,
  o: { port: number; stateDir: string; log: (line: string) => void; roundLimit: number; syncGraceMs: number; engine: () => Promise<ValidatorEngine>; bucket?: ObjectStore },
) => Promise<StartedSimCoordinator>;

export interface SimulationOptions {
  peers: number;
  model: PresetName;
  rounds: number;
  gatherK: number;
  neighbours: number;
  /** Every peer's link (the coordinator's is `coordinatorLink`). */
  link: LinkSpec;
  unlinkable: number;
  /** Training delay per round, ms, and its spread (each round uniform in ±jitter of it). */
  trainMs: number;
  trainJitter: number;
  /** All peers join within this many seconds (0: at once). */
  joinStormS: number;
  /** Fraction of each round's members that leave mid-round (they rejoin after its commit). */
  leave: number;
  /** Stop and restart the coordinator during this round (null: never). */
  killAt: number | null;
  /** Modelled validator time per evaluated update, ms (a forward pass set, measured elsewhere). */
  evalMs: number;
  /** Where the coordinator keeps updates: its state folder ('disk'), or a modelled bucket through its bucket intake ('bucket'). */
  store?: 'disk' | 'bucket';
  /** Update templates encoded by the real encoder (update-templates.ts); each peer's update is one rewritten. Default DEFAULT_TEMPLATES. */
  templates?: number;
  /** The run's round deadline; default: from the train and upload times. */
  roundSeconds?: number;
  seed: number;
  /** The run's S3-compatible bucket (--store s3): updates go up to and come down from it. */
  bucket?: ObjectStore;
  log: (line: string) => void;
  /** Coordinator log lines too. */
  verbose?: boolean;
}

export const COORDINATOR_LINK: LinkSpec = { upMbps: 10_000, downMbps: 10_000, rttMs: 1, loss: 0, shared: true };
/** Templates made by the real encoder per run, unless told (1b: ~2.2 s each on an idle core). */
export const DEFAULT_TEMPLATES = 4;
/** The modelled bucket's link: S3-like aggregate bandwidth (each peer is limited by its own link). */
export const BUCKET_LINK: LinkSpec = { upMbps: 100_000, downMbps: 100_000, rttMs: 20, loss: 0, shared: true };
/** After a commit, how long the coordinator waits for late syncers before the next round. */
const SYNC_GRACE_MS = 2000;
/** The round starts once this share of the peers is ready. */
const MIN_MEMBER_SHARE = 0.9;
/** After the last commit, how long the simulation waits for the peers still applying it. */
const DRAIN_MS = 60_000;
/** The validator's fixed time per round (base losses, the commit): tiny's measured 600–1,175 ms in its thread. */
const EVAL_FIXED_MS = 900;

/** A killed coordinator is started again after this pause. */
const RESTART_PAUSE_MS = 1000;

/** A peer's key from its index, derived from a 32-byte seed (no BIP-39 stretching: ~ms per key). */
function simKey(index: number, seed: number): Hotkey {
  return Hotkey.fromSeed(new Uint8Array(createHash('sha256').update(`tessera-sim-peer:${seed}:${index}`).digest()));
}

/**
 * The round deadline. `updateGenMs`: one peer's update made and signed; `intakeMs`: the
 * coordinator's work on one (read, envelope and frame checks, its disk copy), both measured.
 */
export function simulationConfig(o: SimulationOptions, updateBytes: number, updateGenMs: number, intakeMs = 0): RunConfig {
  const uploadMs = transferMs(updateBytes, o.link.upMbps, o.link.rttMs, o.link.loss);
  // Training, the upload, K downloads at the downlink's rate, and slack for this one process serving N peers…
  const fetchMs = o.gatherK * transferMs(updateBytes, o.link.downMbps, o.link.rttMs, o.link.loss);
  // …and what only the simulation pays: every peer's update made, and taken in by the coordinator, on this one thread.
  const serialMs = Math.max(0, o.peers * (updateGenMs + intakeMs) - o.trainMs);
  const roundSeconds = o.roundSeconds ?? Math.ceil((o.trainMs * (1 + o.trainJitter) + 2 * uploadMs + fetchMs + serialMs) / 1000 + 10 + o.peers / 50);
  return parseRunConfig({
    run: 'sim', name: 'Simulated run', model: o.model, gatherK: o.gatherK, neighbours: o.neighbours, roundSeconds,
    minMembers: Math.max(1, Math.ceil(MIN_MEMBER_SHARE * o.peers)), plannedRounds: Math.max(o.rounds, 1), heartbeatSeconds: 5,
  });
}

export async function runSimulation(o: SimulationOptions, startCoordinator: StartCoordinator): Promise<SimulationReport> {
  await cryptoReady();
  const sampleConfig = parseRunConfig({ run: 'sim', model: o.model });
  const templateStart = performance.now();
  const store = o.store ?? 'disk';
  const templateCount = o.templates ?? DEFAULT_TEMPLATES;
  const templates = UpdateTemplates.make(sampleConfig, templateCount);
  const templateMs = (performance.now() - templateStart) / templateCount;
  const keyStart = performance.now();
  const keys = Array.from({ length: o.peers }, (_, i) => simKey(i, o.seed));
  const keyDerivationMs = performance.now() - keyStart;
  const cost = measureUpdateCosts(sampleConfig, templates, keys[0], store === 'bucket');
  const updateBytes = cost.updateBytes;
  const updateGenMs = cost.makeMs;
  const config = simulationConfig(o, updateBytes, updateGenMs, cost.intakeMs);
  // What one update weighs on the wire, signed: the unit of the per-peer bytes.
  const envelopeBytes = cost.envelopeBytes;
  const stateDir = mkdtempSync(join(tmpdir(), 'tessera-sim-'));
  const engines: SimValidatorEngine[] = [];
  const log = new RoundLog();
  const links = new LinkModel({ unlinkable: o.unlinkable, seed: o.seed });
  links.addNode(COORDINATOR_NODE, COORDINATOR_LINK);
  const bucket = store === 'bucket' ? new SimBucket({ templates, links: { model: links, coordinator: COORDINATOR_NODE } }) : null;
  if (bucket) links.addNode(BUCKET_NODE, BUCKET_LINK);
  const coordLog = (line: string) => { if (o.verbose) o.log(`coordinator: ${line}`); };
  let started: StartedSimCoordinator;
  const start = async (port: number) => {
    started = await startCoordinator(config, {
      port, stateDir, log: coordLog, roundLimit: o.rounds, syncGraceMs: SYNC_GRACE_MS, ...(bucket ? { bucket } : o.bucket ? { bucket: o.bucket } : {}),
      engine: async () => { const e = new SimValidatorEngine(config, { perUpdateMs: o.evalMs, fixedMs: EVAL_FIXED_MS }); engines.push(e); return e; },
    });
    log.timeHandlers(started.coordinator);
    return started;
  };
  await start(0);
  const port = started!.server.port;
  const ctx = new SimContext(config, links, `http://127.0.0.1:${port}`);
  ctx.bucket = bucket;
  const random = seededRandom(o.seed);
  const peers: SimPeer[] = [];
  let lastCommitted = -1;
  let finished: () => void = () => {};
  const done = new Promise<void>((r) => (finished = r));
  const onEvent = (peer: SimPeer, e: PeerEvent) => {
    if (e.type === 'round' && log.roundSeen(e.round, e.memberCount, e.deadline)) {
      if (o.leave > 0) {
        const leavers = pick(peers.filter((p) => p.connected && !p.isAway), Math.floor(o.leave * e.memberCount), random);
        for (const p of leavers) p.leaveDuring(e.round, 0.2 + 0.6 * random());
        log.leaving(e.round, leavers.length);
      }
      if (o.killAt === e.round) void restart();
    } else if (e.type === 'commit' && log.commitSeen(e.round, e.included, e.delivered, started.coordinator.progress().pendingRounds)) {
      lastCommitted = e.round;
      // Progress as it happens (a long run stopped early still says how far it got).
      o.log(`round ${e.round} committed ${e.included} of ${e.delivered} delivered, ${((Date.now() - joinStart) / 1000).toFixed(0)} s after the joins began`);
      ctx.currentRound = e.round + 1;
      ctx.forget(e.round - 1);
      for (const p of peers) if (p.isAway) setTimeout(() => p.rejoin(), 1000 * random());
    } else if (e.type === 'applied') {
      log.applied(e.round);
      if (e.round === o.rounds - 1 && peers.every((p) => p.isAway || !p.connected || p.held >= o.rounds)) finished();
    } else if (e.type === 'refused') log.refused(e.what);
  };
  const restart = async () => {
    await new Promise((r) => setTimeout(r, o.trainMs / 2));
    o.log(`fault: coordinator stopped during round ${o.killAt}`);
    await started.stop();
    await new Promise((r) => setTimeout(r, RESTART_PAUSE_MS));
    await start(port);
    o.log('fault: coordinator started again on the same state folder');
  };
  for (let i = 0; i < o.peers; i++) {
    links.addNode(i, o.link);
    ctx.peerIndex.set(keys[i].address, i);
    const trainMs = () => o.trainMs * (1 + o.trainJitter * (2 * random() - 1));
    peers.push(new SimPeer({ index: i, key: keys[i], ctx, wsUrl: started!.server.url, templates, trainMs, onEvent }));
  }
  const joinStart = Date.now();
  peers.forEach((p, i) => setTimeout(() => p.connect(), o.peers > 1 ? (o.joinStormS * 1000 * i) / (o.peers - 1) : 0));
  const limitMs = (o.rounds + 2) * config.roundSeconds * 1000 * 2 + o.joinStormS * 1000;
  const timer = setTimeout(finished, limitMs);
  // The last round's commit, then its apply everywhere — or, after the commit, DRAIN_MS, a
  // round's time, or twice the time K + 1 updates take through a peer's uplink (at 1b a peer
  // serves up to K updates at 20 Mbit/s: ~150 s), whichever is longest.
  const drainMs = Math.max(DRAIN_MS, config.roundSeconds * 1000, 2 * (o.gatherK + 1) * transferMs(envelopeBytes, o.link.upMbps, o.link.rttMs, o.link.loss));
  const drain = setInterval(() => { if (lastCommitted === o.rounds - 1 && Date.now() - log.commitAt(o.rounds - 1)! > drainMs) finished(); }, 1000);
  await done;
  clearTimeout(timer);
  clearInterval(drain);
  for (const p of peers) p.stop();
  const stopped = await started!.stop();
  rmSync(stateDir, { recursive: true, force: true });
  const rows: RoundRow[] = log.rows(ctx, engines, o.rounds);
  return summarise({
    options: o, config: { gatherK: config.gatherK, neighbours: config.neighbours, roundSeconds: config.roundSeconds, minMembers: config.minMembers },
    updateBytes, envelopeBytes, updateGenMs, keyDerivationMs, joinStartedAt: joinStart, rows,
    updates: { templates: templateCount, templateMs, intakeMs: cost.intakeMs, store }, bucket: bucket ? { ...bucket.counters } : null, refused: log.refusals,
    unknownMessages: peers.reduce((n, p) => n + p.unknownMessages, 0), unscoredAtStop: stopped.unscoredRounds,
  });
}

/** `n` of `from`, at random (a partial shuffle). */
function pick<T>(from: T[], n: number, random: () => number): T[] {
  const a = [...from];
  for (let i = 0; i < Math.min(n, a.length); i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

