// Rounds the validator has not scored when the coordinator stops are not lost: the stop says
// how many are left, and the next start on the same state folder scores them (real
// coordinator, validator on SwiftShader; two members over WebSocket that send real SparseLoCo
// updates of the tiny model and no WebRTC).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/protocol/messages.ts';
import { CoordinatorClient, type SocketLike } from '../../src/net/signaling.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
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
 * is synced — this test is about rounds being scored, not about who earns).
 */
async function member(c: StartedCoordinator): Promise<{ close(): void }> {
  const key = Hotkey.generate().key;
  const client = new CoordinatorClient(c.server.url, key, (u) => new WebSocket(u) as unknown as SocketLike);
  client.onMessage((m: ServerMessage) => {
    // A round is sent to its members only.
    if (m.type === 'round') client.sendBinary(seal(key, m.round, modelUpdate(c.coordinator.config, m.round, m.round + 1), { run: c.coordinator.config.run }));
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
