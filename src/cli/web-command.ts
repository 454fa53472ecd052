// `npm run web`: the contributor page (renderer/, built by Vite into dist/web) on
// http://127.0.0.1:8780 with a local coordinator embedded beside it, so one person can try the
// whole loop alone; a second tab (with a wallet of its own) joins the same run. The page
// learns the coordinator's address from GET /local.json. Two ports: the coordinator's server
// is its own (WebSocket at /ws, HTTP for shards and updates, CORS open), the page's is a
// plain static server.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandUsageError, parseCommandArgs } from './args.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { vulkanEnvFix } from '../../bin/vulkan-env.mjs';
import { readRunFile, startCoordinator, type StartedCoordinator } from './coordinator-command.ts';
import { STORE_OPTIONS, STORE_USAGE, StoreSettingsError, openStore, storeFromFlags } from './store-settings.ts';
import type { ObjectStore } from '../coordinator/object-store.ts';

export const WEB_USAGE = `usage:
  npm run web [-- --port 8780] [--host 127.0.0.1] [--run run.json] [--state DIR] [--no-validate] [--software]
              [--store disk|s3 [--store-config F]]
  Builds the contributor page and serves it at http://HOST:PORT with a local coordinator
  (the tiny model, short rounds, unless --run names a run file). Open it in Chrome or Edge
  (WebGPU); a second tab, given a wallet of its own, joins the same run. State is kept
  in --state (default .tessera/web).${STORE_USAGE}`;

/** The local run: the tiny model and rounds short enough for a laptop (or a CPU) to finish. */
export const LOCAL_RUN: Partial<RunConfig> = {
  run: 'local-web',
  name: 'Local run (npm run web)',
  description: 'A run on this computer, started by npm run web: the tabs you open train the tiny model (2 layers, 124 thousand parameters) together, for trying Tessera out. Its coordinator and its points stay on this computer.',
  owner: 'you',
  model: 'tiny',
  innerSteps: 3,
  batch: 2,
  seq: 32,
  roundSeconds: 120,
  minMembers: 1,
  plannedRounds: 1000,
  warmup: 3,
  // A checkpoint is the whole model (~0.5 MiB here) against ~4 KiB for a round's update, and
  // rounds take a second or two on a GPU: every 50 rounds keeps checkpoints a small part of
  // the upload, and a newcomer replays at most 49 small commits after it.
  checkpointEvery: 50,
  // Its members are this computer's own tabs: no hostile member to hold rewards back from (a
  // run's escrow, coordinator/escrow.ts), and a first reward 5 rounds late would only puzzle.
  rewardEscrowRounds: 0,
};

export const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
};

export interface WebServer {
  /** http://host:port (no trailing slash). */
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `dir` (GET/HEAD only, nothing outside it) plus /local.json naming the coordinator. */
export async function serveStatic(dir: string, local: { coordinator: string | null }, o: { port: number; host?: string }): Promise<WebServer> {
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) throw new Error(`${root} has no index.html: build the page first (npm run build:web)`);
  const server = createServer((req, res) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return void res.writeHead(400, { 'content-type': 'text/plain' }).end('bad path');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed');
    if (path === '/local.json') {
      const body = JSON.stringify(local);
      return void res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : body);
    }
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (file !== root && !file.startsWith(root + sep)) return void res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden');
    if (!existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path} here`);
    const body = readFileSync(file);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

export interface StartedWeb {
  web: WebServer;
  coordinator: StartedCoordinator;
  stop(): Promise<void>;
}

/** The page's server and a local coordinator (its own port, the same host). */
export async function startWeb(o: {
  port: number;
  host?: string;
  config: RunConfig;
  staticDir?: string;
  stateDir?: string;
  validate?: boolean;
  software?: boolean;
  /** --store s3: the run's bucket (absent: the state folder). */
  bucket?: ObjectStore;
  log: (line: string) => void;
}): Promise<StartedWeb> {
  const coordinator = await startCoordinator(o.config, { port: 0, host: o.host, stateDir: o.stateDir, log: o.log, validate: o.validate, software: o.software, bucket: o.bucket });
  let web: WebServer;
  try {
    web = await serveStatic(o.staticDir ?? DEFAULT_STATIC_DIR, { coordinator: coordinator.server.url }, { port: o.port, host: o.host });
  } catch (e) {
    await coordinator.stop();
    throw e;
  }
  return {
    web,
    coordinator,
    async stop() {
      await web.close();
      await coordinator.stop();
    },
  };
}

export async function webCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      port: { type: 'string', default: '8780' },
      host: { type: 'string', default: '127.0.0.1' },
      run: { type: 'string' },
      state: { type: 'string', default: join('.tessera', 'web') },
      static: { type: 'string' },
      'no-validate': { type: 'boolean' },
      software: { type: 'boolean' },
      ...STORE_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new CommandUsageError('web', m, WEB_USAGE));
  if (values.help) {
    console.log(WEB_USAGE);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CommandUsageError('web', `--port must be a port number (0–65535), got '${values.port}'`, WEB_USAGE);
  const config = values.run ? readRunFile(values.run) : readRunFile(undefined, LOCAL_RUN);
  const store = storeFromFlags(values);
  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  const bucket = await openStore(store, log);
  const started = await startWeb({ port, host: values.host, config, staticDir: values.static, stateDir: values.state, validate: values['no-validate'] !== true, software: values.software === true, bucket, log });
  log(`Tessera is at ${started.web.url} — open it in Chrome or Edge (local run '${config.run}', coordinator ${started.coordinator.server.url}). Ctrl-C stops.`);
  await new Promise<void>((done) => {
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
  log('stopping');
  await started.stop();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await webCommand(argv);
  } catch (e) {
    if (e instanceof CommandUsageError) {
      console.error(`tessera web: ${e.message}\n\n${e.usage}`);
      return 2;
    }
    if (e instanceof StoreSettingsError) {
      console.error(`tessera web: ${e.message}`);
      return 1;
    }
    console.error(`tessera web: ${(e as Error).message}`);
    return 1;
  }
}

// Run as `node --import ./bin/register.mjs src/cli/web-command.ts` (package.json "web"). As
// bin/launch.mjs does for `tessera`: without a system Vulkan loader, run once more with
// Chromium's on the library path, so the validator's Dawn finds one.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const fix = process.env.TESSERA_VULKAN_ENV_DONE ? null : vulkanEnvFix();
  if (fix) {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, ...fix, TESSERA_VULKAN_ENV_DONE: '1' } });
    process.on('SIGINT', () => {
      if (!process.stdin.isTTY) child.kill('SIGINT'); // from a terminal, the child got it too
    });
    process.on('SIGTERM', () => child.kill('SIGTERM'));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  } else {
    process.exitCode = await main(process.argv.slice(2));
    setTimeout(() => process.exit(), 3000).unref();
  }
}
