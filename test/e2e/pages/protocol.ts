// What the Node side (harness.ts) and the page side (bridge.ts) agree on. Environment-free:
// both type-checks read this file.

/** Set on the page's window by an init script, before any page script runs. */
export const BRIDGE_GLOBAL = '__tesseraBridge';
/** Exposed on the page's window by page.exposeFunction: page → test. */
export const BRIDGE_TO_TEST = '__tesseraToTest';

/**
 * One message between a test and its page. Anything Playwright can serialise (JSON-like
 * values; no typed arrays): binary data goes over WebRTC, or base64 when it is small.
 */
export interface BridgeMessage {
  type: string;
  [key: string]: unknown;
}

/** The page-side object the init script installs at window[BRIDGE_GLOBAL]. */
export interface BridgeGlobal {
  /** Messages that arrived before the page's bridge module took over. */
  queue: BridgeMessage[];
  /** Set by bridge.ts; until then deliver() queues. */
  sink: ((msg: BridgeMessage) => void) | null;
  deliver(msg: BridgeMessage): void;
}

/** The init script's source: runs in the page before its own scripts. */
export const BRIDGE_INIT_SCRIPT = `(() => {
  const b = { queue: [], sink: null, deliver(m) { if (b.sink) b.sink(m); else b.queue.push(m); } };
  Object.defineProperty(window, ${JSON.stringify(BRIDGE_GLOBAL)}, { value: b });
})();`;
