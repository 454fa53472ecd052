// `tessera swarm --peers N --rounds R [--kill K@r] [--json]`: a whole run on this machine — a
// coordinator in this process and N `tessera contribute` processes on loopback, each with
// its own key and GPU device. --kill K@r kills contributor K (SIGKILL) while it sends its
// round-r update and starts a fresh contributor in its place. Ends with a summary: loss per
// round, rounds completed by each peer, bytes moved, messages rejected, weight fingerprints.
// --stages S makes it a pipelined run: the coordinator places each contributor in a stage,
// activations flow between stages peer to peer, and each stage's replicas sync with
// SparseLoCo; --kill-stage S@r kills a peer of stage S in the middle of round r's steps.
//
// The command line is swarm-args.ts; the record of each process, the summary and the final
// weights are swarm-summary.ts; the words and the memory check are swarm-report.ts. This file
// runs the swarm: the coordinator, the processes, their events, the end.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContributorEvent } from '../contributor/events.ts';
import { Hotkey, cryptoReady } from '../wallet/keys.ts';
import { startCoordinator } from './coordinator-command.ts';
import { openStore } from './store-settings.ts';
import { parseSwarmArgs } from './swarm-args.ts';
import { humanSummary, memoryVerdict, peakRss } from './swarm-report.ts';
import { LinkBook, linksLine } from './swarm-links.ts';
import { PATH_WORDS } from '../net/link-path.ts';
import { heldText } from './contribute-output.ts';
import { keepFinalWeights, newGatherCounts, summarize, type PeerProcess, type RoundRecord } from './swarm-summary.ts';

export { SWARM_USAGE, SwarmUsageError } from './swarm-args.ts';
export type { SwarmSummary } from './swarm-summary.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

/** Coordinator log lines `tessera swarm` shows only with --verbose: what its own lines already say. */
const ROUTINE_LOG = /^(joined: |round \d+ (started|closed)|validator: round \d+ \w{8} |checkpoint of round )/;

export async function swarmCommand(args: string[]): Promise<number> {
  const plan = parseSwarmArgs(args);
  if (!plan) return 0; // --help
  const { peers: n, rounds, kill, killStage, config, json } = plan;
  const say = (line: string) => {
    if (!json) console.log(line);
  };
  const memory = memoryVerdict(n, config, plan.force);
  if (memory.refuse) {
    console.error(`tessera swarm: ${memory.refuse}`);
    return 1;
  }
  if (memory.warning) console.error(`tessera swarm: warning: ${memory.warning}`);
  const outDir = plan.out ?? join('.tessera', 'swarm', config.run);

  await cryptoReady();
  const work = mkdtempSync(join(tmpdir(), 'tessera-swarm-'));
  const t0 = performance.now();
  if (config.stages > 1 && !plan.noValidate) say('the validator scores whole-model runs only: this pipelined run is relayed without rewards');
  const validate = !plan.noValidate && config.stages === 1;
  const log = (l: string) => (plan.verbose || !ROUTINE_LOG.test(l)) && say(`coordinator: ${l}`);
  // Exactly R rounds; with a kill the run goes on until the newcomer has trained one.
  const roundLimit = kill || killStage ? undefined : rounds;
  const bucket = await openStore(plan.store, log);
  // A demo on one machine: its validator scores every update of every round, unpaced (the run
  // waits for it at the end), so each contributor's reward shows; a coordinator of a real run
  // paces its scoring to the rounds and samples.
  const started = await startCoordinator(config, { port: 0, host: plan.host, stateDir: join(work, 'coordinator'), log, validate, software: plan.software, roundLimit, turn: plan.turn, bucket, unpacedScoring: true });
  const url = started.server.url;
  say(`coordinator at ${url}; ${n} contributors, ${rounds} rounds of ${config.innerSteps} steps (${config.model}); each contributor first compiles the model's kernels`);
  const peers: PeerProcess[] = [];
  const record: RoundRecord = { losses: {}, hashes: {}, stageAt: {} };
  const { hashes, stageAt, losses } = record;
  let wake: () => void = () => {};
  const links = new LinkBook();

  const spawnPeer = (index: number): PeerProcess => {
    const name = `peer-${index}`;
    const { key, mnemonic } = Hotkey.generate();
    const keyFile = join(work, `${name}.key`);
    writeFileSync(keyFile, mnemonic, { mode: 0o600 });
    const argv = [BIN, 'contribute', '--coordinator', url, '--key', keyFile, '--state', join(work, name), '--json', ...(plan.software ? ['--software'] : [])];
    // --peer-netns: contributor i runs in network namespace i (behind its own NAT, say).
    const netns = plan.peerNetns[index % Math.max(1, plan.peerNetns.length)];
    const child = netns ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const peer: PeerProcess = { name, address: key.address, child, rounds: [], stage: 0, busy: [], rerouted: 0, dropped: 0, bytesUp: 0, bytesDown: 0, gathered: newGatherCounts(), rejected: {}, killed: false, reached: -1, replacement: index >= n, peakRssBytes: null, longestStallMs: null, phase: '', kernelsCompiled: 0, exit: new Promise((r) => child.on('exit', (code) => r(code))) };
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
  const onEvent = (peer: PeerProcess, e: ContributorEvent) => {
    if (e.event === 'progress') {
      // Start-up, per peer: when compiling or syncing begins, and each phase's end (--verbose: every step).
      const final = e.total > 0 && e.done >= e.total;
      const begins = peer.phase !== e.phase && (e.phase === 'compile' || e.phase === 'sync');
      if ((final && e.phase !== 'peers') || begins || plan.verbose) say(`${peer.name}: ${e.text}`);
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
    if (e.event === 'exchange') peer.gathered.maxUpdateBytes = Math.max(peer.gathered.maxUpdateBytes, e.bytes);
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
      const g = peer.gathered;
      g.fromPeers += e.fromPeers;
      g.fromStore += e.fetched;
      g.served += e.served ?? 0;
      g.maxRoundBytesUp = Math.max(g.maxRoundBytesUp, e.roundBytesUp ?? 0);
      g.maxRoundBytesDown = Math.max(g.maxRoundBytesDown, e.roundBytesDown ?? 0);
      g.maxHeld = Math.max(g.maxHeld, e.held ?? 0);
      peer.rejected = e.rejected;
      peer.reached = Math.max(peer.reached, e.round + 1);
      if (e.trained) peer.rounds.push(e.round);
      (hashes[e.round] ??= {})[peer.name] = e.weightsHash;
      (stageAt[e.round] ??= {})[peer.name] = peer.stage;
      if (e.loss !== null) (losses[e.round] ??= []).push(e.loss);
      say(`${peer.name}: round ${e.round + 1} of ${rounds} ${e.trained ? `loss ${e.loss === null ? 'n/a' : e.loss.toFixed(4)}` : '(caught up)'}, combined ${e.included}${e.delivered !== undefined ? ` of ${e.delivered}` : ''} updates (${e.fromPeers} from peers, ${e.fetched} from the store), weights ${e.weightsHash}`);
    }
    if (e.event === 'sent' && (plan.verbose || e.failed)) say(`${peer.name}: round ${e.round + 1} update (${e.bytes} B) accepted into the run's store${plan.store ? ' (its bucket)' : ''}, offered to ${e.delivered} neighbour(s)`);
    if (e.event === 'link') links.note(peer.address, e);
    // How each link travels is told once, by the peer that dialled (the smaller address).
    const dialled = e.event === 'link' && e.up && e.path !== undefined && peer.address < e.peer;
    if (e.event === 'link' && (plan.verbose || !e.up || dialled)) say(`${peer.name}: ${e.up ? 'linked with' : 'link closed with'} ${nameOf(e.peer)}${e.up ? (e.path ? `, ${PATH_WORDS[e.path]}${e.route ? ` (${e.route})` : ''}` : '') : `: ${e.reason}`}`);
    if (e.event === 'path') {
      links.notePath(peer.address, e);
      if (plan.verbose || peer.address < e.peer) say(`${peer.name}: the link with ${nameOf(e.peer)} now goes ${PATH_WORDS[e.path]} (${e.route})`);
    }
    if (e.event === 'reward') {
      peer.standing = e.standing;
      say(`${peer.name}: round ${e.round + 1} scored: ${e.standing.totalReward.toFixed(2)} ${config.rewardUnit} in all${heldText(e.standing, config.rewardUnit)} (share ${(100 * e.standing.share).toFixed(1)}%, rank ${e.standing.rank} of ${e.standing.of})`);
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
    const summary = summarize({ config, peers: n, rounds, processes: peers, record, status, lastTrained, out: { dir: outDir, weights }, seconds: (performance.now() - t0) / 1000, links: links.tally(nameOf) });
    mkdirSync(outDir, { recursive: true });
    const summaryFile = join(outDir, 'summary.json');
    writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
    if (json) console.log(JSON.stringify({ event: 'summary', ...summary }));
    else {
      const refused = [...Object.values(summary.rejected.coordinator), ...Object.values(summary.rejected.peers)].reduce((a, b) => a + b, 0);
      console.log(humanSummary({ ...summary, refused, weightsFiles: weights, summaryFile, failed, linksLine: linksLine(summary.links) }));
    }
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}
