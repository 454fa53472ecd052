// A hostile peer in a live swarm: a coordinator in this process, two honest `tessera
// contribute` processes, and an attacker that joins the run properly (so it has WebRTC links
// to the honest peers: it is their neighbour) and then sends them, and the coordinator, forged,
// replayed, unasked, oversized, malformed and unknown-member messages, and gather messages that
// are malformed, flooding or from the wrong round. Each must be dropped and counted, and the honest pair
// must keep training to identical weights. The attacker's connections live in a child process
// (remote-peer.ts), so this process never loads libwebrtc; the attacks are sealed here.
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ContributorEvent } from '../../src/contributor/contributor.ts';
import { sealEnvelope } from '../../src/net/envelope.ts';
import { encodePeerMessage } from '../../src/protocol/peer-messages.ts';
import { encodePiece } from '../../src/net/pieces.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/messages.ts';
import { readRunFile, startCoordinator, type StartedCoordinator } from '../../src/cli/coordinator-command.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { modelUpdate } from '../coordinator/helpers.ts';
import { commitsOf, spawnContributor, until, type ChildContributor } from './helpers.ts';
import { RemotePeer } from './remote-peer.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-adversary-'));
const children: ChildProcess[] = [];
let coordinator: StartedCoordinator | null = null;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await coordinator?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Honest = ChildContributor;

function startHonest(name: string, url: string): Honest {
  const h = spawnContributor(work, name, url);
  children.push(h.child);
  return h;
}

const commits = commitsOf;
const rejections = (h: Honest) => h.events.filter((e): e is Extract<ContributorEvent, { event: 'rejected' }> => e.event === 'rejected');

describe('a hostile peer in a swarm', () => {
  it('forged, replayed, oversized, malformed and unknown-member messages are dropped and counted; training goes on', async () => {
    await cryptoReady();
    const config = readRunFile(undefined, { run: 'adversary', innerSteps: 3, batch: 2, seq: 32, lr: 1e-2, warmup: 2, plannedRounds: 6, minMembers: 2, maxMessageBytes: 1 << 20, roundSeconds: 240 });
    // The attacker never syncs, so each round would wait the whole sync grace (15 s) for it.
    coordinator = await startCoordinator(config, { port: 0, stateDir: join(work, 'coordinator'), log: () => {}, validate: false, syncGraceMs: 1000 });
    const url = coordinator.server.url;
    const honest = [startHonest('a', url), startHonest('b', url)];

    // The attacker joins like anyone, but never syncs, so it is a peer and never a member.
    const peer = new RemotePeer(url, 4 << 20);
    const attacker = peer.key;
    let round = -1;
    // A non-member hears no `round` (protocol 2): the commits tell it the round under way.
    peer.onServer((m) => {
      if (m.type === 'commit') round = Math.max(round, m.round + 1);
    });
    try {
      await peer.joined;
      for (const h of honest) await until(`a link to ${h.key.address}`, () => peer.isConnected(h.key.address));
      await until('round 1', () => round >= 1);
      // Attack while that round runs (between rounds the coordinator calls any update stale).
      await until(`the honest pair training round ${round}`, () => honest.every((h) => h.events.some((e) => e.event === 'round' && e.round === round)));
      const [a, b] = honest;
      const seal = (key: Hotkey, r: number, payload: Uint8Array) => sealEnvelope(key, { kind: 'update', run: config.run, round: r, stage: 0 }, payload);
      // Forged: claims to be from a, signed with the attacker's key.
      const impostor = { address: a.key.address, publicKey: a.key.publicKey, sign: (m: Uint8Array) => attacker.sign(m) } as unknown as Hotkey;
      const forged = seal(impostor, round, modelUpdate(config, round, 7));
      // Replayed: a's real, committed round-0 update, re-sent by the attacker in a later round.
      const replayedA = new Uint8Array(await (await fetch(`${url.replace(/^ws/, 'http').replace(/\/ws$/, '')}/update/0/${a.key.address}`)).arrayBuffer());
      const staleOwn = seal(attacker, 0, modelUpdate(config, 0, 8));
      const malformed = seal(attacker, round, new TextEncoder().encode('not a SparseLoCo update at all'));
      const oversized = new Uint8Array(2 << 20);
      // The gather exchange's messages: not JSON, announcing more than a round holds, a round far ahead.
      const gather = (r: number, payload: Uint8Array) => sealEnvelope(attacker, { kind: 'gather', run: config.run, round: r, stage: 0 }, payload);
      const hashes = (n: number) => Array.from({ length: n }, (_, i) => i.toString(16).padStart(64, '0'));
      const gathers = [
        gather(round, new TextEncoder().encode('{"type":"have"')),
        gather(round, encodePeerMessage({ type: 'have', round, hashes: hashes(config.gatherK + 2) })),
        gather(round + 50, encodePeerMessage({ type: 'want', round: round + 50, hash: hashes(1)[0], piece: 0 })),
        // A piece nobody asked for.
        sealEnvelope(attacker, { kind: 'piece', run: config.run, round, stage: 0 }, encodePiece(hashes(1)[0], 0, new Uint8Array(100))),
      ];
      for (const h of honest) {
        for (const m of [forged, replayedA, staleOwn, malformed, oversized, ...gathers]) expect(await peer.sendToPeer(h.key.address, m)).toBe(true);
      }
      // And to the coordinator: forged, and an update from a peer that is not a member.
      peer.sendBinary(forged);
      peer.sendBinary(seal(attacker, round, modelUpdate(config, round, 9)));
      // An outsider that never joined.
      const outsider = new WebSocket(url);
      await new Promise<void>((resolve) => outsider.on('open', () => resolve()));
      outsider.send(JSON.stringify({ type: 'hello', version: PROTOCOL_VERSION }));
      outsider.send(seal(Hotkey.generate().key, round, modelUpdate(config, round, 10)));

      // A round after the attack closes with the honest pair alone.
      const target = round + 1;
      await until(`round ${target} committed by both honest peers`, () => honest.every((h) => commits(h).some((c) => c.round >= target)));
      outsider.close();

      for (const h of honest) {
        const reasons = new Set(rejections(h).map((e) => e.reason));
        console.log(`${h.key.address.slice(0, 8)} dropped: ${[...reasons].join(', ')}; frames dropped ${commits(h).at(-1)!.rejected.frames}`);
        expect(reasons).toContain('envelope-signature'); // forged
        expect(reasons).toContain('wrong-sender'); // a's replayed update, relayed by the attacker
        expect(reasons).toContain('unexpected-kind'); // updates pushed to a peer (neighbours serve pieces): an old round's, a malformed one
        expect(reasons).toContain('unasked'); // a piece pushed without a want
        expect(reasons).toContain('gather-malformed');
        expect(reasons).toContain('gather-flood');
        expect(reasons).toContain('stale-round'); // a gather message for a round far ahead
        expect(commits(h).at(-1)!.rejected.frames).toBeGreaterThanOrEqual(1); // oversized
        // Nothing from the attacker was ever applied: every commit holds the two honest updates.
        for (const c of commits(h)) expect(c.included).toBe(2);
      }
      const status = coordinator.coordinator.status();
      console.log(`coordinator refused: ${JSON.stringify(status.rejected)}`);
      expect(status.rejected['envelope-signature']).toBeGreaterThanOrEqual(1);
      expect(status.rejected['unknown-member']).toBeGreaterThanOrEqual(2);
      // Training went on: identical weights and falling loss.
      const ha = new Map(commits(a).map((c) => [c.round, c.weightsHash]));
      for (const c of commits(b)) if (ha.has(c.round)) expect(c.weightsHash).toBe(ha.get(c.round));
      const losses = commits(a).map((c) => c.loss!);
      expect(losses.at(-1)!).toBeLessThan(losses[0]);
    } finally {
      await peer.close();
      for (const h of honest) h.child.kill('SIGINT');
    }
  });
});
