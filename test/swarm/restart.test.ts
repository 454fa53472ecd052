// A coordinator restarted mid-run: contributors lose it, reconnect with backoff, and the run
// resumes at the round after the last committed one, from the state on disk, with the
// replicas still identical.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContributorEvent } from '../../src/net/contributor.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/node/coordinator-command.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'tessera-restart-'));
const children: ChildProcess[] = [];
let coordinator: StartedCoordinator | null = null;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await coordinator?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Commit = Extract<ContributorEvent, { event: 'commit' }>;

function contributor(name: string, url: string): { commits: Commit[]; warnings: string[]; child: ChildProcess } {
  const keyFile = join(work, `${name}.key`);
  writeFileSync(keyFile, Hotkey.generate().mnemonic, { mode: 0o600 });
  const child = spawn(process.execPath, [BIN, 'contribute', '--coordinator', url, '--key', keyFile, '--state', join(work, name), '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const out = { commits: [] as Commit[], warnings: [] as string[], child };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
      const line = buf.slice(0, nl);
      if (!line.startsWith('{')) continue;
      const e = JSON.parse(line) as ContributorEvent;
      if (e.event === 'commit') out.commits.push(e);
      if (e.event === 'warning') out.warnings.push(e.text);
    }
  });
  return out;
}

async function until(what: string, ready: () => boolean, timeoutMs = 240_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('coordinator restart', () => {
  it('contributors reconnect and the run resumes where it was, from the saved state', async () => {
    await cryptoReady();
    const config = readRunFile(undefined, { run: 'restart', innerSteps: 2, batch: 2, seq: 32, plannedRounds: 10, minMembers: 2 });
    const stateDir = join(work, 'coordinator');
    coordinator = await startCoordinator(config, { port: 0, stateDir, log: () => {} });
    const port = coordinator.server.port;
    const peers = [contributor('a', coordinator.server.url), contributor('b', coordinator.server.url)];
    await until('round 1 committed', () => peers.every((p) => p.commits.some((c) => c.round >= 1)));
    await coordinator.stop();
    const committed = Math.max(...peers.flatMap((p) => p.commits.map((c) => c.round)));
    coordinator = await startCoordinator(config, { port, stateDir, log: () => {} });
    expect(coordinator.coordinator.round).toBe(committed + 1);
    await until('two more rounds after the restart', () => peers.every((p) => p.commits.some((c) => c.round >= committed + 2)));
    for (const p of peers) expect(p.warnings.some((w) => w.startsWith('lost the coordinator'))).toBe(true);
    // Round numbers continue without a gap or a repeat, and the replicas agree throughout.
    const [a, b] = peers.map((p) => new Map(p.commits.map((c) => [c.round, c.weightsHash])));
    for (let r = 0; r <= committed + 2; r++) {
      expect(a.has(r), `a applied round ${r}`).toBe(true);
      expect(b.get(r)).toBe(a.get(r));
    }
    for (const p of peers) p.child.kill('SIGINT');
  });
});
