// `tessera simulate`: many simulated contributors in this process against the real
// coordinator (src/sim): a GPU-free look at how a run of N peers behaves — rounds, bytes per
// peer, control traffic, the coordinator's cost, the validator's lag — with faults injected.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PRESETS, type PresetName } from '../model/config.ts';
import { MAX_GATHER_K, MAX_NEIGHBOURS } from '../protocol/run-config.ts';
import { formatReport } from '../sim/report.ts';
import { DEFAULT_TEMPLATES, runSimulation, type SimulationOptions } from '../sim/simulation.ts';
import { CommandUsageError, parseCommandArgs } from './args.ts';
import { startCoordinator } from './coordinator-command.ts';
import { STORE_OPTIONS, STORE_USAGE, openStore, storeFromFlags } from './store-settings.ts';
import type { S3Settings } from '../coordinator/object-store.ts';

export const SIMULATE_USAGE = `usage:
  tessera simulate [--peers 100] [--model tiny] [--rounds 3] [--gather-k 20] [--neighbours 8]
                   [--up 20] [--down 100] [--rtt 80] [--loss 0] [--unlinkable 0]
                   [--train-ms 3000] [--join-storm S] [--leave F] [--kill-at R]
                   [--eval-ms 1070] [--round-seconds S] [--seed 1] [--templates 4] [--json FILE]
                   [--verbose] [--store disk|bucket|s3 [--store-config F]]
  Runs the real coordinator (in this process, on a temporary state folder) and --peers
  simulated contributors speaking its protocol over real WebSockets with real keys and signed
  updates of the --model preset's real size; training is a delay (--train-ms, ±20%), the
  validator's evaluation a modelled --eval-ms per evaluated update (default: tiny's measured
  time in the validator's thread on SwiftShader, test/bench/RESULTS.md). Links between peers are modelled,
  not opened: --up/--down Mbit/s, --rtt ms, --loss (fraction), --unlinkable (fraction of
  pairs that cannot link). Faults: --join-storm S (all peers join within S seconds),
  --leave F (a fraction F of each round's members leaves mid-round, rejoining after its
  commit), --kill-at R (the coordinator is stopped during round R and started again on its
  state). Updates: --templates T encoded by the real encoder, each peer's a copy of one with
  its codes rewritten (src/sim/README.md). --store bucket: the coordinator's updates go through
  a modelled S3 bucket by its real bucket intake (presigned PUT, \`uploaded\`, redirected reads;
  objects kept as recipes, regenerated and hash-checked on read); --store s3: a real
  S3-compatible bucket (below); default disk: through the coordinator. Prints a table per
  round; --json FILE writes the whole report.${STORE_USAGE}`;

/**
 * The validator's time per evaluated update, as measured: tiny in its worker thread on
 * SwiftShader, 1,067–1,302 ms (npm run bench -- validator-loop, results/validator-loop-tiny.json).
 */
const MEASURED_EVAL_MS = 1070;

const usage = (m: string) => new CommandUsageError('simulate', m, SIMULATE_USAGE);

function num(name: string, v: string | undefined, fallback: number, o: { min?: number; max?: number; int?: boolean; above?: number } = {}): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  const bad = v.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max) || (o.above !== undefined && n <= o.above);
  if (bad) {
    const range = o.above !== undefined ? `> ${o.above}` : `in [${o.min ?? '-∞'}, ${o.max ?? '∞'}]`;
    throw usage(`--${name} must be ${o.int ? 'an integer' : 'a number'} ${range}, got '${v}'`);
  }
  return n;
}

/** The simulation asked for, or null after --help printed the usage. */
export function parseSimulateArgs(args: string[]): { options: Omit<SimulationOptions, 'log' | 'bucket'>; json: string | undefined; store: S3Settings | null } | null {
  const { values } = parseCommandArgs({
    args,
    options: {
      peers: { type: 'string' }, model: { type: 'string' }, rounds: { type: 'string' }, 'gather-k': { type: 'string' }, neighbours: { type: 'string' },
      up: { type: 'string' }, down: { type: 'string' }, rtt: { type: 'string' }, loss: { type: 'string' }, unlinkable: { type: 'string' },
      'train-ms': { type: 'string' }, 'join-storm': { type: 'string' }, leave: { type: 'string' }, 'kill-at': { type: 'string' },
      'eval-ms': { type: 'string' }, 'round-seconds': { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' },
      templates: { type: 'string' }, verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...STORE_OPTIONS,
    },
  }, usage);
  if (values.help) {
    console.log(SIMULATE_USAGE);
    return null;
  }
  const model = values.model ?? 'tiny';
  if (!Object.hasOwn(PRESETS, model)) throw usage(`--model must be one of ${Object.keys(PRESETS).join(', ')}, got '${model}'`);
  // 'bucket' is the simulation's modelled bucket; 'disk' and 's3' are read as every command reads them.
  const modelled = values.store === 'bucket';
  if (modelled && values['store-config'] !== undefined) throw usage("--store-config goes with --store s3, not with the modelled --store bucket");
  const rounds = num('rounds', values.rounds, 3, { int: true, min: 1, max: 10_000 });
  const killAt = values['kill-at'] === undefined ? null : num('kill-at', values['kill-at'], 0, { int: true, min: 0, max: rounds - 1 });
  const roundSeconds = values['round-seconds'] === undefined ? undefined : num('round-seconds', values['round-seconds'], 0, { above: 0, max: 86_400 });
  return {
    json: values.json,
    store: modelled ? null : storeFromFlags(values),
    options: {
      peers: num('peers', values.peers, 100, { int: true, min: 1, max: 10_000 }),
      model: model as PresetName,
      rounds,
      gatherK: num('gather-k', values['gather-k'], 20, { int: true, min: 1, max: MAX_GATHER_K }),
      neighbours: num('neighbours', values.neighbours, 8, { int: true, min: 1, max: MAX_NEIGHBOURS }),
      link: {
        upMbps: num('up', values.up, 20, { above: 0 }),
        downMbps: num('down', values.down, 100, { above: 0 }),
        rttMs: num('rtt', values.rtt, 80, { min: 0, max: 10_000 }),
        loss: num('loss', values.loss, 0, { min: 0, max: 0.5 }),
      },
      unlinkable: num('unlinkable', values.unlinkable, 0, { min: 0, max: 1 }),
      trainMs: num('train-ms', values['train-ms'], 3000, { min: 0, max: 3_600_000 }),
      trainJitter: 0.2,
      joinStormS: num('join-storm', values['join-storm'], 0, { min: 0, max: 3600 }),
      leave: num('leave', values.leave, 0, { min: 0, max: 0.5 }),
      killAt,
      evalMs: num('eval-ms', values['eval-ms'], MEASURED_EVAL_MS, { min: 0, max: 600_000 }),
      ...(roundSeconds === undefined ? {} : { roundSeconds }),
      seed: num('seed', values.seed, 1, { int: true, min: 0, max: 2 ** 32 - 1 }),
      store: modelled ? 'bucket' : 'disk',
      templates: num('templates', values.templates, DEFAULT_TEMPLATES, { int: true, min: 1, max: 64 }),
      verbose: values.verbose === true,
    },
  };
}

export async function simulateCommand(args: string[]): Promise<number> {
  const parsed = parseSimulateArgs(args);
  if (!parsed) return 0;
  const log = (line: string) => console.log(line);
  const bucket = await openStore(parsed.store, log);
  const report = await runSimulation({ ...parsed.options, bucket, log }, startCoordinator);
  bucket?.destroy();
  console.log(formatReport(report));
  if (parsed.json) {
    mkdirSync(dirname(parsed.json), { recursive: true });
    writeFileSync(parsed.json, `${JSON.stringify(report, null, 1)}\n`);
    console.log(`report written to ${parsed.json}`);
  }
  const s = report.summary;
  return s.roundsClosed === parsed.options.rounds && s.fingerprintsEqual ? 0 : 1;
}
