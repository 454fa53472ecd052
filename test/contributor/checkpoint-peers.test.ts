// A late joiner's checkpoint from its neighbours over real WebRTC links (@roamhq/wrtc on
// loopback, PeerMesh and the contributor's Inbox, signaling handed across in-process) and from
// a real coordinator's store (its HTTP server and checkpoint routes, the asked uploader's
// accepted upload): an honest neighbour holds all but two pieces, a lying one holds every piece
// with a flipped byte. The joiner ends with the committed checkpoint, byte for byte: every piece
// the honest neighbour holds came from it, the two it lacks from the store, the liar's pieces
// were refused, counted, and the liar was not asked again.
import wrtc from '@roamhq/wrtc';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointPeers, MAX_CONCURRENT_CHECKPOINT_SENDS } from '../../src/contributor/checkpoint-peers.ts';
import { fetchCheckpoint } from '../../src/contributor/checkpoint-fetch.ts';
import { Inbox, Refusals } from '../../src/contributor/inbox.ts';
import { Changes, systemClock } from '../../src/contributor/waiting.ts';
import { PeerMesh } from '../../src/net/mesh.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import { splitPieces } from '../../src/protocol/checkpoint-manifest.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { checkpointAsked, uploadAsked } from '../support/bucket-checkpoint.ts';
import { joined } from '../coordinator/checkpoint-support.ts';
import { devKeys, removeTempDirs, tempDir, testConfig } from '../coordinator/helpers.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const PIECE = 64 * 1024;
const meshes: PeerMesh[] = [];

afterAll(async () => {
  for (const m of meshes.splice(0)) m.close();
  removeTempDirs();
  // End libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
  expect(await releaseWebRtc()).toEqual([]);
});

/** One peer: its mesh, inbox and checkpoint side, linked to `neighbours`. */
function peer(key: Hotkey, config: RunConfig, neighbours: () => string[], relay: (from: string, to: string, data: unknown) => void) {
  const refusals = new Refusals(() => {});
  const changes = new Changes(systemClock, () => false);
  let mesh: PeerMesh;
  const ckpt = new CheckpointPeers({ key, clock: systemClock, changes, config: () => config, stage: () => 0, mesh: () => mesh, refused: (r, from) => refusals.count(r.reason, from, r.message) });
  const inbox = new Inbox({
    config: () => config, peers: neighbours,
    piece: () => null, gather: () => null, handoff: () => null, weightsRequest: () => {}, weights: () => false,
    checkpoint: (from, payload) => ckpt.admit(from, payload),
    checkpointRange: (from, header, payload) => ckpt.admitRange(from, header, payload),
  }, refusals);
  mesh = new PeerMesh(key.address, {
    wrtc, iceServers: [], maxMessageBytes: config.maxMessageBytes + 65536,
    sendSignal: (to, data) => relay(key.address, to, data),
    onMessage: (from, m) => inbox.admit(from, m),
    onLink: (p, up) => (up ? changes.notify() : ckpt.linkDown(p)),
  });
  meshes.push(mesh);
  return { key, mesh, ckpt, refusals };
}

describe('checkpoint pieces from neighbours (real WebRTC links, a real coordinator store)', () => {
  it('a joiner takes what its honest neighbour holds from it, refuses the liar, and takes only what the neighbours lack from the store', async () => {
    const keys = await devKeys();
    const config = testConfig({ minMembers: 3, checkpointPieceBytes: PIECE });
    const s = await checkpointAsked(config, [keys.alice, keys.bob, keys.carol], tempDir());
    try {
      await uploadAsked(s);
      const pieces = await splitPieces(s.weights.parts, PIECE);
      expect(pieces.length).toBeGreaterThanOrEqual(6);
      const round = s.weights.round;
      const peers: Record<string, ReturnType<typeof peer>> = {};
      const relay = (from: string, to: string, data: unknown) => setImmediate(() => peers[to]?.mesh.signal(from, JSON.parse(JSON.stringify(data))));
      const [joinerKey, honestKey, liarKey] = [keys.dave, keys.alice, keys.bob];
      const joiner = (peers[joinerKey.address] = peer(joinerKey, config, () => [honestKey.address, liarKey.address], relay));
      const honest = (peers[honestKey.address] = peer(honestKey, config, () => [joinerKey.address], relay));
      const liar = (peers[liarKey.address] = peer(liarKey, config, () => [joinerKey.address], relay));
      // The honest neighbour lacks two pieces; the liar claims all, every one with a flipped byte.
      const lacks = new Set([pieces[1].hash, pieces.at(-1)!.hash]);
      expect(honest.ckpt.keep(round, 0, pieces.filter((p) => !lacks.has(p.hash)))).toBe(true);
      liar.ckpt.keep(round, 0, pieces.map((p) => ({ hash: p.hash, bytes: p.bytes.map((b, i) => (i === 7 ? b ^ 1 : b)) })));
      joiner.mesh.setPeers([honestKey.address, liarKey.address]);
      honest.mesh.setPeers([joinerKey.address]);
      liar.mesh.setPeers([joinerKey.address]);
      for (const p of [honestKey, liarKey]) expect(await joiner.mesh.waitFor(p.address, 20_000)).toBe(true);

      const before = s.server.traffic();
      const got = await fetchCheckpoint({ http: nodeHttpClient(), httpBase: s.http, config, stage: 0, peers: joiner.ckpt });
      const storeSent = s.server.traffic().sent - before.sent;
      expect(got?.round).toBe(round);
      expect(Buffer.from(got!.bytes).equals(joined(s.weights.parts))).toBe(true);
      const lacked = pieces.filter((p) => lacks.has(p.hash)).reduce((n, p) => n + p.bytes.length, 0);
      expect(got!.sources).toMatchObject({ piecesFromPeers: pieces.length - 2, piecesFromStore: 2, bytesFromStore: lacked, byPeer: { [honestKey.address]: pieces.length - 2 } });
      // The coordinator sent the two lacked pieces (and the manifest and commit), not the checkpoint.
      expect(storeSent).toBeLessThan(lacked + 64 * 1024);
      expect(joiner.refusals.byReason['bad-checkpoint-piece']).toBe(1); // the liar, once: never asked again
      expect(honest.ckpt.serving.bytes).toBe(s.weights.bytes - lacked);
      // The joiner now holds the checkpoint and serves it in turn.
      expect(joiner.ckpt.holding()).toEqual({ round, stage: 0, pieces: pieces.length });
      expect(MAX_CONCURRENT_CHECKPOINT_SENDS).toBe(2);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
