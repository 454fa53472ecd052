// Update pieces and their hashes (src/net/pieces.ts): a list made from an envelope hashes to
// its root; any change to the list (a hash, the length, the piece size, a piece more or less)
// no longer does; a piece is checked by length and hash; the 'piece' payload round-trips.
import { describe, expect, it } from 'vitest';
import { MAX_PIECES, MIN_PIECE_BYTES, PIECE_BYTES, checkPieceList, decodePiece, encodePiece, envelopeRoot, listPieces, pieceBytesFor, pieceCount, pieceMatches, pieceRange, pieceRoot } from '../../src/net/pieces.ts';

const bytes = (n: number, tag = 1) => new Uint8Array(n).map((_, i) => (i * 13 + tag) & 0xff);

describe('update pieces', () => {
  it('cuts an envelope into PIECE_BYTES pieces (larger only past MAX_PIECES), the last one short', () => {
    expect(PIECE_BYTES).toBe(1 << 20);
    expect(pieceBytesFor(18_646_355)).toBe(PIECE_BYTES);
    expect(pieceCount(18_646_355, PIECE_BYTES)).toBe(18);
    expect(pieceBytesFor(MAX_PIECES * PIECE_BYTES + 1)).toBeGreaterThan(PIECE_BYTES);
    expect(pieceCount(MAX_PIECES * PIECE_BYTES + 1, pieceBytesFor(MAX_PIECES * PIECE_BYTES + 1))).toBeLessThanOrEqual(MAX_PIECES);
    const env = bytes(5000);
    const list = listPieces(env, 2048);
    expect(list.hashes).toHaveLength(3);
    expect(pieceRange(list, 2)).toEqual({ start: 4096, end: 5000 });
    expect(listPieces(new Uint8Array(0)).hashes).toHaveLength(1);
  });

  it('believes a list only when it hashes to the root; checks each piece by length and hash', () => {
    const env = bytes(5000);
    const list = listPieces(env, 2048);
    const root = pieceRoot(list);
    expect(envelopeRoot(env)).toBe(pieceRoot(listPieces(env)));
    expect(checkPieceList(list, root, 10_000)).toBeNull();
    const other = listPieces(bytes(5000, 2), 2048);
    for (const bad of [
      { ...list, hashes: [list.hashes[0], other.hashes[1], list.hashes[2]] },
      { ...list, bytes: 5001 },
      { ...list, pieceBytes: 2049 },
      { ...list, hashes: list.hashes.slice(0, 2) },
      { ...list, hashes: [...list.hashes, list.hashes[0]] },
      { ...list, pieceBytes: MIN_PIECE_BYTES - 1, hashes: Array(6).fill(list.hashes[0]) },
    ]) expect(checkPieceList(bad, root, 10_000), JSON.stringify({ ...bad, hashes: bad.hashes.length })).not.toBeNull();
    expect(checkPieceList(list, root, 4999)).toMatch(/limit/);
    expect(pieceMatches(list, 1, env.subarray(2048, 4096))).toBe(true);
    expect(pieceMatches(list, 1, env.subarray(2049, 4097))).toBe(false);
    expect(pieceMatches(list, 2, env.subarray(4096, 4999))).toBe(false);
    expect(pieceMatches(list, 3, new Uint8Array(0))).toBe(false);
  });

  it('round-trips a piece payload, and refuses one shorter than its header', () => {
    const hash = 'ab'.repeat(32);
    const data = bytes(300);
    expect(decodePiece(encodePiece(hash, 7, data))).toEqual({ hash, index: 7, data });
    expect(decodePiece(new Uint8Array(35))).toBeNull();
  });
});
