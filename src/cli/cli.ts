// The `tessera` command line. Each subcommand lives in its own module; this file only parses
// arguments and turns failures into a message and an exit code.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandUsageError, parseCommandArgs } from './args.ts';
// Each subcommand's module is imported when it runs, so a start loads only its own command
// (`tessera --help` none of them: no WebGPU, wallet crypto or WebRTC), and the classes of
// known failures load only after a failure (reportFailure).

const USAGE = `tessera — train a shared language model on your GPU

usage:
  tessera gpu [--json] [--software]    show the WebGPU adapter, its features and limits
  tessera bench <name> [options]       run a benchmark from test/bench (kernels, …)
  tessera data build|info [options]    build a token shard from a corpus; check one
  tessera train --model tiny [options] train the whole model locally (tessera train --help)
  tessera coordinator [--port 8787]    serve a training run (tessera coordinator --help)
  tessera contribute --coordinator URL join a run and train on this GPU (tessera contribute --help)
  tessera swarm --peers N --rounds R   a coordinator and N contributors on this machine
  tessera simulate --peers N           N simulated contributors (no GPU) against a real coordinator (tessera simulate --help)
  tessera wallet create|import|show    your hotkey, encrypted in .tessera/wallet.json (tessera wallet --help)
  tessera chain --subtensor URL --netuid N  your hotkey's registration, incentive, emission on a subnet
  tessera help                         this text

--software uses SwiftShader (CPU) even when a GPU is present.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'gpu':
        return await gpuCommand(rest);
      case 'bench':
        return await benchCommand(rest);
      case 'data':
        return await (await import('./data-command.ts')).dataCommand(rest);
      case 'train': {
        const train = await import('./train-command.ts');
        if (rest.includes('--help') || rest.includes('-h')) {
          console.log(train.TRAIN_USAGE);
          return 0;
        }
        return await train.trainCommand(rest);
      }
      case 'coordinator':
        return await (await import('./coordinator-command.ts')).coordinatorCommand(rest);
      case 'contribute':
        return await (await import('./contribute-command.ts')).contributeCommand(rest);
      case 'swarm':
        return await (await import('./swarm-command.ts')).swarmCommand(rest);
      case 'simulate':
        return await (await import('./simulate-command.ts')).simulateCommand(rest);
      case 'wallet':
        return await (await import('./wallet-command.ts')).walletCommand(rest);
      case 'chain':
        return await (await import('./chain-command.ts')).chainCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return 0;
      default:
        console.error(`tessera: unknown command '${command}'.\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    return await reportFailure(e, command);
  }
}

const GPU_USAGE = `usage:
  tessera gpu [--json] [--software]
  Shows the WebGPU adapter, its features and limits. --software uses SwiftShader (CPU) even
  when a GPU is present; --json prints the report as JSON.`;

async function gpuCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({ args, options: { json: { type: 'boolean' }, software: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }, (m) => new CommandUsageError('gpu', m, GPU_USAGE));
  if (values.help) {
    console.log(GPU_USAGE);
    return 0;
  }
  const { formatGpuReport, gpuReport } = await import('./gpu-command.ts');
  const report = await gpuReport({ adapter: values.software ? 'software' : 'auto', f16: true });
  console.log(values.json ? JSON.stringify(report, null, 2) : formatGpuReport(report));
  return 0;
}

async function benchCommand(args: string[]): Promise<number> {
  // Benchmarks live with the tests (test/bench) and ship with a source checkout.
  const runner = new URL('../../test/bench/run.ts', import.meta.url);
  if (!existsSync(fileURLToPath(runner))) {
    console.error('tessera bench: the benchmarks ship with a source checkout (test/bench); run it from there.');
    return 2;
  }
  const { main: benchMain } = (await import(runner.href)) as { main: (a: string[]) => Promise<number> };
  return benchMain(args);
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Each command's own usage mistakes and its usage text, from its module (loaded when it ran). */
const COMMAND_USAGE: Record<string, () => Promise<[ErrorClass, string]>> = {
  data: async () => { const m = await import('./data-command.ts'); return [m.DataUsageError, m.DATA_USAGE]; },
  train: async () => { const m = await import('./train-command.ts'); return [m.TrainUsageError, m.TRAIN_USAGE]; },
  contribute: async () => { const m = await import('./contribute-command.ts'); return [m.ContributeUsageError, m.CONTRIBUTE_USAGE]; },
  swarm: async () => { const m = await import('./swarm-command.ts'); return [m.SwarmUsageError, m.SWARM_USAGE]; },
  wallet: async () => { const m = await import('./wallet-command.ts'); return [m.WalletUsageError, m.WALLET_USAGE]; },
};

/**
 * Failures a person can act on, printed as their message alone. Loaded only after a failure,
 * lightest first, so that a missing GPU or a bad file is told without
 * loading WebRTC, WebGPU or the wallet's crypto first (importing a module the failed command
 * already loaded costs nothing).
 */
const PLAIN_FAILURES: Array<() => Promise<ErrorClass[]>> = [
  async () => {
    const [gpu, config, shards, checkpoint] = await Promise.all([import('../gpu/errors.ts'), import('../model/config.ts'), import('../train/shards.ts'), import('../train/checkpoint.ts')]);
    return [gpu.NoGpuError, gpu.GpuLostError, gpu.KernelInputError, config.ConfigError, shards.ShardError, checkpoint.CheckpointError];
  },
  async () => {
    const [signaling, sync, keys, tokenizer] = await Promise.all([import('../net/signaling.ts'), import('../contributor/sync.ts'), import('../wallet/keys.ts'), import('../train/tokenizer.ts')]);
    return [signaling.CoordinatorError, sync.SyncError, keys.WalletError, tokenizer.TokenizerError];
  },
];

/** Prints a usage mistake of `command` with its usage text; false when `e` is none. */
async function isUsageMistake(e: unknown, command: string): Promise<boolean> {
  const usage = await COMMAND_USAGE[command]?.();
  if (!usage || !(e instanceof usage[0])) return false;
  console.error(`tessera ${command}: ${e.message}\n\n${usage[1]}`);
  return true;
}

/** The npm package a failed import could not find (dependencies not installed), or null. */
function missingPackage(e: unknown): string | null {
  if ((e as { code?: string } | null)?.code !== 'ERR_MODULE_NOT_FOUND') return null;
  return /Cannot find package '([^']+)'/.exec((e as Error).message)?.[1] ?? null;
}

/** Known failures get their message; anything else is a bug and keeps its stack. */
export async function reportFailure(e: unknown, command?: string): Promise<number> {
  if (e instanceof CommandUsageError) {
    console.error(`tessera ${e.command}: ${e.message}\n\n${e.usage}`);
    return 2;
  }
  // A --store setting (any command that starts a coordinator): the same words as `tessera coordinator`'s.
  const { StoreSettingsError } = await import('./store-settings.ts');
  if (e instanceof StoreSettingsError) {
    console.error(`tessera ${command ?? ''}: ${e.message}`.replace(/^tessera : /, 'tessera: '));
    return 1;
  }
  const missing = missingPackage(e);
  if (missing) {
    console.error(`tessera: the dependency ${missing} is not installed; run \`npm install\` in this folder first.`);
    return 1;
  }
  if (command && (await isUsageMistake(e, command))) return 2;
  const { RunConfigError } = await import('../protocol/run-config.ts');
  if (e instanceof RunConfigError) {
    const { COORDINATOR_USAGE } = await import('./coordinator-command.ts');
    console.error(`tessera: ${e.message}\n\n${COORDINATOR_USAGE}`);
    return 2;
  }
  for (const load of PLAIN_FAILURES) {
    if ((await load()).some((known) => e instanceof known)) {
      console.error(`tessera: ${(e as Error).message}`);
      return 1;
    }
  }
  for (const other of Object.keys(COMMAND_USAGE)) if (other !== command && (await isUsageMistake(e, other))) return 2;
  if (e instanceof Error && e.name === 'TypeError' && /parseArgs|Unknown option|ERR_PARSE_ARGS/.test(`${(e as { code?: string }).code} ${e.message}`)) {
    console.error(`tessera: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  console.error(e);
  return 1;
}
