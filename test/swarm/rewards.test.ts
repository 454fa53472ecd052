// The validator and the reward ledger in a live run: an honest contributor (`tessera
// contribute`), one that trains on data assigned to someone else (the same command with
// --sample-as), a lazy member that sends random noise of the right shape and size, and a
// copier that re-signs the honest peer's update as its own (it asks the honest peer for it,
// list and pieces, over the gather exchange, as any neighbour may, once the honest peer announces it). After a few rounds the honest
// one earns, the copier and the lazy one hold none (where the wrong-data one lands is logged:
// the assigned-data check ranks it below honest only over more rounds than a test affords);
// the ledger survives a restart, and a forged or replayed rewards request is refused.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { openEnvelope, sealEnvelope } from '../../src/net/envelope.ts';
import { toHex } from '../../src/base/hex.ts';
import { rewardsRequest, type ServerMessage } from '../../src/protocol/messages.ts';
import { encodePeerMessage, parsePeerMessage, type PeerMessage } from '../../src/protocol/peer-messages.ts';
import { decodePiece } from '../../src/net/pieces.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { modelUpdate } from '../coordinator/helpers.ts';
import { spawnContributor, until } from './helpers.ts';
import { RemotePeer } from './remote-peer.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-rewards-'));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

/**
 * A member with no GPU: it claims the consensus weights (it copies the fingerprint honest peers
 * report, as a cheat holding the weights would) and each round sends what `forge` makes. Its
 * connections (WebRTC included) live in a child process; this process, which holds the
 * validator's Dawn, never loads libwebrtc.
 */
class FakeMember {
  readonly peer: RemotePeer;
  private synced = -1;
  /** Updates it sent the coordinator. */
  delivered = 0;
  private sync: ReturnType<typeof setInterval> | undefined;

  constructor(
    url: string,
    private readonly config: RunConfig,
    private readonly c: StartedCoordinator,
    private readonly honest: () => string,
    private readonly forge: (round: number, fromPeer: Uint8Array | null) => Uint8Array | null,
    /** It asks the honest peer for its update (a copier does). */
    private readonly copies = false,
  ) {
    this.peer = new RemotePeer(url, config.maxMessageBytes);
    this.peer.onServer((m) => this.onServer(m));
    this.peer.onPeer((_from, m) => this.onPeer(m));
  }

  get key(): Hotkey {
    return this.peer.key;
  }

  async start(): Promise<void> {
    this.sync = setInterval(() => this.trySync(), 200);
    cleanups.push(() => this.stop());
    await this.peer.joined;
  }

  /** Stops claiming rounds (it reads the coordinator's status, gone once that stops) and leaves. */
  stop(): Promise<void> {
    clearInterval(this.sync);
    return this.peer.close();
  }

  /** Claims θ_start(r) once the honest peer has reported its fingerprint for round r. */
  private trySync(): void {
    const r = this.c.coordinator.round;
    const hash = this.c.coordinator.status().reports[r]?.[this.honest()]?.weightsHash;
    if (hash && this.synced < r) {
      this.synced = r;
      this.peer.send({ type: 'synced', round: r, weightsHash: hash, stage: 0 });
    }
  }

  private deliver(round: number, fromPeer: Uint8Array | null): void {
    const payload = this.forge(round, fromPeer);
    if (payload) this.delivered++;
    if (payload) this.peer.sendBinary(sealEnvelope(this.key, { kind: 'update', run: this.config.run, round, stage: 0 }, payload));
  }

  private onServer(m: ServerMessage): void {
    if (m.type === 'round') setTimeout(() => this.deliver(m.round, null), 500);
  }

  /** The honest update being copied: its list once the honest peer sent it, and the pieces so far. */
  private copying: { round: number; hash: string; pieces: string[]; parts: Uint8Array[] } | null = null;

  /**
   * A copier wants the honest peer's update as soon as it announces it — its piece list, then
   * its pieces one at a time, as any neighbour gathers — and delivers it as its own.
   */
  private onPeer(bytes: Uint8Array): void {
    const { header, payload } = openEnvelope(bytes, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes });
    if (!this.copies || header.sender !== this.honest()) return;
    const ask = (m: PeerMessage) => void this.peer.sendToPeer(header.sender, sealEnvelope(this.key, { kind: 'gather', run: this.config.run, round: m.round, stage: 0 }, encodePeerMessage(m)));
    const c = this.copying;
    if (header.kind === 'piece') {
      const piece = decodePiece(payload);
      if (!c || !piece || piece.hash !== c.hash || piece.index !== c.parts.length) return;
      c.parts.push(piece.data.slice());
      if (c.parts.length < c.pieces.length) return ask({ type: 'want', round: c.round, hash: c.hash, piece: c.parts.length });
      const whole = new Uint8Array(c.parts.reduce((n, p) => n + p.length, 0));
      c.parts.reduce((at, p) => (whole.set(p, at), at + p.length), 0);
      this.copying = null;
      return this.deliver(c.round, openEnvelope(whole, { run: this.config.run, maxPayloadBytes: this.config.maxMessageBytes }).payload);
    }
    const m = header.kind === 'gather' ? parsePeerMessage(payload) : null;
    if (m?.type === 'have') {
      this.copying = { round: m.round, hash: m.hashes[0], pieces: [], parts: [] };
      ask({ type: 'want-list', round: m.round, hash: m.hashes[0] });
    } else if (m?.type === 'list' && c?.hash === m.hash) {
      c.pieces = m.pieces;
      ask({ type: 'want', round: c.round, hash: c.hash, piece: 0 });
    }
  }
}

describe('validator and rewards', () => {
  it('honest earns; copier and lazy get nothing; the ledger persists; forged/replayed requests are refused', async () => {
    await cryptoReady();
    const config = readRunFile(undefined, { run: 'rewards', innerSteps: 2, batch: 1, seq: 32, lr: 1e-2, warmup: 2, plannedRounds: 10, minMembers: 4, roundSeconds: 60, epochRounds: 3, emissionPerEpoch: 300, rewardEscrowRounds: 1 });
    const stateDir = join(work, 'coordinator');
    // Unpaced: the scores themselves are under test here, so every round evaluates all four
    // (paced, a loaded machine samples one or none of them a round: test/coordinator/validator-queue.test.ts).
    let c = await startCoordinator(config, { port: 0, stateDir, log: (l) => process.env.TESSERA_TEST_LOG && console.log(l), software: true, unpacedScoring: true });
    cleanups.push(() => c.stop());
    const url = c.server.url;

    // Honest: the real command. Wrong data: the real command, training on another hotkey's batches.
    const honest = spawnContributor(work, 'honest', url, ['--software']);
    const wrong = spawnContributor(work, 'wrong', url, ['--software', '--sample-as', Hotkey.generate().key.address]);
    for (const p of [honest, wrong]) cleanups.push(() => p.child.exitCode === null && p.child.kill('SIGKILL'));
    const honestKey = honest.key;
    const wrongKey = wrong.key;
    const honestEvents = honest.events;

    const lazy = new FakeMember(url, config, c, () => honestKey.address, (round) => modelUpdate(config, round, 1000 + round));
    const copier = new FakeMember(url, config, c, () => honestKey.address, (_round, fromPeer) => fromPeer, true);
    await lazy.start();
    await copier.start();

    const ROUNDS = 4; // two epochs (3 rounds each): every round scored unpaced, ~4 evaluations a round
    await until(`${ROUNDS} rounds scored`, () => (c.ledger?.lastRound ?? -1) >= ROUNDS - 1);
    const ledger = c.ledger!;
    const epoch = Math.floor((ROUNDS - 1) / config.epochRounds);
    const standing = (k: Hotkey) => ledger.standing(k.address, epoch)!;
    const [h, w, l, cp] = [honestKey, wrongKey, lazy.key, copier.key].map(standing);
    console.log(`shares after ${ROUNDS} rounds: honest ${h.share.toFixed(3)}, wrong data ${w.share.toFixed(3)}, lazy ${l.share.toFixed(3)}, copier ${cp.share.toFixed(3)}; rewards ${h.totalReward.toFixed(1)} / ${w.totalReward.toFixed(1)} / ${l.totalReward.toFixed(1)} / ${cp.totalReward.toFixed(1)}`);
    // Not asserted: honest above wrong-data. The assigned-data check separates them only
    // statistically at this scale (margins of ~0.1% loss per round; honest's share over runs:
    // 0.65, 1.00, 0.38, 0.96), so one 6-round run cannot rank them reliably. Logged above.
    expect(copier.delivered).toBeGreaterThanOrEqual(1); // it did get the honest update from its neighbour, and sent it as its own
    expect(h.share).toBeGreaterThan(0);
    expect(h.share).toBeGreaterThan(Math.max(l.share, cp.share));
    expect(l.share).toBe(0);
    expect(cp.share).toBe(0);
    expect(l.totalReward).toBe(0);
    expect(cp.totalReward).toBe(0);
    expect(h.totalReward).toBeGreaterThan(0);
    // A one-round escrow here (the default is 4: longer than this test): the honest member's last round is held, nothing lost.
    expect(h.pendingReward).toBeGreaterThan(0);
    expect(h.forfeitedReward).toBe(0);
    expect([l.pendingReward, cp.pendingReward]).toEqual([0, 0]);
    // The honest contributor was told its standing live, after every scored round.
    expect(honestEvents.filter((e) => e.event === 'reward').length).toBeGreaterThanOrEqual(ROUNDS - 1);

    // Rewards over HTTP: a signed request works once; forged and replayed ones are refused.
    const http = url.replace(/^ws/, 'http').replace(/\/ws$/, '');
    const ask = (address: string, t: number, sig: Uint8Array) => fetch(`${http}/rewards/${address}?t=${t}&sig=${toHex(sig)}`);
    const t = Date.now();
    const good = honestKey.sign(rewardsRequest(config.run, honestKey.address, t));
    const ok = await ask(honestKey.address, t, good);
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { standing: { totalReward: number }; history: unknown[] };
    expect(body.standing.totalReward).toBeCloseTo(h.totalReward, 6);
    expect(body.history.length).toBeGreaterThanOrEqual(ROUNDS);
    expect((await ask(honestKey.address, t, good)).status).toBe(409); // replayed
    expect((await ask(honestKey.address, t + 1, lazy.key.sign(rewardsRequest(config.run, honestKey.address, t + 1)))).status).toBe(401); // forged
    expect((await ask(honestKey.address, t - 120_000, honestKey.sign(rewardsRequest(config.run, honestKey.address, t - 120_000)))).status).toBe(401); // stale

    // The ledger survives a restart of the coordinator.
    await Promise.all([lazy.stop(), copier.stop()]);
    honest.child.kill('SIGINT');
    wrong.child.kill('SIGINT');
    await c.stop();
    const reopened = new Ledger(join(stateDir, 'ledger.sqlite'));
    const lastRound = reopened.lastRound;
    const total = reopened.standing(honestKey.address, epoch)!.totalReward;
    reopened.close();
    expect(lastRound).toBeGreaterThanOrEqual(ROUNDS - 1); // rounds may have gone on meanwhile
    expect(total).toBeGreaterThanOrEqual(h.totalReward);
    c = await startCoordinator(config, { port: 0, stateDir, log: () => {}, software: true, unpacedScoring: true });
    expect(c.ledger!.lastRound).toBe(lastRound);
    expect(c.ledger!.standing(honestKey.address, epoch)!.totalReward).toBe(total);
  });
});
