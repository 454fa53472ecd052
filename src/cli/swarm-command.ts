// `tessera swarm --peers N --rounds R [--kill K@r] [--json]`: a whole run on this machine — a
// coordinator in this process and N `tessera contribute` processes on loopback, each with
// its own key and GPU device. --kill K@r kills contributor K (SIGKILL) while it sends its
// round-r update and starts a fresh contributor in its place. Ends with a summary: loss per
// round, rounds completed by each peer, bytes moved, messages rejected, weight fingerprints.
// --stages S makes it a pipelined run: the coordinator places each contributor in a stage,
// activations flow between stages peer to peer, and each stage's replicas sync with
// SparseLoCo; --kill-stage S@r kills a peer of stage S in the middle of round r's steps.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localCheckpointName, type ContributorEvent } from '../contributor/contributor.ts';
import type { Standing } from '../protocol/messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { Hotkey, cryptoReady } from '../wallet/keys.ts';
import { parseCommandArgs } from './args.ts';
import { FileCheckpointStore } from '../node/checkpoint-files.ts';
import { readRunFile, startCoordinator } from './coordinator-command.ts';
import { humanSummary, memoryVerdict, peakRss } from './swarm-report.ts';

export const SWARM_USAGE = `usage:
  tessera swarm --peers N --rounds R [--kill K@r] [--json] [--out DIR] [--verbose] [--force] [--run run.json] [--no-validate]
                [--model tiny] [--inner-steps H] [--batch B] [--seq T] [--lr LR] [--round-seconds S]
                [--stages S [--micro-batches M] [--activations f16|f32|int8] [--kill-stage S@r]]
  Runs a coordinator and N contributor processes on loopback for exactly R rounds and prints
  a summary: the loss from the first round to the last, each peer's rounds, reward and bytes.
  The final weights stay in --out DIR (default .tessera/swarm/<run>/, with summary.json);
  --json prints the summary as one JSON line instead. --verbose: every coordinator log line.
  Each contributor process takes up to ~1.6 GB (without a GPU, while compiling its kernels):
  a swarm that would not fit in free memory is refused (--force starts it anyway).
  --kill K@r: kill contributor K (0-based) while it sends its round-r update, then start a
  new contributor that joins and catches up; the run goes on until that one has trained a
  round too (at most 20 rounds more).
  --stages S: split the model into S pipeline stages held by different contributors (the
  coordinator places them); --kill-stage S@r kills a peer of stage S during round r's
  inner steps (its micro-batches are re-routed) and starts a new one, which the coordinator
  places in the stage that needs it. Pipelined runs are not scored by the validator yet.`;

export class SwarmUsageError extends Error {
  override name = 'SwarmUsageError';
}

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

interface Peer {
  name: string;
  address: string;
  child: ChildProcess;
  rounds: number[];
  /** The pipeline stage it holds (0 in a run of one stage). */
  stage: number;
  busy: number[];
  rerouted: number;
  dropped: number;
  bytesUp: number;
  bytesDown: number;
  rejected: Record<string, number>;
  exit: Promise<number | null>;
  killed: boolean;
  source?: string;
  /** The validator's latest verdict on it. */
  standing?: Standing;
  /** Started in place of a killed one. */
  replacement: boolean;
  /** The round whose θ_start it holds, as last reported; −1 before it synced. */
  reached: number;
  peakRssBytes: number | null;
  longestStallMs: number | null;
  /** The start-up phase it last reported, and the kernels it compiled ahead. */
  phase: string;
  kernelsCompiled: number;
}

/** Coordinator log lines `tessera swarm` shows only with --verbose: what its own lines already say. */
const ROUTINE_LOG = /^(joined: |round \d+ (started|closed)|validator: round \d+ \w{8} |checkpoint of round )/;

export interface SwarmSummary {
  run: string;
  model: string;
  peers: number;
  rounds: number;
  lossPerRound: { round: number; loss: number | null; members: number; included: number; missing: number }[];
  weightsIdentical: boolean;
  weightsHashes: Record<number, Record<string, string>>;
  stages: number;
  peersDetail: { name: string; address: string; stage: number; busyFraction: number | null; rerouted: number; droppedMicroBatches: number; roundsCompleted: number; bytesUp: number; bytesDown: number; rejected: Record<string, number>; killed: boolean; syncedFrom?: string; share?: number; reward?: number; peakRssBytes: number | null; longestStallMs: number | null; kernelsCompiled: number }[];
  /** Contributors the coordinator dropped for missing heartbeats. */
  heartbeatDrops: number;
  rewardUnit: string;
  /** The final weights (one file per stage) and the summary's JSON, kept after the swarm ends. */
  out: { dir: string; weights: string[] };
  bytesMoved: number;
  rejected: { coordinator: Record<string, number>; peers: Record<string, number> };
  seconds: number;
}

function intArg(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new SwarmUsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

export async function swarmCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      peers: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      kill: { type: 'string' },
      json: { type: 'boolean' },
      run: { type: 'string' },
      model: { type: 'string' },
      'inner-steps': { type: 'string' },
      batch: { type: 'string' },
      seq: { type: 'string' },
      lr: { type: 'string' },
      'round-seconds': { type: 'string' },
      software: { type: 'boolean' },
      'no-validate': { type: 'boolean' },
      stages: { type: 'string' },
      'micro-batches': { type: 'string' },
      activations: { type: 'string' },
      'kill-stage': { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new SwarmUsageError(m));
  if (values.help) {
    console.log(SWARM_USAGE);
    return 0;
  }
  const n = intArg('peers', values.peers, 1)!;
  const rounds = intArg('rounds', values.rounds, 1)!;
  let kill: { peer: number; round: number } | null = null;
  if (values.kill !== undefined) {
    const m = /^(\d+)@(\d+)$/.exec(values.kill);
    if (!m || Number(m[1]) >= n || Number(m[2]) >= rounds) throw new SwarmUsageError(`--kill takes K@r with K < --peers and r < --rounds, e.g. 1@1; got '${values.kill}'`);
    kill = { peer: Number(m[1]), round: Number(m[2]) };
  }
  const stageCount = intArg('stages', values.stages, 1) ?? 1;
  let killStage: { stage: number; round: number } | null = null;
  if (values['kill-stage'] !== undefined) {
    const m = /^(\d+)@(\d+)$/.exec(values['kill-stage']);
    if (!m || Number(m[1]) >= stageCount || Number(m[2]) >= rounds || stageCount === 1) throw new SwarmUsageError(`--kill-stage takes S@r with S < --stages (> 1) and r < --rounds, e.g. 1@1; got '${values['kill-stage']}'`);
    killStage = { stage: Number(m[1]), round: Number(m[2]) };
  }
  if (stageCount > n) throw new SwarmUsageError(`--stages ${stageCount} needs at least as many --peers (got ${n}): every stage needs a contributor`);
  // The demo's size: on 2 CPU cores without a GPU (SwiftShader) three contributors train 5
  // such rounds in a few minutes and the loss falls by about a nat (it was 10 steps of 4×64
  // tokens: 6–16 minutes).
  const overrides: Partial<RunConfig> = { run: `swarm-${process.pid}`, innerSteps: 5, batch: 4, seq: 32, warmup: 5, lr: 1e-2, plannedRounds: rounds, roundSeconds: 300 };
  const set = (k: keyof RunConfig, v: unknown) => v !== undefined && ((overrides as Record<string, unknown>)[k] = v);
  set('model', values.model);
  set('innerSteps', intArg('inner-steps', values['inner-steps'], 1));
  set('batch', intArg('batch', values.batch, 1));
  set('seq', intArg('seq', values.seq, 1));
  set('lr', values.lr === undefined ? undefined : Number(values.lr));
  set('roundSeconds', values['round-seconds'] === undefined ? undefined : Number(values['round-seconds']));
  if (stageCount > 1) {
    set('stages', stageCount);
    // Every starting contributor in the first round (a pipelined round takes nobody midway):
    // a quick first round of some would otherwise leave a stage with one replica.
    set('minMembers', n);
    set('microBatches', intArg('micro-batches', values['micro-batches'], 1) ?? 2);
    set('activations', values.activations);
  }
  const config = readRunFile(values.run, values.run ? {} : overrides);
  const json = values.json === true;
  const say = (line: string) => {
    if (!json) console.log(line);
  };
  const memory = memoryVerdict(n, config, values.force === true);
  if (memory.refuse) {
    console.error(`tessera swarm: ${memory.refuse}`);
    return 1;
  }
  if (memory.warning) console.error(`tessera swarm: warning: ${memory.warning}`);
  const outDir = values.out ?? join('.tessera', 'swarm', config.run);

  await cryptoReady();
  const work = mkdtempSync(join(tmpdir(), 'tessera-swarm-'));
  const t0 = performance.now();
  if (config.stages > 1 && values['no-validate'] !== true) say('the validator scores whole-model runs only: this pipelined run is relayed without rewards');
  const validate = values['no-validate'] !== true && config.stages === 1;
  const log = (l: string) => (values.verbose || !ROUTINE_LOG.test(l)) && say(`coordinator: ${l}`);
  // Exactly R rounds; with a kill the run goes on until the newcomer has trained one.
  const roundLimit = kill || killStage ? undefined : rounds;
  const started = await startCoordinator(config, { port: 0, stateDir: join(work, 'coordinator'), log, validate, software: values.software === true, roundLimit });
  const url = started.server.url;
  say(`coordinator at ${url}; ${n} contributors, ${rounds} rounds of ${config.innerSteps} steps (${config.model}); each contributor first compiles the model's kernels`);
  const peers: Peer[] = [];
  const hashes: Record<number, Record<string, string>> = {};
  const stageAt: Record<number, Record<string, number>> = {};
  const losses: Record<number, number[]> = {};
  let wake: () => void = () => {};

  const spawnPeer = (index: number): Peer => {
    const name = `peer-${index}`;
    const { key, mnemonic } = Hotkey.generate();
    const keyFile = join(work, `${name}.key`);
    writeFileSync(keyFile, mnemonic, { mode: 0o600 });
    const argv = [BIN, 'contribute', '--coordinator', url, '--key', keyFile, '--state', join(work, name), '--json', ...(values.software ? ['--software'] : [])];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const peer: Peer = { name, address: key.address, child, rounds: [], stage: 0, busy: [], rerouted: 0, dropped: 0, bytesUp: 0, bytesDown: 0, rejected: {}, killed: false, reached: -1, replacement: index >= n, peakRssBytes: null, longestStallMs: null, phase: '', kernelsCompiled: 0, exit: new Promise((r) => child.on('exit', (code) => r(code))) };
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as ContributorEvent;
        onEvent(peer, e);
      }
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      if (code && !peer.killed) say(`${name} exited with ${code}: ${err.trim().split('\n').slice(-3).join(' / ')}`);
      if (signal && !peer.killed) say(`${name} ended by ${signal}`);
      wake();
    });
    return peer;
  };

  const nameOf = (address: string) => peers.find((p) => p.address === address)?.name ?? address;
  let stageKilled = false;
  const onEvent = (peer: Peer, e: ContributorEvent) => {
    if (e.event === 'progress') {
      // Start-up, per peer: when compiling or syncing begins, and each phase's end (--verbose: every step).
      const final = e.total > 0 && e.done >= e.total;
      const begins = peer.phase !== e.phase && (e.phase === 'compile' || e.phase === 'sync');
      if ((final && e.phase !== 'peers') || begins || values.verbose) say(`${peer.name}: ${e.text}`);
      peer.phase = e.phase;
      if (e.phase === 'compile' && final) peer.kernelsCompiled += e.total;
    }
    if (e.event === 'stopped' && e.longestStallMs !== undefined) peer.longestStallMs = e.longestStallMs;
    if (e.event === 'checkpoint') say(`${peer.name}: uploaded the run's checkpoint after ${e.round} rounds (${(e.bytes / 1024).toFixed(0)} KiB)`);
    if (e.event === 'joined') {
      peer.stage = e.stage;
      if (e.stages > 1) say(`${peer.name}: placed in stage ${e.stage}`);
    }
    if (e.event === 'stage') {
      peer.stage = e.stage;
      say(`${peer.name}: moved to stage ${e.stage} (${e.reason})`);
    }
    if (e.event === 'step') {
      if (e.busy !== undefined) peer.busy.push(e.busy);
      peer.rerouted += e.rerouted ?? 0;
      peer.dropped += e.dropped ?? 0;
      if (killStage && !stageKilled && e.round === killStage.round && peer.stage === killStage.stage && e.step === 1 && !peer.killed) {
        stageKilled = true;
        say(`${peer.name}: stage-${peer.stage} peer killed in the middle of round ${e.round}`);
        peer.killed = true;
        peer.child.kill('SIGKILL');
        peers.push(spawnPeer(peers.length));
        return;
      }
    }
    if (e.event === 'synced') {
      peer.source = e.source;
      peer.reached = Math.max(peer.reached, e.round);
      say(`${peer.name}: got the weights after ${e.round} round${e.round === 1 ? '' : 's'} (from ${e.source})`);
    }
    if (e.event === 'exchange' && kill && peers[kill.peer] === peer && e.round === kill.round && !peer.killed) {
      say(`${peer.name}: killed while sending its round-${e.round} update`);
      peer.killed = true;
      peer.child.kill('SIGKILL');
      peers.push(spawnPeer(peers.length));
      return;
    }
    if (e.event === 'commit') {
      peer.bytesUp = e.bytesUp;
      peer.bytesDown = e.bytesDown;
      peer.rejected = e.rejected;
      peer.reached = Math.max(peer.reached, e.round + 1);
      if (e.trained) peer.rounds.push(e.round);
      (hashes[e.round] ??= {})[peer.name] = e.weightsHash;
      (stageAt[e.round] ??= {})[peer.name] = peer.stage;
      if (e.loss !== null) (losses[e.round] ??= []).push(e.loss);
      say(`${peer.name}: round ${e.round + 1} of ${rounds} ${e.trained ? `loss ${e.loss === null ? 'n/a' : e.loss.toFixed(4)}` : '(caught up)'}, combined ${e.included} updates${e.fetched ? ` (${e.fetched} fetched)` : ''}, weights ${e.weightsHash}`);
    }
    if (e.event === 'sent' && (values.verbose || e.failed)) say(`${peer.name}: round ${e.round + 1} update (${e.bytes} B) sent to the coordinator and ${e.delivered} peer(s)${e.failed ? `, ${e.failed} unreachable` : ''}`);
    if (e.event === 'link' && (values.verbose || !e.up)) say(`${peer.name}: ${e.up ? 'linked with' : 'link closed with'} ${nameOf(e.peer)}${e.up ? '' : `: ${e.reason}`}`);
    if (e.event === 'reward') {
      peer.standing = e.standing;
      say(`${peer.name}: round ${e.round + 1} scored: ${e.standing.totalReward.toFixed(2)} ${config.rewardUnit} in all (share ${(100 * e.standing.share).toFixed(1)}%, rank ${e.standing.rank} of ${e.standing.of})`);
    }
    if (e.event === 'warning') say(`${peer.name}: warning: ${e.text}`);
    if (e.event === 'rejected') say(`${peer.name}: dropped a message from ${e.from}: ${e.reason}`);
    wake();
  };

  for (let i = 0; i < n; i++) peers.push(spawnPeer(i));
  let failed = false;
  let finished = false;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    say('stopping: the contributors save their progress…');
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // Done when the coordinator has closed the last round and every live peer has applied it.
    await new Promise<void>((resolve) => {
      wake = () => {
        if (interrupted && !finished) {
          failed = finished = true;
          return resolve();
        }
        if (finished) return;
        const live = peers.filter((p) => !p.killed && p.child.exitCode === null);
        if (live.length === 0) {
          failed = true;
          finished = true;
          return resolve();
        }
        // A peer that joined after the last round has nothing to finish.
        // A replacement must have trained a round too (so it proves it caught up), within 20 more.
        const replacementsDone = live.every((p) => !p.replacement || p.rounds.length > 0) || started.coordinator.round >= rounds + 20;
        if (started.coordinator.round >= rounds && live.every((p) => p.reached >= rounds) && replacementsDone) {
          finished = true;
          resolve();
        }
      };
    });
    // Let the validator score the last round (it may trail the training by a round or two).
    const scoredBy = Date.now() + 120_000;
    while (!failed && started.ledger && started.ledger.lastRound < rounds - 1 && Date.now() < scoredBy) await new Promise((r) => setTimeout(r, 250));
    await new Promise((r) => setTimeout(r, 500)); // the last scores' messages reach the peers
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const p of peers) p.peakRssBytes = peakRss(p.child.pid);
    for (const p of peers) if (p.child.exitCode === null) p.child.kill('SIGINT');
    await Promise.all(peers.map((p) => Promise.race([p.exit, new Promise((r) => setTimeout(r, 20_000))])));
    for (const p of peers) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    const status = started.coordinator.status();
    const lastTrained = Math.max(-1, ...Object.keys(losses).map(Number));
    await started.stop();
    const weights = await keepFinalWeights(peers, config, work, outDir);
    const summary: SwarmSummary = {
      run: config.run,
      model: config.model,
      peers: n,
      rounds,
      lossPerRound: status.commits.filter((c) => c.round < Math.max(rounds, lastTrained + 1)).map((c) => {
        const l = losses[c.round] ?? [];
        return { round: c.round, loss: l.length ? l.reduce((a, b) => a + b, 0) / l.length : null, members: c.members, included: c.included.length, missing: c.missing.length };
      }),
      stages: config.stages,
      // replicas of one stage hold the same layers: their fingerprints must agree
      weightsIdentical: Object.entries(hashes).every(([round, h]) => {
        const byStage = new Map<number, Set<string>>();
        for (const [name, hash] of Object.entries(h)) {
          const stage = stageAt[Number(round)]?.[name] ?? 0;
          byStage.set(stage, (byStage.get(stage) ?? new Set()).add(hash));
        }
        return [...byStage.values()].every((s) => s.size === 1);
      }),
      weightsHashes: hashes,
      peersDetail: peers.map((p) => ({ name: p.name, address: p.address, stage: p.stage, busyFraction: p.busy.length ? p.busy.reduce((a, b) => a + b, 0) / p.busy.length : null, rerouted: p.rerouted, droppedMicroBatches: p.dropped, roundsCompleted: p.rounds.length, bytesUp: p.bytesUp, bytesDown: p.bytesDown, rejected: p.rejected, killed: p.killed, syncedFrom: p.source, share: p.standing?.share, reward: p.standing?.totalReward, peakRssBytes: p.peakRssBytes, longestStallMs: p.longestStallMs, kernelsCompiled: p.kernelsCompiled })),
      heartbeatDrops: status.heartbeatDrops,
      rewardUnit: config.rewardUnit,
      out: { dir: outDir, weights },
      bytesMoved: peers.reduce((s, p) => s + p.bytesUp, 0),
      rejected: {
        coordinator: status.rejected,
        peers: peers.reduce<Record<string, number>>((acc, p) => {
          for (const [k, v] of Object.entries(p.rejected)) acc[k] = (acc[k] ?? 0) + v;
          return acc;
        }, {}),
      },
      seconds: (performance.now() - t0) / 1000,
    };
    mkdirSync(outDir, { recursive: true });
    const summaryFile = join(outDir, 'summary.json');
    writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
    if (json) console.log(JSON.stringify({ event: 'summary', ...summary }));
    else {
      const refused = [...Object.values(summary.rejected.coordinator), ...Object.values(summary.rejected.peers)].reduce((a, b) => a + b, 0);
      console.log(humanSummary({ ...summary, refused, weightsFiles: weights, summaryFile, failed }));
    }
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

/**
 * Copies θ_start after the last round (parameters only) from a contributor's saved state into
 * `outDir`, one file per stage: weights.ckpt, or weights-stage<k>.ckpt in a pipelined run.
 * The peer that got furthest of each stage is taken (all replicas of a stage agree).
 */
async function keepFinalWeights(peers: Peer[], config: RunConfig, work: string, outDir: string): Promise<string[]> {
  const out = new FileCheckpointStore(outDir);
  const files: string[] = [];
  for (let stage = 0; stage < config.stages; stage++) {
    const holders = peers.filter((p) => p.stage === stage && !p.killed && p.reached >= 0).sort((a, b) => b.reached - a.reached);
    for (const p of holders) {
      const saved = await new FileCheckpointStore(join(work, p.name)).load(localCheckpointName(config.run, stage)).catch(() => null);
      if (!saved) continue;
      const tensors = new Map([...saved.tensors].filter(([name]) => name.startsWith('param/')));
      const name = config.stages === 1 ? 'weights' : `weights-stage${stage}`;
      await out.save(name, { ...saved, tensors, meta: { ...saved.meta, run: config.run, savedBy: 'tessera swarm', from: p.name } });
      files.push(join(outDir, `${name}.ckpt`));
      break;
    }
  }
  return files;
}
