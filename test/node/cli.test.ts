// The command line as a user runs it: a real process through bin/tessera.mjs.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { main } from '../../src/cli/cli.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

function tessera(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, timedOut: r.error !== undefined };
}

describe('tessera command', () => {
  it('gpu --json describes the adapter and the process exits by itself', () => {
    const r = tessera(['gpu', '--json']);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(typeof report.adapter).toBe('string');
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(report.features)).toBe(true);
  });

  it('gpu says plainly when the adapter is software', () => {
    const r = tessera(['gpu', '--software']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/SOFTWARE adapter/);
  });

  it('with no adapter at all, names the fix instead of printing a stack', () => {
    const r = tessera(['gpu', '--software'], { TESSERA_SWIFTSHADER_ICD: '/nonexistent/icd.json' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/No WebGPU adapter was found/);
    expect(r.err).toMatch(/apt-get install chromium/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('an unknown command or option prints usage and exits 2', () => {
    expect(tessera(['frobnicate']).code).toBe(2);
    const r = tessera(['gpu', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/usage:/);
  });
});

/** `tessera …` through main(), in this process: its exit code and what it printed. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
  const code = await main(argv);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('argument mistakes: the command\'s own error and usage, exit 2, no stack', () => {
  afterEach(() => vi.restoreAllMocks());

  const cases: [string[], string, RegExp][] = [
    [['train', '--steps', '-5'], "tessera train: --steps must be an integer ≥ 1, got '-5'", /tessera train --model/],
    [['train', '--steps', 'ten'], "tessera train: --steps must be an integer ≥ 1, got 'ten'", /tessera train --model/],
    [['train', '--steps'], 'tessera train: --steps needs a value (--steps VALUE)', /tessera train --model/],
    [['train', '--stpes', '5'], "tessera train: unknown option '--stpes' (did you mean --steps?)", /tessera train --model/],
    [['swarm', '--peers', '-2'], "tessera swarm: --peers must be an integer ≥ 1, got '-2'", /tessera swarm --peers/],
    [['swarm', '--rounds', '--json'], "tessera swarm: --rounds needs a value (--rounds VALUE; for a value starting with '-', write --rounds=VALUE)", /tessera swarm --peers/],
    [['swarm', '--bogus'], "tessera swarm: unknown option '--bogus'", /tessera swarm --peers/],
    [['coordinator', '--score-sample', '-1'], "tessera coordinator: --score-sample must be a whole number ≥ 1, got '-1'", /tessera coordinator \[--port/],
    [['coordinator', '--port', 'http'], "tessera coordinator: --port must be a port number (0–65535), got 'http'", /tessera coordinator \[--port/],
    [['contribute', '--coordinator'], 'tessera contribute: --coordinator needs a value (--coordinator VALUE)', /tessera contribute --coordinator/],
    [['contribute', '--password', 'hunter2'], "tessera contribute: unknown option '--password' (did you mean --password-file?)", /tessera contribute --coordinator/],
    [['data', 'build', '--tokenizer'], 'tessera data: --tokenizer needs a value (--tokenizer VALUE)', /tessera data build/],
    [['wallet', 'create', '--walet', 'w.json'], "tessera wallet: unknown option '--walet' (did you mean --wallet?)", /tessera wallet create/],
    [['chain', '--netuid', '-3', '--subtensor'], 'tessera chain: --subtensor needs a value (--subtensor VALUE)', /tessera chain --subtensor/],
    [['gpu', '--jsno'], "tessera gpu: unknown option '--jsno' (did you mean --json?)", /tessera gpu \[--json\]/],
  ];
  for (const [argv, message, usage] of cases) {
    it(argv.join(' '), async () => {
      const r = await run(argv);
      expect(r.code).toBe(2);
      const [first, ...rest] = r.err.split('\n');
      expect(first).toBe(message);
      expect(rest.join('\n')).toMatch(usage);
      expect(r.err).not.toMatch(/\n\s+at |ERR_PARSE_ARGS|ambiguous|tessera — train a shared/);
      expect(r.out).toBe('');
    });
  }
});

describe('--store in every command that starts a coordinator: the same flag names and the same errors, exit 1', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });
  // None of these opens anything: the settings are refused before a bucket or a coordinator is started.
  const mistakes: [string[], string][] = [
    [['--store', 'gcs'], "--store must be 'disk' or 's3', got 'gcs'"],
    [['--store-config', 'bucket.json'], '--store-config is for --store s3'],
    [['--store', 's3'], 'TESSERA_S3_BUCKET is needed with --store s3 (or "bucket" in --store-config)'],
  ];
  for (const command of ['coordinator', 'swarm', 'simulate', 'web']) {
    for (const [flags, message] of mistakes) {
      it(`${command} ${flags.join(' ')}`, async () => {
        for (const v of ['TESSERA_S3_BUCKET', 'TESSERA_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) vi.stubEnv(v, '');
        const err: string[] = [];
        vi.spyOn(console, 'log').mockImplementation(() => {});
        vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.map(String).join(' ')));
        // `npm run web` is its own entry (src/cli/web-command.ts main), not a `tessera` subcommand.
        const code = command === 'web' ? await (await import('../../src/cli/web-command.ts')).main(flags) : await main([command, ...flags]);
        expect(code).toBe(1);
        expect(err.join('\n')).toBe(`tessera ${command}: ${message}`);
      });
    }
  }
});

describe('--store s3 as tessera swarm and simulate read it', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('gives the same bucket settings as tessera coordinator (environment, then --store-config field by field)', async () => {
    const { storeSettings } = await import('../../src/cli/store-settings.ts');
    const { parseSwarmArgs } = await import('../../src/cli/swarm-args.ts');
    const { parseSimulateArgs } = await import('../../src/cli/simulate-command.ts');
    const env = { TESSERA_S3_ENDPOINT: 'http://127.0.0.1:7480', TESSERA_S3_BUCKET: 'tessera-run', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'very-secret' };
    for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
    const expected = storeSettings('s3', undefined, env);
    expect(expected).toMatchObject({ bucket: 'tessera-run', endpoint: 'http://127.0.0.1:7480' });
    expect(parseSwarmArgs(['--store', 's3'])?.store).toEqual(expected);
    expect(parseSimulateArgs(['--store', 's3'])?.store).toEqual(expected);
    const file = join(mkdtempSync(join(tmpdir(), 'tessera-cli-store-')), 's3.json');
    writeFileSync(file, JSON.stringify({ bucket: 'from-file' }));
    expect(parseSwarmArgs(['--store', 's3', '--store-config', file])?.store).toMatchObject({ bucket: 'from-file', accessKeyId: 'AKID' });
    rmSync(dirname(file), { recursive: true, force: true });
    expect(parseSwarmArgs([])?.store).toBeNull();
    expect(parseSimulateArgs(['--store', 'disk'])?.store).toBeNull();
  });
});
