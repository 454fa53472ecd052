import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('Node process lifetime', () => {
  it('a script that destroys its GPU exits without process.exit', () => {
    const r = spawnSync(process.execPath, ['--import', './bin/register.mjs', 'test/node/exit-fixture.ts'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.error, 'the process had to be killed: something kept Node alive').toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('read 3');
  });
});
