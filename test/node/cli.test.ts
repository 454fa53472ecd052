// The command line as a user runs it: a real process through bin/tessera.mjs.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
