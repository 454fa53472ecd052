// A page ↔ worker call channel for e2e pages: the worker serves named async handlers
// (serveWorker), the page calls them (spawnWorker). Errors are never lost: a handler's throw
// rejects that call; an uncaught error or unhandled rejection in the worker, or a worker
// that fails to load, becomes an uncaught error in the page, which the test sees as a page
// error (harness.ts openPage fails fast on it).

type Handler = (arg: never) => unknown;
export type Handlers = Record<string, Handler>;

interface Call { id: number; method: string; arg: unknown }
/** An error as it crosses postMessage: a one-line message and the worker's stack apart. */
interface WireError { message: string; stack: string }
type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: WireError }
  | { fatal: WireError };

/** Worker scope, typed structurally (the web type-check has DOM's lib, not WebWorker's). */
interface WorkerScope {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  addEventListener(type: string, fn: (ev: Event) => void): void;
}

const TRANSFER = Symbol('transfer');
interface WithTransfer { [TRANSFER]: Transferable[]; value: unknown }

/** Return this from a handler to move buffers to the page instead of copying them. */
export function transfer<T>(value: T, list: Transferable[]): T {
  return { [TRANSFER]: list, value } as unknown as T;
}

function wire(e: unknown): WireError {
  if (e instanceof Error) return { message: `${e.name}: ${e.message}`, stack: e.stack ?? '' };
  return { message: String(e), stack: '' };
}

/** In a worker: answers the page's calls with these handlers. */
export function serveWorker(handlers: Handlers): void {
  const scope = globalThis as unknown as WorkerScope;
  const fatal = (e: unknown) => scope.postMessage({ fatal: wire(e) } satisfies Reply);
  // preventDefault: reported once, here, rather than also by the Worker object's 'error'
  // event in the page (uncaught errors) or by Chromium straight to the test (rejections).
  scope.addEventListener('error', (ev) => {
    ev.preventDefault();
    fatal((ev as ErrorEvent).error ?? (ev as ErrorEvent).message);
  });
  scope.addEventListener('unhandledrejection', (ev) => {
    ev.preventDefault();
    fatal((ev as PromiseRejectionEvent).reason);
  });
  scope.addEventListener('message', (ev) => {
    const { id, method, arg } = (ev as MessageEvent<Call>).data;
    void (async () => {
      try {
        const fn = handlers[method];
        if (!fn) throw new Error(`worker has no handler '${method}' (has: ${Object.keys(handlers).join(', ')})`);
        const out = await (fn as (a: unknown) => unknown)(arg);
        const moved = out !== null && typeof out === 'object' && TRANSFER in out ? (out as WithTransfer) : null;
        scope.postMessage({ id, ok: true, result: moved ? moved.value : out } satisfies Reply, moved ? moved[TRANSFER] : []);
      } catch (e) {
        scope.postMessage({ id, ok: false, error: wire(e) } satisfies Reply);
      }
    })();
  });
}

type Result<F> = F extends (arg: never) => infer R ? Awaited<R> : never;
type Arg<F> = F extends (arg: infer A) => unknown ? A : never;

export interface WorkerClient<H extends Handlers> {
  call<M extends keyof H & string>(method: M, arg: Arg<H[M]>, transferList?: Transferable[]): Promise<Result<H[M]>>;
  terminate(): void;
  worker: Worker;
}

/**
 * In the page: starts a module worker (e.g. '/engine-worker.js', served by servePage) and
 * returns typed calls into its handlers: `spawnWorker<typeof handlers>(url)`.
 */
export function spawnWorker<H extends Handlers>(url: string): WorkerClient<H> {
  const worker = new Worker(url, { type: 'module' });
  let next = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const die = (why: string, stack = '') => {
    // One line for the message (Playwright rebuilds page errors from message and stack); the
    // worker's own stack goes to the console, which the test prints.
    if (stack) console.error(`worker ${url} stack:\n${stack}`);
    const err = new Error(`worker ${url}: ${why}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    // Thrown from a task of its own: an uncaught page error, which fails the test at once.
    setTimeout(() => {
      throw err;
    });
  };
  worker.addEventListener('message', (ev: MessageEvent<Reply>) => {
    const r = ev.data;
    if ('fatal' in r) return die(`uncaught: ${r.fatal.message}`, r.fatal.stack);
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if (r.ok) p.resolve(r.result);
    else p.reject(Object.assign(new Error(`worker ${url}: ${r.error.message}`), { workerStack: r.error.stack }));
  });
  worker.addEventListener('error', (ev: ErrorEvent) => {
    ev.preventDefault();
    // A module that fails to load or parse gives an ErrorEvent with no message.
    die(ev.message ? `${ev.message} (${ev.filename}:${ev.lineno})` : 'failed to load (a network or syntax error in the module)');
  });
  worker.addEventListener('messageerror', () => die('a message could not be deserialised'));
  return {
    worker,
    call(method, arg, transferList = []) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        worker.postMessage({ id, method, arg } satisfies Call, transferList);
      });
    },
    terminate() {
      worker.terminate();
      for (const p of pending.values()) p.reject(new Error(`worker ${url} terminated`));
      pending.clear();
    },
  };
}
