// The coordinator's bucket intake by the signed header alone (bucket-updates.ts), on a
// hand-moved clock and a real disk-backed object store whose presigned URLs name the key
// (the real S3 backend is test/e2e/s3-store.test.ts): a good object is accepted from two
// ranged reads (header, signature) with no whole read and nothing written to the state
// folder; a bad signature, a wrong size, an oversize claim and a missing object are refused
// with a clear reason and counted; the validator reads what it scores from the bucket
// (validator-reads.ts) and scores a body that does not match its signed hash invalid. With the
// author's signed piece root (src/net/signed-root.ts) the commit carries the root, from the
// same two ranged reads; a root not signed by the sender for this envelope is refused as an
// invalid update; a signed root that is not the body's is accepted (the intake cannot tell),
// applied by its payload and scored invalid by the validator.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DiskObjectStore, type ObjectStore } from '../../src/coordinator/object-store.ts';
import { FORGED_PAYLOAD } from '../../src/protocol/messages.ts';
import { MAX_HEADER_BYTES, SIGNATURE_BYTES, maxEnvelopeBytes, openEnvelope } from '../../src/net/envelope.ts';
import { envelopeRoot } from '../../src/net/pieces.ts';
import { pieceRootStatement, signPieceRoot, type SignedRoot } from '../../src/net/signed-root.ts';
import { peekEnvelope } from '../../src/net/envelope.ts';
import { toHex } from '../../src/base/hex.ts';
import { md5Hex } from '../../src/base/md5.ts';
import { devKeys, joinAll, makeCoordinator, removeTempDirs, signedUpdate, tempDir, testConfig, type Keys, type Peer } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
afterEach(removeTempDirs);

const ORIGIN = 'https://bucket.test/';

/**
 * The disk store with presigned URLs that name their key (so the test can "PUT" there),
 * counting whole and ranged reads, and ETags as S3 gives them for an object PUT whole: the MD5
 * of its bytes (the coordinator commits it beside the author's root). `md5Etags: false`: the
 * disk's own tags (size and time), as a store whose ETags are not MD5s.
 */
class KeyedDiskStore implements ObjectStore {
  readonly kind = 'disk';
  readonly description = 'disk, keyed URLs (test)';
  wholeReads = 0;
  rangeReads = 0;
  rangeBytes = 0;
  private readonly disk: DiskObjectStore;
  constructor(
    dir: string,
    private readonly md5Etags = true,
  ) {
    this.disk = new DiskObjectStore(dir);
  }
  /** The disk's tag of `key` when `etag` is its current ETag (an MD5 of its bytes, or the disk's own), else a tag that fails the disk's check. */
  private async diskTag(key: string, etag: string): Promise<string> {
    const now = await this.head(key);
    const disk = await this.disk.head(key);
    return now && disk && now.etag === etag ? disk.etag : 'changed';
  }
  put(key: string, bytes: Uint8Array) {
    return this.disk.put(key, bytes);
  }
  get(key: string, maxBytes: number) {
    this.wholeReads++;
    return this.disk.get(key, maxBytes);
  }
  async getRange(key: string, start: number, end: number, etag: string) {
    this.rangeReads++;
    this.rangeBytes += end - start;
    return this.disk.getRange(key, start, end, await this.diskTag(key, etag));
  }
  async head(key: string) {
    const found = await this.disk.head(key);
    if (!found || !this.md5Etags) return found;
    return { bytes: found.bytes, etag: `"${md5Hex((await this.disk.get(key, found.bytes))!)}"` };
  }
  async copy(from: string, to: string, etag: string) {
    return this.disk.copy(from, to, await this.diskTag(from, etag));
  }
  delete(keys: readonly string[]) {
    return this.disk.delete(keys);
  }
  async presignPut(key: string) {
    return ORIGIN + key;
  }
  async presignGet(key: string) {
    return ORIGIN + key;
  }
}

/** Lets the intake's awaited store calls finish (no timers: the clock is the test's). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

async function setup(n: number, overrides: Record<string, unknown> = {}, md5Etags = true) {
  const config = testConfig({ minMembers: n, gatherK: n, ...overrides });
  const bucket = new KeyedDiskStore(tempDir(), md5Etags);
  const h = makeCoordinator(config, { syncGraceMs: 0, bucket });
  const peers = joinAll(h.coordinator, [k.alice, k.bob, k.carol, k.dave].slice(0, n));
  await settle();
  const keyOf = (p: Peer) => {
    const url = p.last('upload-url');
    if (!url) throw new Error(`no upload URL for ${p.address}: ${JSON.stringify(p.conn.sent)}`);
    return url.url.slice(ORIGIN.length);
  };
  const upload = async (p: Peer, bytes: Uint8Array, said = bytes.length, root?: SignedRoot) => {
    await bucket.put(keyOf(p), bytes);
    p.text({ type: 'uploaded', round: 0, bytes: said, ...root });
    await settle();
  };
  return { ...h, bucket, peers, upload, keyOf };
}

describe('bucket intake by the signed header', () => {
  it('accepts a good object from two small ranged reads: no whole read, nothing in the state folder; announced without a piece root, none in the commit', async () => {
    const s = await setup(2);
    const envelopes = s.peers.map((p, i) => signedUpdate(p.key!, s.config, 0, i + 1));
    await s.upload(s.peers[0], envelopes[0]);
    const accepted = s.peers[0].last('accepted');
    expect(accepted).toMatchObject({ round: 0, hash: expect.any(String) });
    expect(s.bucket.wholeReads).toBe(0);
    expect(s.bucket.rangeReads).toBe(2);
    expect(s.bucket.rangeBytes).toBe(MAX_HEADER_BYTES + SIGNATURE_BYTES); // 625 bytes, whatever the update's size
    expect(s.store.hasUpdate(0, s.peers[0].address)).toBe(false);
    expect(await s.bucket.head(`updates/${s.config.run}/0/${s.peers[0].address}.bin`)).not.toBeNull();
    expect(await s.bucket.head(s.keyOf(s.peers[0]))).toBeNull(); // the upload key is deleted once copied
    await s.upload(s.peers[1], envelopes[1]);
    const commit = s.peers[0].last('commit')!;
    expect(commit.included.map((e) => e.sender)).toEqual(s.peers.map((p) => p.address).sort());
    for (const e of commit.included) expect(e.pieces).toBeUndefined();
    expect(s.coordinator.rejected).toEqual({});
    // GET /update redirects to the final key, from the record (a restart keeps it).
    expect(await s.coordinator.bucket!.downloadUrl(0, s.peers[1].address, s.coordinator.updateKept(0, s.peers[1].address))).toBe(`${ORIGIN}updates/${s.config.run}/0/${s.peers[1].address}.bin`);
    expect(s.coordinator.updateKept(0, k.carol.address)).toBe(false);
  });

  it('refuses a bad signature, a wrong size, an oversize claim and a missing object, each with a clear reason, counted', async () => {
    const s = await setup(4);
    const [badSig, wrongSize, oversize, missing] = s.peers;
    const good = s.peers.map((p, i) => signedUpdate(p.key!, s.config, 0, i + 1));
    const forgedSig = good[0].slice();
    forgedSig[forgedSig.length - 1] ^= 0xff;
    await s.upload(badSig, forgedSig);
    await s.upload(wrongSize, good[1], good[1].length + 1);
    await s.upload(oversize, good[2], maxEnvelopeBytes(s.config.maxMessageBytes) + 1);
    missing.text({ type: 'uploaded', round: 0, bytes: good[3].length });
    await settle();
    const what = s.peers.map((p) => p.last('rejected'));
    expect(what.map((r) => r?.what)).toEqual(['envelope-signature', 'bucket-size', 'bucket-size', 'bucket-missing']);
    expect(what[0]!.reason).toMatch(/bad signature.*send the update over the WebSocket instead/);
    expect(what[1]!.reason).toMatch(/is \d+ bytes, you said \d+/);
    expect(what[2]!.reason).toMatch(/over the run's \d+/);
    expect(what[3]!.reason).toMatch(/nothing at your upload URL/);
    expect(s.coordinator.rejected).toEqual({ 'envelope-signature': 1, 'bucket-size': 2, 'bucket-missing': 1 });
    expect(s.bucket.wholeReads).toBe(0);
    // A bad signature is an invalid update (it ends the sender's turn, a validator penalty); the others send over the socket.
    for (const [i, p] of [wrongSize, oversize, missing].entries()) p.binary(good[i + 1]);
    expect(s.coordinator.commit(0)?.invalid).toEqual({ [badSig.address]: 1 });
    expect(s.coordinator.commit(0)?.included.map((e) => e.sender).sort()).toEqual([wrongSize, oversize, missing].map((p) => p.address).sort());
    // Those came over the socket: GET /update serves the coordinator's own copy, not a URL on the bucket.
    expect(s.coordinator.updateKept(0, missing.address)).toBe(true);
    expect(await s.coordinator.bucket!.downloadUrl(0, missing.address, true)).toBeNull();
  });

  it('the validator reads what it scores from the bucket, checked against the signed hash: a body that does not match scores invalid and is applied as nothing', async () => {
    const s = await setup(3, { gatherK: 2 });
    const envelopes = s.peers.map((p, i) => signedUpdate(p.key!, s.config, 0, i + 1));
    // Every sender's body changed after signing: the header and signature still check.
    const forged = envelopes.map((e) => {
      const f = e.slice();
      f[f.length - 64 - 10] ^= 0xff;
      return f;
    });
    await s.upload(s.peers[0], forged[0]);
    await s.upload(s.peers[1], envelopes[1]);
    await s.upload(s.peers[2], forged[2]);
    expect(s.peers.map((p) => p.last('accepted')?.round)).toEqual([0, 0, 0]); // intake cannot tell
    const record = s.coordinator.commit(0)!;
    const committed = new Set(record.included.map((e) => e.sender));
    const c = await s.coordinator.validatorInput.readClosedRound(0);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    // Committed: read whole from the bucket, the forged applied as nothing and counted invalid.
    for (const u of c.closed.included) {
      const i = s.peers.findIndex((p) => p.address === u.sender);
      if (i === 1) expect(u.payload).toEqual(openEnvelope(envelopes[1], { run: s.config.run, maxPayloadBytes: s.config.maxMessageBytes }).payload);
      else expect(u.payload).toBe(FORGED_PAYLOAD);
    }
    expect(s.bucket.wholeReads).toBe(committed.size);
    expect(s.coordinator.validatorInput.commitPayloads(0)!.filter((p) => p === FORGED_PAYLOAD)).toHaveLength([...committed].filter((a) => a !== s.peers[1].address).length);
    // The one not committed (the validator's sample): read when asked for, counted invalid when forged.
    await s.coordinator.validatorInput.sample(c.closed, s.peers.map((p) => p.address));
    expect(s.bucket.wholeReads).toBe(3);
    expect(c.closed.invalid).toEqual({ [s.peers[0].address]: 1, [s.peers[2].address]: 1 });
    expect(s.coordinator.validatorInput.counts).toMatchObject({ read: 3, forged: 2, missing: 0 });
    // The good one is kept for the engine (it reads the state folder); a second ask reads nothing again.
    expect(s.store.hasUpdate(0, s.peers[1].address)).toBe(true);
    expect(s.store.hasUpdate(0, s.peers[0].address)).toBe(false);
    await s.coordinator.validatorInput.sample(c.closed, s.peers.map((p) => p.address));
    expect(s.bucket.wholeReads).toBe(3);
    expect(s.log.filter((l) => /does not match its signed hash.*scored invalid/.test(l))).toHaveLength(2);
  });

  it("commits the author's signed piece root from the same two ranged reads; refuses a forged root or another's signature as an invalid update; a root that is not the body's is applied by its payload and scored invalid", async () => {
    const s = await setup(4);
    const [honest, forgedRoot, wrongSigner, lying] = s.peers;
    const env = s.peers.map((p, i) => signedUpdate(p.key!, s.config, 0, i + 1));
    // Honest: the root of what it uploaded, signed.
    await s.upload(honest, env[0], env[0].length, signPieceRoot(honest.key!, env[0]));
    expect(honest.last('accepted')).toMatchObject({ round: 0 });
    expect(s.bucket.wholeReads).toBe(0);
    expect(s.bucket.rangeBytes).toBe(MAX_HEADER_BYTES + SIGNATURE_BYTES); // the root costs no read
    // A root changed after signing.
    const signed = signPieceRoot(forgedRoot.key!, env[1]);
    await s.upload(forgedRoot, env[1], env[1].length, { ...signed, pieces: envelopeRoot(env[0]) });
    // The right root, signed by another key (Alice's, for Carol's envelope).
    const root2 = envelopeRoot(env[2]);
    await s.upload(wrongSigner, env[2], env[2].length, { pieces: root2, piecesSignature: toHex(honest.key!.sign(pieceRootStatement(peekEnvelope(env[2]), env[2].length, root2))) });
    expect([forgedRoot, wrongSigner].map((p) => p.last('rejected')?.what)).toEqual(['envelope-root-signature', 'envelope-root-signature']);
    expect(wrongSigner.last('rejected')!.reason).toMatch(/not signed by .* for this envelope/);
    // Lying: its signed root is that of another envelope of the same payload (re-signed), not the body's.
    const resigned = signedUpdate(lying.key!, s.config, 0, 4);
    expect(toHex(resigned)).not.toBe(toHex(env[3]));
    await s.upload(lying, env[3], env[3].length, signPieceRoot(lying.key!, resigned));
    expect(lying.last('accepted')).toMatchObject({ round: 0 });
    const record = s.coordinator.commit(0)!;
    // The refused two ended their turns, invalid (as a bad envelope signature does).
    expect(record.invalid).toEqual({ [forgedRoot.address]: 1, [wrongSigner.address]: 1 });
    expect(Object.fromEntries(record.included.map((e) => [e.sender, e.pieces]))).toEqual({ [honest.address]: envelopeRoot(env[0]), [lying.address]: envelopeRoot(resigned) });
    // Beside each root, the bucket's MD5 of the body: what binds a neighbour's copy to the bucket's (gather.ts).
    expect(Object.fromEntries(record.included.map((e) => [e.sender, e.bodyMd5]))).toEqual({ [honest.address]: md5Hex(env[0]), [lying.address]: md5Hex(env[3]) });
    expect(s.coordinator.rejected).toEqual({ 'envelope-root-signature': 2 });
    // The validator reads the committed two: the liar's payload is applied (the one its signed hash names, as replicas apply it) and scored invalid.
    const c = await s.coordinator.validatorInput.readClosedRound(0);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    const payloadOf = (e: Uint8Array) => openEnvelope(e, { run: s.config.run, maxPayloadBytes: s.config.maxMessageBytes }).payload;
    expect(Object.fromEntries(c.closed.included.map((u) => [u.sender, toHex(u.payload)]))).toEqual({ [honest.address]: toHex(payloadOf(env[0])), [lying.address]: toHex(payloadOf(env[3])) });
    expect(c.closed.invalid).toEqual({ [forgedRoot.address]: 1, [wrongSigner.address]: 1, [lying.address]: 1 });
    expect(s.coordinator.validatorInput.counts).toMatchObject({ read: 2, forged: 0, badRoots: 1 });
    expect(s.coordinator.validatorInput.commitPayloads(0)!.every((p) => p !== FORGED_PAYLOAD)).toBe(true);
    expect(s.log.filter((l) => /does not have the piece root its author signed/.test(l))).toHaveLength(1);
  });

  it('commits no root where the store\'s ETags are not MD5s of the bodies: nothing would bind a neighbour\'s copy to the bucket\'s', async () => {
    const s = await setup(2, {}, false);
    for (const [i, p] of s.peers.entries()) {
      const env = signedUpdate(p.key!, s.config, 0, i + 1);
      await s.upload(p, env, env.length, signPieceRoot(p.key!, env));
    }
    const record = s.coordinator.commit(0)!;
    expect(record.included).toHaveLength(2);
    for (const e of record.included) expect([e.pieces, e.bodyMd5]).toEqual([undefined, undefined]);
    expect(s.coordinator.rejected).toEqual({});
  });
});
