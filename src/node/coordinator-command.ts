// `tessera coordinator [--port 8787] [--run run.json] [--state DIR]`: serves one run —
// signaling, rounds, the data shard, checkpoints — until Ctrl-C. State under --state
// survives a restart, which resumes the run at its next round.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Coordinator } from '../coordinator/coordinator.ts';
import { serveCoordinator, type CoordinatorServer } from '../coordinator/server.ts';
import { CoordinatorStore } from '../coordinator/state-store.ts';
import { RunConfigError, parseRunConfig, type RunConfig } from '../net/run-config.ts';
import { encodeShard } from '../train/shards.ts';
import { cryptoReady } from '../wallet/keys.ts';
import { loadOrBuildShard } from './corpus.ts';

export const COORDINATOR_USAGE = `usage:
  tessera coordinator [--port 8787] [--host 127.0.0.1] [--run run.json] [--state DIR] [--data shard.bin]
  Serves a training run: contributors connect to ws://HOST:PORT/ws. --run names a JSON file
  of run settings (see README: model, innerSteps, batch, seq, roundSeconds, …); without it,
  the defaults (model tiny). State is kept in --state (default .tessera/coordinator/<run>).`;

export function readRunFile(path: string | undefined, overrides: Partial<RunConfig> = {}): RunConfig {
  let raw: Record<string, unknown> = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new RunConfigError('(file)', `cannot be read from ${path}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new RunConfigError('(file)', `${path} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return parseRunConfig({ ...raw, ...overrides });
}

export interface StartedCoordinator {
  coordinator: Coordinator;
  server: CoordinatorServer;
  stop(): Promise<void>;
}

/** Starts a coordinator with its HTTP/WebSocket server (the swarm command uses it in-process). */
export async function startCoordinator(config: RunConfig, o: { port: number; host?: string; stateDir?: string; data?: string; log: (line: string) => void }): Promise<StartedCoordinator> {
  await cryptoReady();
  const shard = loadOrBuildShard({ tokenizer: config.tokenizer, path: o.data, log: o.log });
  const store = new CoordinatorStore(o.stateDir ?? join('.tessera', 'coordinator', config.run));
  const coordinator = new Coordinator(config, store, { log: o.log });
  const server = await serveCoordinator(coordinator, { port: o.port, host: o.host, shard: encodeShard(shard.tokens, shard.meta), log: o.log });
  coordinator.start();
  return {
    coordinator,
    server,
    async stop() {
      coordinator.stop();
      await server.close();
    },
  };
}

export async function coordinatorCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      run: { type: 'string' },
      state: { type: 'string' },
      data: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(COORDINATOR_USAGE);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RunConfigError('--port', `must be a port number, got '${values.port}'`);
  const config = readRunFile(values.run);
  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  const c = await startCoordinator(config, { port, host: values.host, stateDir: values.state, data: values.data, log });
  log(`run '${config.run}' (${config.model}, H=${config.innerSteps}) at round ${c.coordinator.round}; contributors: tessera contribute --coordinator ${c.server.url}`);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  log('stopping');
  await c.stop();
  return 0;
}
