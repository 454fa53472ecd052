// A late joiner's checkpoint from its neighbours over real WebRTC links (@roamhq/wrtc on
// loopback, PeerMesh and the contributor's Inbox, signaling handed across in-process) and from
// a real coordinator's store (its HTTP server and checkpoint routes, the asked uploader's
// accepted upload): an honest neighbour holds all but two pieces, a lying one holds every piece
// with a flipped byte. The joiner ends with the committed checkpoint, byte for byte: every piece
// the honest neighbour holds came from it, the two it lacks from the store, the liar's pieces
// were refused, counted, and the liar was not asked again.
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CONCURRENT_CHECKPOINT_SENDS } from '../../src/contributor/checkpoint-peers.ts';
import { fetchCheckpoint } from '../../src/contributor/checkpoint-fetch.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import { splitPieces } from '../../src/protocol/checkpoint-manifest.ts';
import { checkpointAsked, uploadAsked } from '../support/bucket-checkpoint.ts';
import { checkpointPeers } from '../support/checkpoint-peer.ts';
import { joined } from '../coordinator/checkpoint-support.ts';
import { devKeys, removeTempDirs, tempDir, testConfig } from '../coordinator/helpers.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const PIECE = 64 * 1024;
const closers: (() => void)[] = [];

afterAll(async () => {
  for (const c of closers.splice(0)) c();
  removeTempDirs();
  // End libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
  expect(await releaseWebRtc()).toEqual([]);
});

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
      // Dave joins; Alice, his honest neighbour, lacks two pieces; Bob, the liar, claims all, each with a flipped byte.
      const net = checkpointPeers(config, [keys.dave, keys.alice, keys.bob]);
      closers.push(() => net.close());
      const [joiner, honest, liar] = net.peers;
      const lacks = new Set([pieces[1].hash, pieces.at(-1)!.hash]);
      expect(honest.ckpt.keep(round, 0, pieces.filter((p) => !lacks.has(p.hash)))).toBe(true);
      liar.ckpt.keep(round, 0, pieces.map((p) => ({ hash: p.hash, bytes: p.bytes.map((b, i) => (i === 7 ? b ^ 1 : b)) })));
      await net.linked();

      const before = s.server.traffic();
      const got = await fetchCheckpoint({ http: nodeHttpClient(), httpBase: s.http, config, stage: 0, peers: joiner.ckpt });
      const storeSent = s.server.traffic().sent - before.sent;
      expect(got?.round).toBe(round);
      expect(Buffer.from(got!.bytes).equals(joined(s.weights.parts))).toBe(true);
      const lacked = pieces.filter((p) => lacks.has(p.hash)).reduce((n, p) => n + p.bytes.length, 0);
      expect(got!.sources).toMatchObject({ piecesFromPeers: pieces.length - 2, piecesFromStore: 2, bytesFromStore: lacked, byPeer: { [honest.key.address]: pieces.length - 2 } });
      // The coordinator sent the two lacked pieces (and the manifest and commit), not the checkpoint.
      expect(storeSent).toBeLessThan(lacked + 64 * 1024);
      expect(joiner.refusals.byReason['bad-checkpoint-piece']).toBe(1); // the liar, once (its pieces asked together with the first are dropped unblamed): never asked again
      expect(honest.ckpt.serving.bytes).toBe(s.weights.bytes - lacked);
      // The joiner now holds the checkpoint and serves it in turn.
      expect(joiner.ckpt.holding()).toEqual({ round, stage: 0, pieces: pieces.length });
      expect(MAX_CONCURRENT_CHECKPOINT_SENDS).toBe(8);
    } finally {
      await s.stop();
    }
  }, 60_000);
});
