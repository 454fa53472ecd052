#!/usr/bin/env node
// The `tessera` command: the built CLI (dist/cli: `npm install` and `npm run build:cli` make
// it) while it is newer than every source it came from, else src/cli/cli.ts through tsx —
// an edited source always runs as edited. Benchmarks (test/bench) run from source.
import { freshBuild } from './built-cli.mjs';
import { launch } from './launch.mjs';

/** Commands that never touch the GPU, so they skip the Vulkan loader's second start. */
const GPU_FREE = new Set([undefined, 'help', '--help', '-h', 'wallet', 'chain', 'data', 'simulate']);

const argv = process.argv.slice(2);
const built = argv[0] === 'bench' ? null : freshBuild();
const gpu = !GPU_FREE.has(argv[0]) && !argv.includes('--help') && !argv.includes('-h');
await launch(built ?? new URL('../src/cli/cli.ts', import.meta.url).href, argv, { typescript: !built, gpu });
