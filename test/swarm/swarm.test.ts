// `tessera swarm` as a user runs it: a coordinator and real `tessera contribute` processes
// on loopback, each with its own Dawn device (SwiftShader here) and WebRTC links. Slow by
// nature on a CPU "GPU", so the model is tiny and the rounds short.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SwarmSummary } from '../../src/cli/swarm-command.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function swarm(args: string[]): SwarmSummary {
  // The final weights go to a temp folder, not .tessera/swarm/ under the repository.
  const out = mkdtempSync(join(tmpdir(), 'tessera-swarm-out-'));
  const r = spawnSync(process.execPath, [BIN, 'swarm', '--no-validate', '--inner-steps', '3', '--batch', '2', '--seq', '32', '--out', out, '--json', ...args], { encoding: 'utf8', timeout: 600_000 });
  rmSync(out, { recursive: true, force: true });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{') && l.includes('"summary"'));
  if (r.status !== 0 || !line) throw new Error(`tessera swarm exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as SwarmSummary;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

describe('tessera swarm', () => {
  it("the README's demo, run as written: 3 contributors train tiny for exactly 3 rounds, the loss falls, every replica holds identical weights after each outer step, and it ends with a short summary and the weights kept", () => {
    // The README's run command is `npm install && <demo>`; the suite runs in a checkout that
    // this same `npm install` set up, so only the demo itself is run here, verbatim.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const runLine = /\*\*Run it\*\*[\s\S]*?```sh\n(.+)\n```/.exec(readme)?.[1];
    expect(runLine).toMatch(/^npm install && npx tessera swarm /);
    const demo = runLine!.slice('npm install && '.length);
    const r = spawnSync('sh', ['-c', demo], { cwd: ROOT, encoding: 'utf8', timeout: 1_200_000 });
    const weights = /final weights: (\S+)/.exec(r.stdout)?.[1];
    if (r.status !== 0 || !weights) throw new Error(`${demo} exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    const outDir = join(ROOT, dirname(weights));
    try {
      console.log(r.stdout.slice(r.stdout.indexOf('done:')));
      // A person reads the end: no JSON, a few lines.
      const summaryText = r.stdout.slice(r.stdout.indexOf('done:'));
      expect(summaryText).toMatch(/^done: 3 of 3 rounds of tiny with 3 contributors/);
      expect(summaryText.trim().split('\n').length).toBeLessThanOrEqual(12);
      expect(r.stdout.split('\n').some((l) => l.startsWith('{'))).toBe(false);
      expect(statSync(join(ROOT, weights)).size).toBeGreaterThan(0);
      const s = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as SwarmSummary;
      expect(s.lossPerRound.map((x) => x.round)).toEqual([0, 1, 2]);
      for (const x of s.lossPerRound) expect(x.included).toBe(3);
      expect(s.lossPerRound[2].loss!).toBeLessThan(s.lossPerRound[0].loss! - 0.2);
      for (const p of s.peersDetail) {
        expect(p.roundsCompleted).toBe(3);
        expect(p.share!).toBeGreaterThan(0); // all honest: the validator pays each of them
      }
      // After each commit, every peer's θ_start fingerprint is the same.
      for (let round = 0; round < 3; round++) {
        const hashes = Object.values(s.weightsHashes[round]);
        expect(hashes).toHaveLength(3);
        expect(new Set(hashes).size).toBe(1);
      }
      expect(s.weightsIdentical).toBe(true);
      expect(total(s.rejected.coordinator)).toBe(0);
      expect(total(s.rejected.peers)).toBe(0);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 1_300_000);

  it('a contributor killed while sending: the others finish the round, the run goes on, a new contributor joins and catches up', () => {
    // 3 rounds asked for; with a kill the run goes on until the newcomer has trained one.
    const s = swarm(['--peers', '3', '--rounds', '3', '--kill', '1@1']);
    const byName = new Map(s.peersDetail.map((p) => [p.name, p]));
    console.log(`rounds ${s.lossPerRound.map((r) => `${r.round}:${r.included}/${r.members}`).join(' ')}; newcomer synced from ${byName.get('peer-3')?.syncedFrom}; ${s.seconds.toFixed(0)} s`);
    expect(byName.get('peer-1')!.killed).toBe(true);
    expect(s.lossPerRound.map((r) => r.round).slice(0, 3)).toEqual([0, 1, 2]);
    // Round 1 closed with the survivors (and the killed peer's update if it got out whole).
    expect(s.lossPerRound[1].included).toBeGreaterThanOrEqual(2);
    // The survivors trained every round; the run lasts until the newcomer has trained one.
    expect(byName.get('peer-0')!.roundsCompleted).toBe(s.lossPerRound.length);
    expect(byName.get('peer-2')!.roundsCompleted).toBe(s.lossPerRound.length);
    // The replacement joined midway, got the current weights and trained from then on.
    const newcomer = byName.get('peer-3')!;
    expect(newcomer.syncedFrom).toMatch(/peer|checkpoint/);
    expect(newcomer.roundsCompleted).toBeGreaterThanOrEqual(1);
    const lastRound = Object.keys(s.weightsHashes).map(Number).sort((a, b) => b - a)[0];
    expect(Object.keys(s.weightsHashes[lastRound])).toContain('peer-3');
    expect(s.weightsIdentical).toBe(true);
    expect(s.lossPerRound.at(-1)!.loss!).toBeLessThan(s.lossPerRound[0].loss!);
  });
});
