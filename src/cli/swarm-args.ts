// The command line of `tessera swarm` (SWARM_USAGE) turned into what to run: how many
// contributors and rounds, which one to kill and when, and the run config (the demo's size
// unless --run names a file or flags change it). Every mistake is a SwarmUsageError.
import type { RunConfig } from '../protocol/run-config.ts';
import { parseCommandArgs } from './args.ts';
import { readRunFile } from './coordinator-command.ts';
import { TURN_OPTIONS, TURN_USAGE, turnFromFlags, type TurnGrants } from './turn-flags.ts';
import { STORE_OPTIONS, STORE_USAGE, storeFromFlags } from './store-settings.ts';
import type { S3Settings } from '../coordinator/object-store.ts';

export const SWARM_USAGE = `usage:
  tessera swarm --peers N --rounds R [--kill K@r] [--json] [--out DIR] [--verbose] [--force] [--run run.json] [--no-validate]
                [--model tiny] [--inner-steps H] [--batch B] [--seq T] [--lr LR] [--round-seconds S]
                [--gather-k K] [--neighbours D]
                [--stages S [--micro-batches M] [--activations f16|f32|int8] [--kill-stage S@r]]
                [--host ADDR] [--peer-netns NS[,NS…]] [--turn URL[,URL…] --turn-secret-file FILE [--turn-ttl S]]
                [--store disk|s3 [--store-config F]]
  Runs a coordinator and N contributor processes on loopback for exactly R rounds and prints
  a summary: the loss from the first round to the last, each peer's rounds, reward and bytes.
  The final weights stay in --out DIR (default .tessera/swarm/<run>/, with summary.json);
  --json prints the summary as one JSON line instead. --verbose: every coordinator log line.
  Each contributor process takes up to ~1.6 GB (without a GPU, while compiling its kernels):
  a swarm that would not fit in free memory is refused (--force starts it anyway).
  --kill K@r: kill contributor K (0-based) while it sends its round-r update, then start a
  new contributor that joins and catches up; the run goes on until that one has trained a
  round too (at most 20 rounds more).
  --gather-k K: each commit names at most K updates (every replica gathers those, from
  neighbours or the coordinator's store); --neighbours D: WebRTC links per contributor.
  --stages S: split the model into S pipeline stages held by different contributors (the
  coordinator places them); --kill-stage S@r kills a peer of stage S during round r's
  inner steps (its micro-batches are re-routed) and starts a new one, which the coordinator
  places in the stage that needs it. Pipelined runs are not scored by the validator yet.
  --host ADDR: the coordinator listens on ADDR (default 127.0.0.1); --peer-netns: contributor i
  runs in network namespace NS number i (ip netns exec; root), e.g. each behind its own NAT.
${TURN_USAGE}${STORE_USAGE}`;

export class SwarmUsageError extends Error {
  override name = 'SwarmUsageError';
}

/** What `tessera swarm` was asked to run. */
export interface SwarmPlan {
  /** N: contributor processes started. */
  peers: number;
  /** R: rounds to run. */
  rounds: number;
  /** --kill K@r: contributor K killed while it sends its round-r update. */
  kill: { peer: number; round: number } | null;
  /** --kill-stage S@r: a peer of stage S killed during round r's inner steps. */
  killStage: { stage: number; round: number } | null;
  config: RunConfig;
  json: boolean;
  verbose: boolean;
  software: boolean;
  force: boolean;
  noValidate: boolean;
  /** --out DIR, when given. */
  out: string | undefined;
  /** --host: where the coordinator listens and the contributors reach it. */
  host: string;
  /** --peer-netns: the network namespace of each contributor (empty: this one). */
  peerNetns: string[];
  /** --turn: short-lived TURN credentials for each member. */
  turn: TurnGrants | null;
  /** --store s3: the bucket's settings (null: the coordinator's state folder). */
  store: S3Settings | null;
}

function intArg(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new SwarmUsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

/** The plan, or null after --help printed the usage. */
export function parseSwarmArgs(args: string[]): SwarmPlan | null {
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
      'gather-k': { type: 'string' },
      neighbours: { type: 'string' },
      software: { type: 'boolean' },
      'no-validate': { type: 'boolean' },
      stages: { type: 'string' },
      'micro-batches': { type: 'string' },
      activations: { type: 'string' },
      'kill-stage': { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      verbose: { type: 'boolean' },
      host: { type: 'string', default: '127.0.0.1' },
      'peer-netns': { type: 'string' },
      ...TURN_OPTIONS,
      ...STORE_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new SwarmUsageError(m));
  if (values.help) {
    console.log(SWARM_USAGE);
    return null;
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
  set('gatherK', intArg('gather-k', values['gather-k'], 1));
  set('neighbours', intArg('neighbours', values.neighbours, 1));
  if (stageCount > 1) {
    set('stages', stageCount);
    // Every starting contributor in the first round (a pipelined round takes nobody midway):
    // a quick first round of some would otherwise leave a stage with one replica.
    set('minMembers', n);
    set('microBatches', intArg('micro-batches', values['micro-batches'], 1) ?? 2);
    set('activations', values.activations);
  }
  const config = readRunFile(values.run, values.run ? {} : overrides);
  const peerNetns = values['peer-netns']?.split(',').map((ns) => ns.trim()) ?? [];
  if (peerNetns.some((ns) => !/^[A-Za-z0-9_.-]{1,64}$/.test(ns))) throw new SwarmUsageError(`--peer-netns takes namespace names separated by commas, got '${values['peer-netns']}'`);
  const turn = turnFromFlags(values, (m) => new SwarmUsageError(m));
  const store = storeFromFlags(values);
  return {
    host: values.host, peerNetns, turn, store,
    peers: n, rounds, kill, killStage, config, json: values.json === true, verbose: values.verbose === true, software: values.software === true,
    force: values.force === true, noValidate: values['no-validate'] === true, out: values.out,
  };
}
