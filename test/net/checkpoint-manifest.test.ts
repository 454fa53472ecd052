// The sharded checkpoint's manifest and pieces (src/protocol/checkpoint-manifest.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { manifestProblem, maxCheckpointBytes, signManifest, splitPieces, type CheckpointManifest } from '../../src/protocol/checkpoint-manifest.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

let key: Hotkey;
beforeAll(async () => {
  await cryptoReady();
  key = Hotkey.fromMnemonic('bottom drive obey lake curtain smoke basket hold race lonely fit walk', '//Alice');
});

describe('checkpoint manifest', () => {
  it('cuts a file given whole or in parts into the same pieces', async () => {
    const whole = new Uint8Array(1000).map((_, i) => i * 7);
    for (const cuts of [[1000], [10, 990], [100, 100, 800], [333, 1, 1, 665], [0, 500, 0, 500]]) {
      let at = 0;
      const parts = cuts.map((n) => whole.subarray(at, (at += n)));
      for (const pieceBytes of [1, 7, 100, 999, 1000, 4096]) {
        expect((await splitPieces(parts, pieceBytes)).map((p) => p.hash)).toEqual((await splitPieces(whole, pieceBytes)).map((p) => p.hash));
      }
    }
  });

  it('refuses a manifest that is malformed, too large for the model, or not signed by its uploader', () => {
    const config = parseRunConfig({ run: 'r', checkpointPieceBytes: 4096 });
    const total = 10_000;
    const m: CheckpointManifest = { run: 'r', round: 3, stage: 0, uploader: key.address, weights: 'ab'.repeat(32), totalBytes: total, pieceBytes: 4096, pieces: ['01'.repeat(32), '02'.repeat(32), '03'.repeat(32)] };
    expect(manifestProblem(signManifest(key, m), config)).toBeNull();
    const cases: [string, unknown, RegExp][] = [
      ['not an object', 'x', /signed manifest/],
      ['another run', signManifest(key, { ...m, run: 'other' }), /run 'other'/],
      ['another piece size', signManifest(key, { ...m, pieceBytes: 8192 }), /pieceBytes/],
      ['larger than the model', signManifest(key, { ...m, totalBytes: maxCheckpointBytes(config, 0) + 1 }), /totalBytes/],
      ['too few pieces', signManifest(key, { ...m, pieces: m.pieces.slice(1) }), /pieces must list 3/],
      ['a short fingerprint', signManifest(key, { ...m, weights: 'abcd' }), /weights/],
      ['a changed field', { ...signManifest(key, m), manifest: { ...m, round: 4 } }, /signature/],
    ];
    for (const [what, s, reason] of cases) expect(manifestProblem(s, config), what).toMatch(reason);
  });
});
