// Rounds the validator has not scored when the coordinator stops are not lost: the stop says
// how many are left, and the next start on the same state folder scores them (real
// coordinator, validator on SwiftShader; two members over WebSocket that send real SparseLoCo
// updates of the tiny model and no WebRTC). Nor when it is killed (SIGKILL, a real
// `tessera coordinator` process): the next start scores every round closed before the kill.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/protocol/messages.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import { CoordinatorClient, type SocketLike } from '../../src/net/signaling.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
import { RESTART_FILE } from '../../src/coordinator/validator-restart.ts';
import { vulkanEnvFix } from '../../bin/vulkan-env.mjs';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { modelUpdate, seal } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-unscored-'));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

async function until(what: string, ready: () => boolean, timeoutMs = 400_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A member that says it holds each round's weights and sends a real update as soon as a round
 * includes it (both members send the same one: the validator calls one a copy, and neither
 * is synced — this test is about rounds being scored, not about who earns). `gate`: rounds
 * after the first wait for it.
 */
async function member(c: StartedCoordinator | { url: string; config: RunConfig }, gate: Promise<void> = Promise.resolve()): Promise<{ close(): void }> {
  const key = Hotkey.generate().key;
  const [url, config] = 'server' in c ? [c.server.url, c.coordinator.config] : [c.url, c.config];
  const client = new CoordinatorClient(url, key, (u) => new WebSocket(u) as unknown as SocketLike);
  client.onMessage((m: ServerMessage) => {
    // A round is sent to its members only.
    if (m.type === 'round') void (m.round === 0 ? Promise.resolve() : gate).then(() => client.sendBinary(seal(key, m.round, modelUpdate(config, m.round, m.round + 1), { run: config.run })));
    if (m.type === 'commit') client.send({ type: 'synced', round: m.round + 1, weightsHash: 'not-the-validators', stage: 0 });
  });
  await client.connect();
  const beat = setInterval(() => client.send({ type: 'heartbeat' }), 2000);
  const close = () => {
    clearInterval(beat);
    client.close();
  };
  cleanups.push(close);
  client.send({ type: 'synced', round: 0, weightsHash: 'not-the-validators', stage: 0 });
  return { close };
}

describe('rounds not scored at a stop', () => {
  it('are counted at the stop, kept, and scored by the next start on the same state folder', async () => {
    await cryptoReady();
    const config = readRunFile(undefined, { run: 'unscored', innerSteps: 2, batch: 1, seq: 16, minMembers: 2, roundSeconds: 120 });
    const stateDir = join(work, 'coordinator');
    const logs: string[] = [];
    const log = (l: string) => {
      logs.push(l);
      if (process.env.TESSERA_TEST_LOG) console.log(l);
    };
    // Three rounds closed with nobody validating: a backlog the validator has never seen.
    // roundLimit: exactly 3 (members deliver at once, so more could close before the stop).
    const relay = await startCoordinator(config, { port: 0, stateDir, log, validate: false, roundLimit: 3 });
    let relayStopped = false;
    cleanups.push(() => relayStopped || relay.stop());
    const members = [await member(relay), await member(relay)];
    await until('3 rounds closed', () => relay.coordinator.round >= 3);
    for (const m of members) m.close();
    relayStopped = true;
    expect(await relay.stop()).toEqual({ unscoredRounds: 0 });

    // A validating start finds them and begins; stopped at once, it finishes at most the round in hand.
    const first = await startCoordinator(config, { port: 0, stateDir, log, software: true });
    let firstStopped = false;
    cleanups.push(() => firstStopped || first.stop());
    expect(logs).toContain('validator: 3 closed round(s) not scored yet (rounds 0–2): scoring them first');
    expect(first.coordinator.status()).toMatchObject({ round: 3, validating: true, pendingRounds: 3 });
    firstStopped = true;
    const { unscoredRounds } = await first.stop();
    expect(unscoredRounds).toBeGreaterThanOrEqual(2);
    const from = 3 - unscoredRounds;
    expect(logs.join('\n')).toContain(`validator: stopped with ${unscoredRounds} closed round(s) not scored (rounds ${from}–2); they are kept in ${stateDir}`);

    // The next start scores what was left, from the weights the stop saved.
    const again = await startCoordinator(config, { port: 0, stateDir, log, software: true });
    cleanups.push(() => again.stop());
    const ledger = again.ledger!;
    await until('every closed round scored', () => ledger.lastRound >= 2);
    expect(ledger.skippedRounds()).toEqual([]);
    expect(ledger.scoredRounds).toBe(3);
    expect(again.coordinator.status()).toMatchObject({ scoredRounds: 3, pendingRounds: 0 });
  });
});

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

describe('rounds not scored at a crash', () => {
  it('are scored by the next start on the same state folder, though more rounds closed than the state keeps', async () => {
    await cryptoReady();
    const overrides = { run: 'killed', innerSteps: 2, batch: 1, seq: 16, minMembers: 2, roundSeconds: 120 };
    const config = readRunFile(undefined, overrides);
    const stateDir = join(work, 'killed');
    const runFile = join(work, 'killed.json');
    writeFileSync(runFile, JSON.stringify(overrides));
    // A real `tessera coordinator` process (its own group, so the kill reaches all of it).
    const child = spawn(process.execPath, [BIN, 'coordinator', '--port', '0', '--run', runFile, '--state', stateDir, '--software'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(vulkanEnvFix() ?? {}), TESSERA_VULKAN_ENV_DONE: '1' },
    });
    const exited = new Promise<string | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    };
    cleanups.push(kill);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (process.env.TESSERA_TEST_LOG) process.stdout.write(d);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await until('the coordinator to listen', () => /--coordinator (ws:\/\/\S+)/.test(out), 120_000);
    const url = /--coordinator (ws:\/\/\S+)/.exec(out)![1];
    // Round 0 is scored before the others run (its weights are the validator's first saved
    // ones); then rounds close far faster than it scores, past the 20 the state keeps.
    let open = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const members = [await member({ url, config }, gate), await member({ url, config }, gate)];
    await until('round 0 scored', () => /validator: round 0 \w{8} /.test(out));
    open();
    await until('round 21 closed', () => /round 21 closed/.test(out), 120_000);
    kill();
    expect(await exited).toBe('SIGKILL');
    for (const m of members) m.close();
    // What the killed process kept for this: its weights after round 0 and what its queue measured.
    expect(JSON.parse(readFileSync(join(stateDir, RESTART_FILE), 'utf8'))).toMatchObject({ weightsRound: expect.any(Number), pacing: { intervalMs: expect.any(Number), fixedMs: expect.any(Number) } });

    const again = await startCoordinator(config, { port: 0, stateDir, log: () => {}, software: true });
    cleanups.push(() => again.stop());
    const closed = again.coordinator.round;
    expect(closed).toBeGreaterThanOrEqual(22);
    const ledger = again.ledger!;
    await until('every closed round decided', () => ledger.lastRound >= closed - 1);
    expect(ledger.skippedRounds()).toEqual([]);
    expect(ledger.scoredRounds).toBe(closed);
    expect(again.coordinator.status()).toMatchObject({ scoredRounds: closed, pendingRounds: 0, skippedRounds: 0 });
  });
});
