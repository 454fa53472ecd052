// Start-up under CPU contention, as a user's loaded machine has it: `tessera swarm` starts 3
// contributors together while busy loops hold every core. Before kernels compiled off the
// event loop, each contributor's first forward compiled them synchronously — minutes on a
// loaded CPU "GPU" — so it sent no heartbeat, the coordinator dropped all three and their
// links timed out (measured: 3 of 3 dropped, 7-minute stalls). The heartbeat limit here is
// 30 s (run.json), not the default 60 s, so such a stall shows within the test's time; the
// longest stall measured after the change was 11 s on a machine far busier than CI.
// The busy loops hold the cores through start-up only (compiling, syncing, until each
// contributor has the weights): that is the phase the claim is about, and holding both cores
// for the whole run starved every other test file on CI's 2 cores.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../../src/train/checkpoint.ts';
import type { SwarmSummary } from '../../src/cli/swarm-command.ts';
import { BIN } from './helpers.ts';

/** The busy loops end by themselves after this, should the test not get to kill them. */
const HOG_MS = 20 * 60_000;

describe('tessera swarm start-up under CPU contention', () => {
  const work = mkdtempSync(join(tmpdir(), 'tessera-startup-'));
  const hogs: ChildProcess[] = [];
  afterAll(() => {
    for (const h of hogs) h.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('3 contributors started together while every core is busy: none dropped for silence, kernels compiled ahead, exactly R rounds, weights kept', async () => {
    writeFileSync(join(work, 'run.json'), JSON.stringify({
      run: 'startup', name: 'Start-up test', innerSteps: 2, batch: 2, seq: 32, lr: 1e-2, warmup: 1,
      plannedRounds: 2, roundSeconds: 600, heartbeatSeconds: 1, heartbeatMisses: 30,
    }));
    for (let i = 0; i < cpus().length; i++) {
      hogs.push(spawn(process.execPath, ['-e', `const end = Date.now() + ${HOG_MS}; while (Date.now() < end) {}`], { stdio: 'ignore' }));
    }
    const out = join(work, 'out');
    // Human output (not --json) streams each peer's start-up; the summary is read from --out.
    const child = spawn(process.execPath, [BIN, 'swarm', '--peers', '3', '--rounds', '1', '--no-validate', '--run', join(work, 'run.json'), '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let startedUpAt: number | null = null;
    const t0 = Date.now();
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (startedUpAt === null && (stdout.match(/^peer-\d+: got the weights after 0 rounds/gm) ?? []).length >= 3) {
        startedUpAt = Date.now();
        for (const h of hogs) h.kill('SIGKILL');
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    for (const h of hogs) h.kill('SIGKILL');
    if (code !== 0) throw new Error(`tessera swarm exited ${code}:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`);
    console.log(`start-up under busy loops: ${startedUpAt === null ? 'never ended' : `${((startedUpAt - t0) / 1000).toFixed(0)} s`}`);
    expect(startedUpAt).not.toBeNull(); // every contributor got the weights while the cores were held
    const line = readFileSync(join(out, 'summary.json'), 'utf8');
    const s = JSON.parse(line) as SwarmSummary;
    const stalls = s.peersDetail.map((p) => p.longestStallMs);
    console.log(`heartbeat drops ${s.heartbeatDrops}; longest event-loop stall per peer ${stalls.map((ms) => `${((ms ?? NaN) / 1000).toFixed(1)} s`).join(', ')}; kernels ${s.peersDetail.map((p) => p.kernelsCompiled).join(', ')}; peak RSS ${s.peersDetail.map((p) => `${((p.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`).join(', ')}; ${s.seconds.toFixed(0)} s`);
    expect(s.heartbeatDrops).toBe(0);
    expect(s.peersDetail).toHaveLength(3); // nobody replaced
    for (const p of s.peersDetail) {
      expect(p.kernelsCompiled).toBeGreaterThan(10); // compiled ahead, and said so
      expect(p.roundsCompleted).toBe(1);
      expect(Object.values(p.rejected).reduce((a, b) => a + b, 0)).toBe(0);
    }
    // Exactly the rounds asked for, each with every contributor's update.
    expect(s.lossPerRound.map((x) => [x.round, x.included])).toEqual([[0, 3]]);
    expect(s.weightsIdentical).toBe(true);
    // The final weights stay, as parameters only, where the summary says.
    expect(s.out.weights).toEqual([join(out, 'weights.ckpt')]);
    const kept = decodeCheckpoint(new Uint8Array(readFileSync(s.out.weights[0])));
    expect(kept.tensors.size).toBeGreaterThan(0);
    expect([...kept.tensors.keys()].every((k) => k.startsWith('param/'))).toBe(true);
  }, 1_600_000);
});
