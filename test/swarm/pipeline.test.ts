// A pipelined swarm as a user runs it: `tessera swarm --peers 4 --stages 2` — a coordinator
// and four `tessera contribute` processes on loopback, the tiny model's two layers split into
// two stages, two replicas each; activations and their gradients go peer to peer over WebRTC
// (f16), each stage's replicas sync with SparseLoCo. In round 0 a stage-1 peer is killed in
// the middle of its inner steps: the stage-0 peers route its micro-batches to the other
// stage-1 replica, the round completes, and the contributor started in its place is placed by
// the coordinator in the stage that lost it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SwarmSummary } from '../../src/cli/swarm-command.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

describe('tessera swarm --stages 2 (2 × 2 replicas)', () => {
  it('loss falls; a stage-1 peer killed mid-round is routed around; the new peer is placed in the stage that lost it', () => {
    // Not --json: the run's log lines (coordinator and every peer) are what a failure shows
    // (a CI run once ended at the timeout with nothing to read); the summary is read from its file.
    const args = ['swarm', '--peers', '4', '--stages', '2', '--rounds', '3', '--inner-steps', '3', '--batch', '2', '--seq', '32', '--kill-stage', '1@0'];
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
    const file = /all the numbers: (\S+summary\.json)/.exec(r.stdout)?.[1];
    if (r.status !== 0 || !file) throw new Error(`tessera swarm exited ${r.status ?? r.signal}${r.error ? ` (${r.error.message})` : ''}:\n${r.stdout.slice(-12_000)}\n${r.stderr.slice(-3000)}`);
    const s = JSON.parse(readFileSync(file, 'utf8')) as SwarmSummary;
    console.log(`losses ${s.lossPerRound.map((x) => `${x.round}: ${x.loss?.toFixed(4)} (${x.included}/${x.members})`).join(' → ')}; ${s.seconds.toFixed(0)} s`);
    for (const p of s.peersDetail) console.log(`${p.name}: stage ${p.stage}, ${p.roundsCompleted} rounds, busy ${p.busyFraction?.toFixed(2)}, re-routed ${p.rerouted}, dropped ${p.droppedMicroBatches}${p.killed ? ', killed' : ''}`);
    expect(s.stages).toBe(2);
    // round-to-round noise is ±0.1 at this size: the later rounds' mean against the first
    const first = s.lossPerRound[0].loss!;
    const later = s.lossPerRound.slice(1).map((x) => x.loss!);
    expect(later.reduce((a, b) => a + b, 0) / later.length).toBeLessThan(first - 0.2);
    // both stages held by two replicas at the start
    const original = s.peersDetail.slice(0, 4);
    expect(original.map((p) => p.stage).sort()).toEqual([0, 0, 1, 1]);
    // the killed stage-1 peer: its round still completed for the three others
    const killed = s.peersDetail.find((p) => p.killed)!;
    expect(killed.stage).toBe(1);
    expect(killed.roundsCompleted).toBe(0);
    const round0 = s.lossPerRound.find((x) => x.round === 0)!;
    expect(round0.members).toBe(3); // all four started it (minMembers = --peers); the killed one left
    expect(round0.included).toBe(3);
    expect(round0.loss).not.toBeNull();
    // the run goes on until the replacement has trained a round: the survivors train every one
    for (const p of original.filter((q) => !q.killed)) expect(p.roundsCompleted).toBe(s.lossPerRound.length);
    // its replacement went to stage 1 and trained there
    const replacement = s.peersDetail[4];
    expect(replacement.stage).toBe(1);
    expect(replacement.roundsCompleted).toBeGreaterThan(0);
    // replicas of a stage hold the same weights after every commit
    expect(s.weightsIdentical).toBe(true);
  });
});
