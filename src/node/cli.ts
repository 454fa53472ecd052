// The `tessera` command line. Each subcommand lives in its own module; this file only parses
// arguments and turns failures into a message and an exit code.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NoGpuError, GpuLostError, KernelInputError } from '../gpu/errors.ts';
import { formatGpuReport, gpuReport } from './gpu-command.ts';
import { DATA_USAGE, DataUsageError, dataCommand } from './data-command.ts';
import { TRAIN_USAGE, TrainUsageError, trainCommand } from './train-command.ts';
import { COORDINATOR_USAGE, coordinatorCommand } from './coordinator-command.ts';
import { CONTRIBUTE_USAGE, ContributeUsageError, contributeCommand } from './contribute-command.ts';
import { SWARM_USAGE, SwarmUsageError, swarmCommand } from './swarm-command.ts';
import { WALLET_USAGE, WalletUsageError, walletCommand } from './wallet-command.ts';
import { chainCommand } from './chain-command.ts';
import { RunConfigError } from '../net/run-config.ts';
import { CoordinatorError } from '../net/signaling.ts';
import { SyncError } from '../net/sync.ts';
import { WalletError } from '../wallet/keys.ts';
import { ConfigError } from '../model/config.ts';
import { CheckpointError } from '../train/checkpoint.ts';
import { ShardError } from '../train/shards.ts';
import { TokenizerError } from '../train/tokenizer.ts';

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
        return await dataCommand(rest);
      case 'train':
        if (rest.includes('--help') || rest.includes('-h')) {
          console.log(TRAIN_USAGE);
          return 0;
        }
        return await trainCommand(rest);
      case 'coordinator':
        return await coordinatorCommand(rest);
      case 'contribute':
        return await contributeCommand(rest);
      case 'swarm':
        return await swarmCommand(rest);
      case 'wallet':
        return await walletCommand(rest);
      case 'chain':
        return await chainCommand(rest);
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
    return reportFailure(e);
  }
}

async function gpuCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, software: { type: 'boolean' } } });
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

/** Known failures get their message; anything else is a bug and keeps its stack. */
export function reportFailure(e: unknown): number {
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
