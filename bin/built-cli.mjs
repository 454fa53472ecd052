// Where the built `tessera` command lives (dist/cli, made by bin/build-cli.mjs) and whether it
// may run: only when it was built after the last change to every file and folder it came
// from, so an edited, added or removed source always runs as it now is (through tsx).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUILD_DIR = join(ROOT, 'dist', 'cli');
/** Everything the bundle is made of: TypeScript under src/, kernels under shaders/. */
export const SOURCE_DIRS = [join(ROOT, 'src'), join(ROOT, 'shaders')];
export const STAMP = 'build.json';
export const ENTRY = 'cli.mjs';

/** The latest modification time of a folder, anything in it, or anything below it. */
function newestChange(dir) {
  let newest = statSync(dir).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The built entry's URL when the build in buildDir is complete and newer than every source; else null. */
export function freshBuild(buildDir = BUILD_DIR, sourceDirs = SOURCE_DIRS) {
  let startedAt;
  try {
    ({ startedAt } = JSON.parse(readFileSync(join(buildDir, STAMP), 'utf8')));
  } catch {
    return null; // never built, or a build in progress
  }
  if (typeof startedAt !== 'number') return null;
  for (const dir of sourceDirs) if (newestChange(dir) >= startedAt) return null;
  return pathToFileURL(join(buildDir, ENTRY)).href;
}
