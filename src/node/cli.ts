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
    return await reportFailure(e);
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

/** The classes (and usage texts) reportFailure recognises, from the modules that throw them. */
async function knownFailures() {
  const [gpu, data, train, coordinator, contribute, swarm, wallet, runConfig, signaling, sync, keys, config, checkpoint, shards, tokenizer] = await Promise.all([
    import('../gpu/errors.ts'),
    import('./data-command.ts'),
    import('./train-command.ts'),
    import('./coordinator-command.ts'),
    import('./contribute-command.ts'),
    import('./swarm-command.ts'),
    import('./wallet-command.ts'),
    import('../net/run-config.ts'),
    import('../net/signaling.ts'),
    import('../net/sync.ts'),
    import('../wallet/keys.ts'),
    import('../model/config.ts'),
    import('../train/checkpoint.ts'),
    import('../train/shards.ts'),
    import('../train/tokenizer.ts'),
  ]);
  return { ...gpu, ...data, ...train, ...coordinator, ...contribute, ...swarm, ...wallet, ...runConfig, ...signaling, ...sync, ...keys, ...config, ...checkpoint, ...shards, ...tokenizer };
}

/** The npm package a failed import could not find (dependencies not installed), or null. */
function missingPackage(e: unknown): string | null {
  if ((e as { code?: string } | null)?.code !== 'ERR_MODULE_NOT_FOUND') return null;
  return /Cannot find package '([^']+)'/.exec((e as Error).message)?.[1] ?? null;
}

/** Known failures get their message; anything else is a bug and keeps its stack. */
export async function reportFailure(e: unknown): Promise<number> {
  if (e instanceof CommandUsageError) {
    console.error(`tessera ${e.command}: ${e.message}\n\n${e.usage}`);
    return 2;
  }
  const missing = missingPackage(e);
  if (missing) {
    console.error(`tessera: the dependency ${missing} is not installed; run \`npm install\` in this folder first.`);
    return 1;
  }
  const {
    DATA_USAGE, DataUsageError, TRAIN_USAGE, TrainUsageError, CONTRIBUTE_USAGE, ContributeUsageError, SWARM_USAGE, SwarmUsageError,
    WALLET_USAGE, WalletUsageError, COORDINATOR_USAGE, RunConfigError, CoordinatorError, SyncError, WalletError, NoGpuError,
    GpuLostError, KernelInputError, ShardError, TokenizerError, ConfigError, CheckpointError,
  } = await knownFailures();
  if (e instanceof DataUsageError) {
    console.error(`tessera data: ${e.message}\n\n${DATA_USAGE}`);
    return 2;
  }
  if (e instanceof TrainUsageError) {
    console.error(`tessera train: ${e.message}\n\n${TRAIN_USAGE}`);
    return 2;
  }
  if (e instanceof ContributeUsageError) {
    console.error(`tessera contribute: ${e.message}\n\n${CONTRIBUTE_USAGE}`);
    return 2;
  }
  if (e instanceof SwarmUsageError) {
    console.error(`tessera swarm: ${e.message}\n\n${SWARM_USAGE}`);
    return 2;
  }
  if (e instanceof WalletUsageError) {
    console.error(`tessera wallet: ${e.message}\n\n${WALLET_USAGE}`);
    return 2;
  }
  if (e instanceof RunConfigError) {
    console.error(`tessera: ${e.message}\n\n${COORDINATOR_USAGE}`);
    return 2;
  }
  if (
    e instanceof CoordinatorError ||
    e instanceof SyncError ||
    e instanceof WalletError ||
    e instanceof NoGpuError ||
    e instanceof GpuLostError ||
    e instanceof KernelInputError ||
    e instanceof ShardError ||
    e instanceof TokenizerError ||
    e instanceof ConfigError ||
    e instanceof CheckpointError
  ) {
    console.error(`tessera: ${e.message}`);
    return 1;
  }
  if (e instanceof Error && e.name === 'TypeError' && /parseArgs|Unknown option|ERR_PARSE_ARGS/.test(`${(e as { code?: string }).code} ${e.message}`)) {
    console.error(`tessera: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  console.error(e);
  return 1;
}
