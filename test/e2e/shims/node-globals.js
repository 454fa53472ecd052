// Injected into every browser bundle (esbuild `inject`): Node's `process` and `Buffer`
// globals, which simple-peer's dependencies (readable-stream, debug, randombytes) expect.
// 'process' and 'buffer' resolve to the npm browser packages through the bundle's aliases.
import process from 'process';
import { Buffer } from 'buffer';

export { process, Buffer };
