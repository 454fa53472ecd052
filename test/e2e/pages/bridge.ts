// The page's end of the test bridge (harness.ts openPage): JSON-like messages to and from the
// Vitest test driving this page. Main thread only; a worker talks through its page (worker-rpc.ts).
import { BRIDGE_GLOBAL, BRIDGE_TO_TEST, type BridgeGlobal, type BridgeMessage } from './protocol.ts';

export type { BridgeMessage } from './protocol.ts';

type Listener = (msg: BridgeMessage) => void;

const host = window as unknown as Record<string, unknown>;
const global = host[BRIDGE_GLOBAL] as BridgeGlobal | undefined;
if (!global) throw new Error('no test bridge: open this page with openPage() from test/e2e/harness.ts');

const inbox: BridgeMessage[] = [];
const listeners = new Map<string, Set<Listener>>();
const waiters: { type: string; resolve: (m: BridgeMessage) => void }[] = [];

function receive(msg: BridgeMessage): void {
  const fns = listeners.get(msg.type);
  if (fns && fns.size > 0) {
    for (const fn of fns) fn(msg);
    return;
  }
  const i = waiters.findIndex((w) => w.type === msg.type);
  if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
  else inbox.push(msg);
}

// Each message is handled in a task of its own: a listener's throw is then an uncaught page
// error (which fails the test at once), not a rejection of the test's send().
global.sink = (m) => void setTimeout(() => receive(m));
for (const m of global.queue.splice(0)) global.sink(m);

export const bridge = {
  /** Sends a message to the test (bridge.next(type) / bridge.on(type) there). */
  send(msg: BridgeMessage): Promise<void> {
    return (host[BRIDGE_TO_TEST] as (m: BridgeMessage) => Promise<void>)(msg);
  },
  /** The first message of this type not yet taken (waits for one). */
  next<T extends BridgeMessage = BridgeMessage>(type: string): Promise<T> {
    const i = inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
    return new Promise((resolve) => waiters.push({ type, resolve: resolve as (m: BridgeMessage) => void }));
  },
  /** Every message of this type from now on (and any already queued). Returns an unsubscribe. */
  on(type: string, fn: Listener): () => void {
    let set = listeners.get(type);
    if (!set) listeners.set(type, (set = new Set()));
    set.add(fn);
    for (let i = 0; i < inbox.length; ) {
      if (inbox[i].type === type) fn(inbox.splice(i, 1)[0]);
      else i++;
    }
    return () => void set.delete(fn);
  },
  /**
   * Answers requests of this type: the handler's result goes back as `{ type: '<type>:done', ...result }`,
   * a thrown error as an uncaught page error (so the test fails at once with its message).
   */
  handle(type: string, fn: (msg: BridgeMessage) => Promise<Record<string, unknown>> | Record<string, unknown>): () => void {
    return bridge.on(type, (msg) => {
      void (async () => {
        const result = await fn(msg);
        await bridge.send({ ...result, type: `${type}:done` });
      })();
    });
  },
};
