#!/usr/bin/env node
// The `tessera` command: src/node/cli.ts run from source.
import { launch } from './launch.mjs';

await launch(new URL('../src/node/cli.ts', import.meta.url).href, process.argv.slice(2));
