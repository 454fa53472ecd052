// An author's signed piece root (src/net/signed-root.ts): what a bucket upload announces with
// `uploaded`, verified by the coordinator against the envelope's header (one sr25519 check, no
// body read). A root changed after signing, a root signed by another key, and a statement for
// another envelope (round, length, payload) do not verify.
import { beforeAll, describe, expect, it } from 'vitest';
import { sealEnvelope, peekEnvelope } from '../../src/net/envelope.ts';
import { envelopeRoot, listPieces } from '../../src/net/pieces.ts';
import { pieceRootStatement, signPieceRoot, verifyPieceRoot } from '../../src/net/signed-root.ts';
import { toHex } from '../../src/base/hex.ts';
import { devKeys, type Keys } from '../coordinator/helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const seal = (key: Keys['alice'], round: number, fill: number) => sealEnvelope(key, { kind: 'update', run: 'r', round, stage: 0 }, new Uint8Array(3000).fill(fill));

describe('signed piece root', () => {
  it("verifies the author's root of its envelope, and only that", () => {
    const env = seal(k.alice, 3, 1);
    const header = peekEnvelope(env);
    const signed = signPieceRoot(k.alice, env);
    expect(signed.pieces).toBe(envelopeRoot(env));
    expect(signPieceRoot(k.alice, env, listPieces(env)).pieces).toBe(signed.pieces); // a list already made gives the same root
    expect(verifyPieceRoot(header, env.length, signed)).toBe(true);
    // A forged root: another envelope's, with the signature of this one's.
    expect(verifyPieceRoot(header, env.length, { ...signed, pieces: envelopeRoot(seal(k.alice, 3, 2)) })).toBe(false);
    // Another envelope's header (round, payload) or length: the statement differs.
    expect(verifyPieceRoot(peekEnvelope(seal(k.alice, 4, 1)), env.length, signed)).toBe(false);
    expect(verifyPieceRoot(peekEnvelope(seal(k.alice, 3, 2)), env.length, signed)).toBe(false);
    expect(verifyPieceRoot(header, env.length + 1, signed)).toBe(false);
    // A malformed signature is false, not a throw.
    expect(verifyPieceRoot(header, env.length, { ...signed, piecesSignature: 'ab' })).toBe(false);
  });

  it('a root signed by another key does not verify for the envelope’s sender; nobody signs a root for an envelope it did not sign', () => {
    const env = seal(k.alice, 3, 1);
    const header = peekEnvelope(env);
    const root = envelopeRoot(env);
    const byBob = { pieces: root, piecesSignature: toHex(k.bob.sign(pieceRootStatement(header, env.length, root))) };
    expect(verifyPieceRoot(header, env.length, byBob)).toBe(false);
    expect(() => signPieceRoot(k.bob, env)).toThrow(/signed by .*, not by/);
  });
});
