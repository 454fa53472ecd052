#!/usr/bin/env node
// Builds the `tessera` command into dist/cli/ so that it starts as plain JavaScript (no
// TypeScript compiled at each start): `npm run build:cli`, and `npm install` runs it as the
// package's prepare script (with --if-possible: a failed build leaves the command running
// from source, more slowly, rather than failing the install).
//   node bin/build-cli.mjs [--outdir DIR] [--if-possible]
// One bundle split at each subcommand's dynamic import (`tessera --help` loads only the
// entry chunk); npm packages stay outside it; .wgsl kernels are inlined as text, as
// bin/wgsl-hook.mjs and vite.wgsl.ts serve them. The chunks sit flat in a folder two levels
// below the root, as src/cli/ is, so the sources' `new URL('../../…', import.meta.url)`
// (bin/tessera.mjs, dist/web) find the same files. The stamp (bin/built-cli.mjs) is written
// last, with the time the build started.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_DIR, ENTRY, STAMP } from './built-cli.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export async function buildCli(outdir = BUILD_DIR) {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const staging = `${outdir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(dirname(outdir), { recursive: true });
  await build({
    // The validator's worker thread is started from its own file (src/coordinator/validator-thread.ts).
    entryPoints: { [ENTRY.replace(/\.mjs$/, '')]: join(ROOT, 'src', 'cli', 'cli.ts'), 'validator-worker': join(ROOT, 'src', 'coordinator', 'validator-worker.ts') },
    outdir: staging,
    outExtension: { '.js': '.mjs' },
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    loader: { '.wgsl': 'text' },
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  writeFileSync(join(staging, STAMP), `${JSON.stringify({ startedAt })}\n`);
  // Replace the old build in one step: a command starting meanwhile finds either the old
  // build, or none and runs from source.
  rmSync(outdir, { recursive: true, force: true });
  renameSync(staging, outdir);
  return join(outdir, ENTRY);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--outdir');
  const outdir = at >= 0 ? resolve(args[at + 1]) : BUILD_DIR;
  try {
    console.log(`tessera: built ${await buildCli(outdir)}`);
  } catch (e) {
    if (!args.includes('--if-possible')) throw e;
    console.warn(`tessera: the command could not be built (${e.message.split('\n')[0]}); it runs from source, starting more slowly. \`npm run build:cli\` says why.`);
  }
}
