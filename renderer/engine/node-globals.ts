// Node's `process` and `Buffer` as globals for simple-peer's dependencies (readable-stream,
// randombytes), from their npm browser packages; imported first by the page and the worker
// (vite.config.ts). The only Node-shaped thing in renderer/.
/* eslint-disable no-restricted-imports -- the browser packages named like Node's modules, on purpose */
import process from 'process';
import { Buffer } from 'buffer';
/* eslint-enable no-restricted-imports */

const g = globalThis as { process?: unknown; Buffer?: unknown };
g.process ??= process;
g.Buffer ??= Buffer;
