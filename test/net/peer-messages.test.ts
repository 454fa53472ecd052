// The gather exchange's messages between neighbours (src/protocol/peer-messages.ts): each
// kind round-trips; anything malformed or oversized parses to null (counted by the receiver).
import { describe, expect, it } from 'vitest';
import { MAX_HAVE_HASHES, MAX_PEER_MESSAGE_BYTES, MAX_PIECES, encodePeerMessage, parsePeerMessage, type PeerMessage } from '../../src/protocol/peer-messages.ts';

const hash = 'ab'.repeat(32);
const raw = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('peer messages (gather)', () => {
  it('round-trips have, want-list, list, want and refuse', () => {
    const ms: PeerMessage[] = [
      { type: 'have', round: 3, hashes: [hash, 'cd'.repeat(32)] },
      { type: 'want-list', round: 0, hash },
      { type: 'list', round: 0, hash, bytes: 2_500_000, pieceBytes: 1 << 20, pieces: [hash, hash, 'cd'.repeat(32)] },
      { type: 'want', round: 0, hash, piece: 2 },
      { type: 'refuse', round: 7, hash, piece: 0, reason: 'busy' },
      { type: 'refuse', round: 7, hash, piece: 1, reason: 'spent' },
      { type: 'refuse', round: 7, hash, reason: 'missing' },
    ];
    for (const m of ms) expect(parsePeerMessage(encodePeerMessage(m))).toEqual(m);
  });

  it('a have as large as the largest round fits; one hash more, or a larger message, does not', () => {
    const most = Array.from({ length: MAX_HAVE_HASHES }, (_, i) => i.toString(16).padStart(64, '0'));
    expect(encodePeerMessage({ type: 'have', round: 1, hashes: most }).length).toBeLessThanOrEqual(MAX_PEER_MESSAGE_BYTES);
    expect(parsePeerMessage(raw({ type: 'have', round: 1, hashes: most }))).not.toBeNull();
    expect(parsePeerMessage(raw({ type: 'have', round: 1, hashes: [...most, hash] }))).toBeNull();
    expect(parsePeerMessage(new Uint8Array(MAX_PEER_MESSAGE_BYTES + 1).fill(0x20))).toBeNull();
    const pieces = Array.from({ length: MAX_PIECES }, (_, i) => i.toString(16).padStart(64, '0'));
    const list = { type: 'list', round: 1, hash, bytes: 2 ** 32, pieceBytes: 2 ** 20, pieces };
    expect(encodePeerMessage(list as PeerMessage).length).toBeLessThanOrEqual(MAX_PEER_MESSAGE_BYTES);
    expect(parsePeerMessage(raw(list))).not.toBeNull();
    expect(parsePeerMessage(raw({ ...list, pieces: [...pieces, hash] }))).toBeNull();
  });

  it('refuses anything malformed', () => {
    const bad: unknown[] = [
      null, [], 'have', { type: 'have', round: 1 }, { type: 'have', round: 1, hashes: [] }, { type: 'have', round: -1, hashes: [hash] },
      { type: 'have', round: 1, hashes: ['AB'.repeat(32)] }, { type: 'have', round: 1, hashes: ['ab'] }, { type: 'want', round: 1.5, hash },
      { type: 'want', round: 1 }, { type: 'want', round: 1, hash }, { type: 'want', round: 1, hash, piece: -1 }, { type: 'want', round: 1, hash, piece: MAX_PIECES },
      { type: 'want-list', round: 1 }, { type: 'list', round: 1, hash, bytes: 10, pieceBytes: 1024, pieces: [] }, { type: 'list', round: 1, hash, bytes: -1, pieceBytes: 1024, pieces: [hash] },
      { type: 'list', round: 1, hash, pieceBytes: 1024, pieces: [hash] }, { type: 'refuse', round: 1, hash, piece: 0.5, reason: 'busy' },
      { type: 'refuse', round: 1, hash, reason: 'tired' }, { type: 'push', round: 1, hash },
    ];
    for (const v of bad) expect(parsePeerMessage(raw(v)), JSON.stringify(v)).toBeNull();
    expect(parsePeerMessage(new Uint8Array([0xff, 0xfe, 0x7b]))).toBeNull();
    expect(parsePeerMessage(new TextEncoder().encode('{"type":'))).toBeNull();
  });
});
