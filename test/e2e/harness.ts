// End-to-end harness: run browser-side TypeScript (the engine, simple-peer, a whole
// contributor) inside headless Chromium with WebGPU on SwiftShader, driven from a Vitest test
// in Node. Pieces, each usable alone:
//   bundleForBrowser(entry)   esbuild bundle of a page or worker entry (wgsl as text, Node polyfills)
//   startStaticServer(routes) a tiny http server on 127.0.0.1 (a secure context, unlike data: URLs)
//   servePage({ page, workers }) both of the above: an HTML page running the entry, workers beside it
//   launchChromium()          Debian's chromium through playwright-core, with the WebGPU flags
//   openPage(browser, url)    a page whose console goes to the test output, that fails fast on
//                             page errors, with a message bridge to the page (pages/bridge.ts)
//   browserSkipReason()       why these tests cannot run here (no chromium / SwiftShader), or null
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import SimplePeer from 'simple-peer';
import { BRIDGE_GLOBAL, BRIDGE_INIT_SCRIPT, BRIDGE_TO_TEST, type BridgeGlobal, type BridgeMessage } from './pages/protocol.ts';

export type { BridgeMessage } from './pages/protocol.ts';
export type { Browser, Page } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(HERE, '../..');
export const CHROMIUM_PATH = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
export const SWIFTSHADER_ICD = process.env.TESSERA_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * WebGPU on SwiftShader in headless Chromium, plus quiet networking: the test machines have
 * no network, and Chromium's background services otherwise flood refused connections.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
  '--no-sandbox', // the tests run as root, where Chromium's sandbox refuses to start
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

// ---------------------------------------------------------------------------------------------
// Skip guard

/** Why browser tests cannot run on this machine, or null when they can. */
export function browserSkipReason(required: readonly string[] = [CHROMIUM_PATH, SWIFTSHADER_ICD]): string | null {
  const missing = required.filter((p) => !existsSync(p));
  if (missing.length === 0) return null;
  return (
    `browser tests skipped: ${missing.join(' and ')} not found. Install Debian's chromium ` +
    '(sudo apt-get install chromium), which ships the SwiftShader Vulkan driver these tests use.'
  );
}

// ---------------------------------------------------------------------------------------------
// Bundling

export interface BundleOptions {
  /** Extra esbuild `define`s (merged over `global: 'globalThis'`). */
  define?: Record<string, string>;
  minify?: boolean;
  /** Inline source map (default true: Chromium's stack traces then name the .ts files in DevTools). */
  sourcemap?: boolean;
}

const require = createRequire(import.meta.url);
const bundles = new Map<string, Promise<string>>();

/**
 * Bundles a browser entry module (a page script or a worker) into one ES module: `.wgsl`
 * imports become their text, and the Node built-ins that simple-peer's dependencies want
 * (`buffer`, `events`, `process`) become their npm browser versions. `entry` is relative to
 * the repository root or absolute. Cached per process by entry and options.
 */
export function bundleForBrowser(entry: string, opts: BundleOptions = {}): Promise<string> {
  const file = resolve(REPO_ROOT, entry);
  const key = JSON.stringify([file, opts]);
  let out = bundles.get(key);
  if (!out) {
    out = bundleNow(file, opts);
    bundles.set(key, out);
    out.catch(() => bundles.delete(key));
  }
  return out;
}

async function bundleNow(file: string, opts: BundleOptions): Promise<string> {
  const options: BuildOptions = {
    absWorkingDir: REPO_ROOT,
    entryPoints: [file],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    sourcemap: opts.sourcemap === false ? false : 'inline',
    minify: opts.minify ?? false,
    loader: { '.wgsl': 'text' },
    // Explicit, so a bare `require('buffer')` never means Node's built-in (trailing slash: the package).
    alias: {
      buffer: require.resolve('buffer/'),
      events: require.resolve('events/'),
      process: require.resolve('process/browser.js'),
    },
    inject: [resolve(HERE, 'shims/node-globals.js')],
    define: { global: 'globalThis', ...opts.define },
    logLevel: 'silent',
  };
  const result = await build(options);
  for (const w of result.warnings) console.warn(`[esbuild] ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
  return result.outputFiles![0].text;
}

// ---------------------------------------------------------------------------------------------
// Static server

export type RouteBody = string | Uint8Array | { body: string | Uint8Array; type: string };
export type Routes = Record<string, RouteBody>;

export interface StaticServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  port: number;
  /** The node:http server, e.g. to attach `new WebSocketServer({ server })` (ws) for signaling. */
  server: Server;
  /** Adds or replaces a route while serving. */
  set(path: string, body: RouteBody): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.bin': 'application/octet-stream',
};

function typeOf(path: string): string {
  if (path === '/' || path.endsWith('/')) return TYPES['.html'];
  return TYPES[extname(path)] ?? 'application/octet-stream';
}

export interface StaticServerOptions {
  /** Headers on every response, e.g. COOP/COEP for SharedArrayBuffer. */
  headers?: Record<string, string>;
}

/**
 * Serves fixed routes (`'/'`, `'/page.js'`, …) from 127.0.0.1 on a free port. The content
 * type comes from the route's extension (`'/'` is HTML) unless a route gives `{ body, type }`.
 * Anything else is a 404.
 */
export async function startStaticServer(routes: Routes, opts: StaticServerOptions = {}): Promise<StaticServer> {
  const table = new Map(Object.entries(routes));
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = table.get(path);
    if (!route || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(route ? 405 : 404, { 'content-type': 'text/plain' }).end(route ? 'method not allowed' : 'not found');
      return;
    }
    const { body, type } = typeof route === 'string' || route instanceof Uint8Array ? { body: route, type: typeOf(path) } : route;
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(200, { 'content-type': type, 'content-length': bytes.byteLength, 'cache-control': 'no-store', ...opts.headers });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    set: (path, body) => void table.set(path, body),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

export interface ServePageOptions {
  /** The page's entry module (relative to the repository root), served as /page.js. */
  page: string;
  /** Worker entries by name, each served as /<name>.js: `new Worker('/<name>.js', { type: 'module' })`. */
  workers?: Record<string, string>;
  /** Extra routes (data files, a checkpoint, …). */
  routes?: Routes;
  title?: string;
  bundle?: BundleOptions;
  server?: StaticServerOptions;
}

/** Bundles a page and its workers and serves them with an HTML page at `/` that loads /page.js. */
export async function servePage(opts: ServePageOptions): Promise<StaticServer> {
  const names = Object.keys(opts.workers ?? {});
  for (const n of names) if (!/^[\w-]+$/.test(n) || n === 'page') throw new Error(`bad worker name '${n}'`);
  const [page, ...workers] = await Promise.all([
    bundleForBrowser(opts.page, opts.bundle),
    ...names.map((n) => bundleForBrowser(opts.workers![n], opts.bundle)),
  ]);
  const title = opts.title ?? 'Tessera e2e';
  const html =
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>` +
    '<link rel="icon" href="data:,"></head>' +
    `<body><script type="module" src="/page.js"></script></body></html>`;
  const routes: Routes = { '/': html, '/page.js': page, ...opts.routes };
  names.forEach((n, i) => (routes[`/${n}.js`] = workers[i]));
  return startStaticServer(routes, opts.server);
}

// ---------------------------------------------------------------------------------------------
// Browser and pages

export interface LaunchOptions {
  /** Flags after CHROMIUM_FLAGS. */
  args?: string[];
  /** Default true. Headed needs a display. */
  headless?: boolean;
}

/** Debian's chromium through playwright-core (its own browser download is not used). */
export function launchChromium(opts: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: opts.headless ?? true,
    args: [...CHROMIUM_FLAGS, ...(opts.args ?? [])],
  });
}

export interface OpenPageOptions {
  /** Prefix of the page's console lines in the test output (default `[page]`). */
  prefix?: string;
  /** Default timeout of bridge.next() and guard(), in ms (default 60 s). */
  timeoutMs?: number;
  /** Print console.debug lines too (default false). */
  debug?: boolean;
}

export type Listener = (msg: BridgeMessage) => void;

/** The test's end of the message channel to pages/bridge.ts in the page. */
export interface TestBridge {
  /** Delivers a message to the page (queued there until its bridge module loads). */
  send(msg: BridgeMessage): Promise<void>;
  /**
   * The first message of this type (or matching this predicate) not yet taken, waiting for it
   * if none has come; rejects on a page error or after the timeout.
   */
  next<T extends BridgeMessage = BridgeMessage>(match: string | ((m: BridgeMessage) => boolean), timeoutMs?: number): Promise<T>;
  /** Calls `fn` for every message of this type from now on (they then skip the queue). Returns an unsubscribe. */
  on(type: string, fn: Listener): () => void;
}

export interface TestPage {
  page: Page;
  context: BrowserContext;
  bridge: TestBridge;
  /** Uncaught errors and unhandled rejections in the page, in order. */
  errors: Error[];
  /** Rejects at the first page error or crash (never resolves). */
  failed: Promise<never>;
  /** Races `work` against a page error and a timeout. */
  guard<T>(work: Promise<T>, what?: string, timeoutMs?: number): Promise<T>;
  /** Closes the page and its context. */
  close(): Promise<void>;
}

/**
 * Opens `url` in a fresh context. The page's console (its workers' too) is printed with a
 * prefix; a page error is printed, recorded and makes `failed`, `guard()` and `bridge.next()`
 * reject at once. The bridge is installed before the page's scripts run.
 */
export async function openPage(browser: Browser, url: string, opts: OpenPageOptions = {}): Promise<TestPage> {
  const prefix = opts.prefix ?? '[page]';
  const defaultTimeout = opts.timeoutMs ?? 60_000;
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: Error[] = [];

  let fail!: (e: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // observed through guard()/next(); never an unhandled rejection
  let closing = false;
  const onFailure = (e: Error) => {
    errors.push(e);
    fail(e); // every pending next()/guard() races `failed`, so they all reject now
  };

  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'debug' && !opts.debug) return;
    const worker = m.worker();
    const where = worker ? ` (worker ${new URL(worker.url()).pathname})` : '';
    const line = `${prefix}${where} ${m.type() === 'log' ? '' : `${m.type()}: `}${m.text()}`;
    if (m.type() === 'error' || m.type() === 'warning') console.warn(line);
    else console.log(line);
  });
  page.on('pageerror', (e: Error) => {
    console.error(`${prefix} uncaught: ${e.stack ?? e.message}`);
    onFailure(new Error(`${prefix} page error: ${e.message}`, { cause: e }));
  });
  page.on('crash', () => onFailure(new Error(`${prefix} crashed`)));
  page.on('close', () => {
    if (!closing) onFailure(new Error(`${prefix} closed unexpectedly`));
  });

  // Bridge: messages from the page are handed to listeners of their type, else queued for next().
  const inbox: BridgeMessage[] = [];
  const listeners = new Map<string, Set<Listener>>();
  interface Waiter {
    match: (m: BridgeMessage) => boolean;
    resolve: (m: BridgeMessage) => void;
    reject: (e: Error) => void;
  }
  const waiters: Waiter[] = [];
  const receive = (msg: BridgeMessage) => {
    const fns = listeners.get(msg.type);
    if (fns && fns.size > 0) {
      for (const fn of fns) {
        try {
          fn(msg);
        } catch (e) {
          // A throwing listener fails the test like a page error would (not the page's send()).
          onFailure(new Error(`bridge listener for '${msg.type}' threw: ${(e as Error).message ?? e}`, { cause: e }));
        }
      }
      return;
    }
    const i = waiters.findIndex((w) => w.match(msg));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else inbox.push(msg);
  };
  await page.exposeFunction(BRIDGE_TO_TEST, (msg: BridgeMessage) => {
    if (!msg || typeof msg.type !== 'string') throw new Error('bridge messages need a string `type`');
    receive(msg);
  });
  await page.addInitScript(BRIDGE_INIT_SCRIPT);

  const withTimeout = <T>(work: Promise<T>, what: string, ms: number): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${prefix} timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([work, failed, timeout]).finally(() => clearTimeout(timer));
  };

  const bridge: TestBridge = {
    async send(msg) {
      if (errors.length > 0) throw errors[0];
      await page.evaluate(
        ([name, m]) => (globalThis as unknown as Record<string, BridgeGlobal>)[name as string].deliver(m as BridgeMessage),
        [BRIDGE_GLOBAL, msg] as const,
      );
    },
    next<T extends BridgeMessage>(match: string | ((m: BridgeMessage) => boolean), timeoutMs = defaultTimeout): Promise<T> {
      const test = typeof match === 'string' ? (m: BridgeMessage) => m.type === match : match;
      const what = typeof match === 'string' ? `'${match}' from the page` : 'a message from the page';
      const i = inbox.findIndex(test);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
      if (errors.length > 0) return Promise.reject(errors[0]);
      let waiter!: Waiter;
      const got = new Promise<BridgeMessage>((resolve, reject) => (waiter = { match: test, resolve, reject }));
      waiters.push(waiter);
      return withTimeout(got, what, timeoutMs).finally(() => {
        const k = waiters.indexOf(waiter);
        if (k >= 0) waiters.splice(k, 1);
      }) as Promise<T>;
    },
    on(type, fn) {
      let set = listeners.get(type);
      if (!set) listeners.set(type, (set = new Set()));
      set.add(fn);
      // Messages of this type that came before the listener are handed over now.
      for (let i = 0; i < inbox.length; ) {
        if (inbox[i].type === type) fn(inbox.splice(i, 1)[0]);
        else i++;
      }
      return () => void set.delete(fn);
    },
  };

  try {
    const response = await page.goto(url);
    if (response && !response.ok()) throw new Error(`${url}: HTTP ${response.status()}`);
  } catch (e) {
    closing = true;
    await context.close().catch(() => {});
    throw e;
  }

  return {
    page,
    context,
    bridge,
    errors,
    failed,
    guard: (work, what = 'the page', timeoutMs = defaultTimeout) => withTimeout(work, what, timeoutMs),
    async close() {
      closing = true;
      for (const w of waiters.splice(0)) w.reject(new Error(`${prefix} closed`));
      await context.close().catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Node peers

/** @roamhq/wrtc, loaded once (a native addon; CommonJS, so through require). */
export function nodeWrtc(): NonNullable<SimplePeer.Options['wrtc']> {
  return require('@roamhq/wrtc') as NonNullable<SimplePeer.Options['wrtc']>;
}

/**
 * A simple-peer in this process on @roamhq/wrtc. No ICE servers by default: the test
 * machines have no network, and loopback host candidates are all a local test needs.
 */
export function nodePeer(opts: SimplePeer.Options = {}): SimplePeer.Instance {
  return new SimplePeer({ config: { iceServers: [] }, ...opts, wrtc: nodeWrtc() });
}

/**
 * Relays a Node peer's signaling through the page bridge: its signals go to the page as
 * `{ type, data }` and the page's `{ type, data }` messages are fed to it. Returns an unsubscribe.
 */
export function relaySignals(bridge: TestBridge, peer: SimplePeer.Instance, type = 'signal'): () => void {
  const onSignal = (data: SimplePeer.SignalData) => void bridge.send({ type, data }).catch((e: unknown) => peer.destroy(e as Error));
  peer.on('signal', onSignal);
  const off = bridge.on(type, (m) => peer.signal(m.data as SimplePeer.SignalData));
  return () => {
    peer.off('signal', onSignal);
    off();
  };
}
