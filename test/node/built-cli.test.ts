// The `tessera` command as npm install builds it (bin/build-cli.mjs → dist/cli) and the rule
// that runs it only while it is newer than every source (bin/built-cli.mjs). The build here
// goes to a folder of its own beside dist/cli (same depth, so its relative URLs hold), never
// replacing the one other tests' processes may be starting from.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildCli } from '../../bin/build-cli.mjs';
import { ENTRY, STAMP, freshBuild } from '../../bin/built-cli.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./built-cli-fixture.mjs', import.meta.url));

describe('the built command', () => {
  let buildDir = '';

  beforeAll(async () => {
    mkdirSync(join(ROOT, 'dist'), { recursive: true });
    buildDir = mkdtempSync(join(ROOT, 'dist', 'cli-test-'));
    await buildCli(buildDir);
  }, 120_000);
  afterAll(() => rmSync(buildDir, { recursive: true, force: true }));

  function built(args: string[]) {
    const r = spawnSync(process.execPath, [FIXTURE, buildDir, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr, timedOut: r.error !== undefined };
  }

  it('--help prints the usage from an entry that loads no command', () => {
    const r = built(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^tessera — train a shared language model/);
    expect(r.out).toMatch(/tessera swarm --peers N --rounds R/);
    // Every subcommand is a chunk of its own, imported only when it runs.
    const entry = readFileSync(join(buildDir, ENTRY), 'utf8');
    expect(entry).not.toMatch(/from "webgpu"|from "@polkadot|from "@roamhq\/wrtc"/);
    expect(readdirSync(buildDir).some((f) => f.startsWith('swarm-command-'))).toBe(true);
  });

  it('gpu --json reaches WebGPU and exits by itself', () => {
    const r = built(['gpu', '--json']);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  });

  it('an unknown command exits 2 with the usage, as from source', () => {
    const r = built(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command 'frobnicate'/);
  });

  it('carries the WGSL kernels inside, as text', () => {
    const wgsl = readFileSync(join(ROOT, 'shaders', readdirSync(join(ROOT, 'shaders')).find((f) => f.endsWith('.wgsl'))!), 'utf8');
    const firstLine = wgsl.split('\n').find((line) => line.trim() !== '' && !line.trim().startsWith('//'))!;
    const chunks = readdirSync(buildDir).filter((f) => f.endsWith('.mjs')).map((f) => readFileSync(join(buildDir, f), 'utf8'));
    expect(chunks.some((code) => code.includes(JSON.stringify(firstLine).slice(1, -1)) || code.includes(firstLine))).toBe(true);
  });
});

describe('when the build may run (freshBuild)', () => {
  const base = mkdtempSync(join(tmpdir(), 'tessera-fresh-'));
  const buildDir = join(base, 'dist', 'cli');
  const src = join(base, 'src');
  const nested = join(src, 'node');
  const builtAt = Date.now() - 60_000;
  const before = new Date(builtAt - 60_000);

  beforeAll(() => {
    mkdirSync(buildDir, { recursive: true });
    mkdirSync(nested, { recursive: true });
    writeFileSync(join(nested, 'cli.ts'), 'export {};\n');
    writeFileSync(join(buildDir, STAMP), JSON.stringify({ startedAt: builtAt }));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  /** Sources last changed before the build started. */
  function settle() {
    for (const path of [join(nested, 'cli.ts'), nested, src]) utimesSync(path, before, before);
  }

  it('runs a build newer than every source', () => {
    settle();
    expect(freshBuild(buildDir, [src])).toBe(pathToFileURL(join(buildDir, ENTRY)).href);
  });

  it('not once a source is edited after it', () => {
    settle();
    writeFileSync(join(nested, 'cli.ts'), 'export const edited = 1;\n');
    expect(freshBuild(buildDir, [src])).toBeNull();
  });

  it('not once a source is added or removed (its folder changes)', () => {
    settle();
    writeFileSync(join(nested, 'new.ts'), 'export {};\n');
    expect(freshBuild(buildDir, [src])).toBeNull();
    settle();
    utimesSync(join(nested, 'new.ts'), before, before);
    rmSync(join(nested, 'new.ts'));
    expect(freshBuild(buildDir, [src])).toBeNull();
  });

  it('not without a finished build (no stamp)', () => {
    settle();
    const empty = join(base, 'dist', 'none');
    mkdirSync(empty, { recursive: true });
    expect(freshBuild(empty, [src])).toBeNull();
  });
});

describe('before npm install', () => {
  it('says to run npm install, without a stack', () => {
    // The launcher alone, where no node_modules can be found: tsx is missing as in a fresh clone.
    const repo = mkdtempSync(join(tmpdir(), 'tessera-clone-'));
    try {
      cpSync(join(ROOT, 'bin'), join(repo, 'bin'), { recursive: true });
      for (const dir of ['src', 'shaders']) mkdirSync(join(repo, dir));
      const r = spawnSync(process.execPath, [join(repo, 'bin', 'tessera.mjs'), '--help'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe('tessera: the dependencies are not installed; run `npm install` in this folder first.');
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
