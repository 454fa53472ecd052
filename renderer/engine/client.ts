// The page's handle on the engine worker: typed calls (one reply each, by id), pushed events,
// and the page's half of the RTC bridge. The store takes an `Engine` so component tests can
// hand it a scripted one instead of a worker.
import type { CallName, EngineCalls, EngineEvent, Reply, Request, WireError } from './messages.ts';
import { hostRtc } from './rtc-host.ts';
import type { RtcCommand } from './rtc-protocol.ts';

export interface Engine {
  call<K extends CallName>(name: K, arg: EngineCalls[K]['arg']): Promise<EngineCalls[K]['result']>;
  onEvent(fn: (e: EngineEvent) => void): () => void;
}

/** A failed engine call, with the kind the UI words its message by. */
export class EngineError extends Error {
  override name = 'EngineError';
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
  get kind(): WireError['kind'] {
    return this.wire.kind;
  }
}

export function startEngineWorker(): Engine {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'tessera-engine' });
  const rtc = typeof RTCPeerConnection === 'function' ? hostRtc(worker) : null;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(e: EngineEvent) => void>();
  let nextId = 1;
  // Tells the worker whether its simple-peer can have WebRTC through this page.
  worker.postMessage({ rtcHost: rtc !== null });
  worker.addEventListener('message', (ev: MessageEvent) => {
    const data = ev.data as Reply | { rtc: RtcCommand };
    if ('rtc' in data) return rtc?.handle(data.rtc);
    if ('event' in data) {
      for (const fn of listeners) fn(data.event);
      return;
    }
    const p = pending.get(data.id);
    if (!p) return;
    pending.delete(data.id);
    if (data.ok) p.resolve(data.result);
    else p.reject(new EngineError(data.error));
  });
  worker.addEventListener('error', (ev: ErrorEvent) => {
    const error: WireError = { kind: 'other', message: `the engine worker failed: ${ev.message || 'it could not be loaded'}` };
    for (const p of pending.values()) p.reject(new EngineError(error));
    pending.clear();
    for (const fn of listeners) fn({ event: 'ended', error });
  });
  return {
    call(name, arg) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        worker.postMessage({ id, call: name, arg } as Request);
      });
    },
    onEvent(fn) {
      listeners.add(fn);
      return () => void listeners.delete(fn);
    },
  };
}
