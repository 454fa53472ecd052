// The renderer bundle that ships (the desktop app's and `tessera web`'s page) carries no
// source maps; they are made only on request (TESSERA_SOURCEMAPS=1). The build is the one
// `npm run build:web` runs (same config), into a temporary folder: a few seconds.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { build, resolveConfig } from 'vite';

const CONFIG = fileURLToPath(new URL('../../renderer/vite.config.ts', import.meta.url));
const saved = process.env.TESSERA_SOURCEMAPS;
const dirs: string[] = [];

afterEach(() => {
  if (saved === undefined) delete process.env.TESSERA_SOURCEMAPS;
  else process.env.TESSERA_SOURCEMAPS = saved;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const resolvedSourcemap = async () => (await resolveConfig({ configFile: CONFIG, logLevel: 'silent' }, 'build', 'production', 'production')).build.sourcemap;

describe('renderer release build', () => {
  it('writes no source maps', async () => {
    delete process.env.TESSERA_SOURCEMAPS;
    const outDir = mkdtempSync(join(tmpdir(), 'tessera-web-'));
    dirs.push(outDir);
    await build({ configFile: CONFIG, build: { outDir, emptyOutDir: true }, logLevel: 'silent' });
    const files = readdirSync(outDir, { recursive: true }).map(String);
    expect(files).toContain('index.html');
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  }, 60_000);

  it('makes them when TESSERA_SOURCEMAPS=1 asks (for debugging)', async () => {
    delete process.env.TESSERA_SOURCEMAPS;
    expect(await resolvedSourcemap()).toBe(false);
    process.env.TESSERA_SOURCEMAPS = '1';
    expect(await resolvedSourcemap()).toBe(true);
  });
});
