#!/usr/bin/env node
// `npm run bench -- NAME`: the benchmarks in test/bench, run from source.
import { launch } from './launch.mjs';

await launch(new URL('../test/bench/run.ts', import.meta.url).href, process.argv.slice(2));
