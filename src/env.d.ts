// What the engine may use from its host: the globals that a Web Worker, a page,
// Electron's renderer and Node all provide. Anything else comes in through a parameter.
declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
declare function setTimeout(handler: () => void, ms?: number): unknown;
declare function clearTimeout(id: unknown): void;
declare function queueMicrotask(cb: () => void): void;
declare const performance: { now(): number };
declare class TextEncoder { encode(s: string): Uint8Array }
declare class TextDecoder { constructor(label?: string); decode(b: ArrayBufferView | ArrayBuffer): string }
/** Cancellation, as in the DOM (the contributor's waits end when a signal aborts). */
interface AbortSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
