// Bundles the main process (ESM) and the two preloads (CommonJS: a sandboxed preload cannot
// load ES modules or any file but 'electron') into dist/electron/. `npm start` runs this,
// then Electron; electron-builder packs the result.
//   npx tsx electron/build.ts [outdir]
import { build, type BuildOptions } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUTDIR = resolve(HERE, '..', 'dist', 'electron');

export async function buildElectron(outdir = DEFAULT_OUTDIR): Promise<{ main: string; preloads: string[] }> {
  const common: BuildOptions = { bundle: true, platform: 'node', target: 'node20', external: ['electron'], sourcemap: 'linked', logLevel: 'warning' };
  const main = join(outdir, 'main.mjs');
  const preloads = [join(outdir, 'preload-ui.cjs'), join(outdir, 'preload-training.cjs')];
  await Promise.all([
    build({ ...common, entryPoints: [join(HERE, 'main.ts')], outfile: main, format: 'esm' }),
    build({ ...common, entryPoints: [join(HERE, 'preload', 'ui.ts')], outfile: preloads[0], format: 'cjs', platform: 'browser' }),
    build({ ...common, entryPoints: [join(HERE, 'preload', 'training.ts')], outfile: preloads[1], format: 'cjs', platform: 'browser' }),
  ]);
  return { main, preloads };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildElectron(process.argv[2] ? resolve(process.argv[2]) : DEFAULT_OUTDIR);
  console.log(`built ${out.main} and ${out.preloads.join(', ')}`);
}
