// A coordinator restarted mid-run: contributors lose it, reconnect with backoff, and the run
// resumes at the round after the last committed one, from the state on disk, with the
// replicas still identical.
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
import { cryptoReady } from '../../src/wallet/keys.ts';
import { commitsOf, spawnContributor, until, type ChildContributor } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-restart-'));
const children: ChildProcess[] = [];
let coordinator: StartedCoordinator | null = null;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await coordinator?.stop();
  rmSync(work, { recursive: true, force: true });
});

function contributor(name: string, url: string): ChildContributor {
  const c = spawnContributor(work, name, url);
  children.push(c.child);
  return c;
}
const warnings = (c: ChildContributor) => c.events.flatMap((e) => (e.event === 'warning' ? [e.text] : []));

describe('coordinator restart', () => {
  it('contributors reconnect and the run resumes where it was, from the saved state', async () => {
    await cryptoReady();
    const config = readRunFile(undefined, { run: 'restart', innerSteps: 2, batch: 2, seq: 32, plannedRounds: 10, minMembers: 2 });
    const stateDir = join(work, 'coordinator');
    coordinator = await startCoordinator(config, { port: 0, stateDir, log: () => {}, validate: false });
    const port = coordinator.server.port;
    const peers = [contributor('a', coordinator.server.url), contributor('b', coordinator.server.url)];
    await until('round 1 committed', () => peers.every((p) => commitsOf(p).some((c) => c.round >= 1)));
    await coordinator.stop();
    const committed = Math.max(...peers.flatMap((p) => commitsOf(p).map((c) => c.round)));
    coordinator = await startCoordinator(config, { port, stateDir, log: () => {}, validate: false });
    expect(coordinator.coordinator.round).toBe(committed + 1);
    await until('two more rounds after the restart', () => peers.every((p) => commitsOf(p).some((c) => c.round >= committed + 2)));
    for (const p of peers) expect(warnings(p).some((w) => w.startsWith('lost the coordinator'))).toBe(true);
    // Round numbers continue without a gap or a repeat, and the replicas agree throughout.
    const [a, b] = peers.map((p) => new Map(commitsOf(p).map((c) => [c.round, c.weightsHash])));
    for (let r = 0; r <= committed + 2; r++) {
      expect(a.has(r), `a applied round ${r}`).toBe(true);
      expect(b.get(r)).toBe(a.get(r));
    }
    for (const p of peers) p.child.kill('SIGINT');
  });
});
