import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as utilCrypto from '@polkadot/util-crypto';
import {
  ENVELOPE_VERSION, EnvelopeError, HASH_BYTES, KIND_CODES, MAX_HEADER_BYTES, SIGNATURE_BYTES, maxEnvelopeBytes, openEnvelope, openEnvelopeHeader, peekEnvelope, sealEnvelope,
  type EnvelopeReason, type MessageKind,
} from '../../src/net/envelope.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

// Counts payload hashing, to show oversize messages are rejected before any.
vi.mock('@polkadot/util-crypto', async (importOriginal) => {
  const orig = await importOriginal<typeof utilCrypto>();
  return { ...orig, blake2AsU8a: vi.fn(orig.blake2AsU8a) };
});

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
let alice: Hotkey, bob: Hotkey;
const RUN = 'run-1';
const expect_ = { run: RUN, maxPayloadBytes: 1 << 24 };

beforeAll(async () => {
  await cryptoReady();
  alice = Hotkey.fromMnemonic(DEV, '//Alice');
  bob = Hotkey.fromMnemonic(DEV, '//Bob');
});

function randomBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) b[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  return b;
}

function reasonOf(f: () => unknown): EnvelopeReason | 'ok' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof EnvelopeError) return e.reason;
    throw e;
  }
}

describe('envelope', () => {
  it('round trips every kind and several payload sizes', () => {
    for (const kind of Object.keys(KIND_CODES) as MessageKind[]) {
      for (const n of [0, 1, 1000, 1 << 20]) {
        const payload = randomBytes(n, n + 7);
        const env = sealEnvelope(alice, { kind, run: RUN, round: 0xffffffff, stage: 0xffff }, payload);
        const { header, payload: got } = openEnvelope(env, expect_);
        expect(header).toMatchObject({ kind, run: RUN, round: 0xffffffff, stage: 0xffff, sender: alice.address, payloadLength: n });
        expect(header.payloadHash).toEqual(utilCrypto.blake2AsU8a(payload, 256));
        expect(Buffer.compare(got, payload)).toBe(0); // toEqual walks 1 MB too slowly
        expect(peekEnvelope(env)).toEqual(header);
      }
    }
  });

  it('carries non-ASCII run ids and accepts a Buffer-like view at an offset', () => {
    const run = 'lauf-ü-🚀';
    const env = sealEnvelope(bob, { kind: 'control', run, round: 3, stage: 1 }, randomBytes(10));
    const padded = new Uint8Array(env.length + 9);
    padded.set(env, 5);
    const view = padded.subarray(5, 5 + env.length);
    expect(openEnvelope(view, { run, maxPayloadBytes: 10 }).header).toMatchObject({ run, round: 3, stage: 1, sender: bob.address });
  });

  it('rejects every truncation', () => {
    const env = sealEnvelope(alice, { kind: 'update', run: RUN, round: 7, stage: 0 }, randomBytes(300));
    for (let n = 0; n < env.length; n++) {
      expect(reasonOf(() => openEnvelope(env.subarray(0, n), expect_)), `length ${n}`).toBe('truncated');
      expect(reasonOf(() => peekEnvelope(env.subarray(0, n))), `length ${n}`).toBe('truncated');
    }
    const longer = new Uint8Array(env.length + 1);
    longer.set(env);
    expect(reasonOf(() => openEnvelope(longer, expect_))).toBe('trailing');
  });

  it('rejects a flip of any byte, with the reason of the field it hit', () => {
    const payload = randomBytes(64, 3); // each payload flip now costs a signature check (it comes first): kept short
    const env = sealEnvelope(alice, { kind: 'update', run: RUN, round: 7, stage: 2 }, payload);
    // Field offsets for a 5-byte run id and a 48-byte address.
    const runAt = 8, roundAt = runAt + RUN.length, senderLenAt = roundAt + 6, senderAt = senderLenAt + 1;
    const lenAt = senderAt + alice.address.length, hashAt = lenAt + 4, payloadAt = hashAt + HASH_BYTES, sigAt = payloadAt + payload.length;
    expect(sigAt + SIGNATURE_BYTES).toBe(env.length);
    const allowed = (i: number): EnvelopeReason[] => {
      if (i < 4) return ['magic'];
      if (i < 6) return ['version'];
      if (i === 6) return ['kind', 'signature'];
      if (i === 7 || i === senderLenAt) return ['header', 'truncated', 'trailing', 'size', 'run'];
      if (i < roundAt) return ['run', 'header'];
      if (i < senderLenAt) return ['signature'];
      if (i < lenAt) return ['header'];
      if (i < hashAt) return ['truncated', 'trailing', 'size'];
      if (i < payloadAt) return ['signature']; // the hash is signed: checked before the payload is read
      if (i < sigAt) return ['hash'];
      return ['signature'];
    };
    for (let i = 0; i < env.length; i++) {
      for (const x of [0x01, 0x80, 0x5a]) {
        const bad = env.slice();
        bad[i] ^= x;
        const r = reasonOf(() => openEnvelope(bad, expect_));
        expect(allowed(i), `byte ${i} ^ ${x}: ${r}`).toContain(r);
      }
    }
    const wrongKind = env.slice();
    wrongKind[6] = KIND_CODES.weights;
    expect(reasonOf(() => openEnvelope(wrongKind, expect_))).toBe('signature');
    const unknownKind = env.slice();
    unknownKind[6] = 0;
    expect(reasonOf(() => openEnvelope(unknownKind, expect_))).toBe('kind');
    const v2 = env.slice();
    v2[4] = ENVELOPE_VERSION + 1;
    expect(reasonOf(() => openEnvelope(v2, expect_))).toBe('version');
  });

  it('rejects a message for another run', () => {
    const env = sealEnvelope(alice, { kind: 'update', run: 'run-2', round: 1, stage: 0 }, randomBytes(5));
    expect(reasonOf(() => openEnvelope(env, expect_))).toBe('run');
  });

  it('rejects a forgery: signed by Bob, claiming to be from Alice', () => {
    const env = sealEnvelope(bob, { kind: 'update', run: RUN, round: 1, stage: 0 }, randomBytes(64));
    const senderAt = 8 + RUN.length + 6 + 1;
    const forged = env.slice();
    forged.set(new TextEncoder().encode(alice.address), senderAt);
    expect(peekEnvelope(forged).sender).toBe(alice.address); // peek does not verify
    expect(reasonOf(() => openEnvelope(forged, expect_))).toBe('signature');
    // Even re-signed over the edited header, Bob's signature is not Alice's.
    const headerLen = env.length - 64 - 64;
    forged.set(bob.sign(forged.subarray(0, headerLen)), headerLen + 64);
    expect(reasonOf(() => openEnvelope(forged, expect_))).toBe('signature');
  });

  it('rejects oversize messages before hashing anything', () => {
    const hash = vi.mocked(utilCrypto.blake2AsU8a);
    const env = sealEnvelope(alice, { kind: 'weights', run: RUN, round: 1, stage: 0 }, randomBytes(1000));
    hash.mockClear();
    // Declared payload over the limit.
    expect(reasonOf(() => openEnvelope(env, { run: RUN, maxPayloadBytes: 999 }))).toBe('size');
    // Whole message over the largest envelope such a payload could need: rejected unread.
    const huge = new Uint8Array(maxEnvelopeBytes(1000) + 1);
    expect(reasonOf(() => openEnvelope(huge, { run: RUN, maxPayloadBytes: 1000 }))).toBe('size');
    expect(hash).not.toHaveBeenCalled();
    expect(openEnvelope(env, { run: RUN, maxPayloadBytes: 1000 }).payload.length).toBe(1000);
    expect(hash).toHaveBeenCalledTimes(1);
    expect(MAX_HEADER_BYTES).toBe(4 + 2 + 1 + 256 + 6 + 256 + 4 + 32);
  });

  it('refuses a bad signature without hashing the payload (the cost of a forgery is O(header))', () => {
    const hash = vi.mocked(utilCrypto.blake2AsU8a);
    const payloadBytes = 4 << 20;
    const env = sealEnvelope(alice, { kind: 'weights', run: RUN, round: 1, stage: 0 }, new Uint8Array(payloadBytes));
    const hashedBytes = () => hash.mock.calls.reduce((sum, [data]) => sum + (data as Uint8Array).length, 0);
    for (const forge of [
      (b: Uint8Array) => (b[b.length - 1] ^= 1), // a corrupted signature
      (b: Uint8Array) => (b[b.length - SIGNATURE_BYTES - payloadBytes - 1] ^= 1), // a hash edited to fit another payload
    ]) {
      const bad = env.slice();
      forge(bad);
      hash.mockClear();
      expect(reasonOf(() => openEnvelope(bad, { run: RUN, maxPayloadBytes: payloadBytes }))).toBe('signature');
      expect(hashedBytes()).toBe(0);
    }
    // A good signature over a payload that does not match its hash: hashed once, refused as 'hash'.
    const swapped = env.slice();
    swapped[swapped.length - SIGNATURE_BYTES - 1] ^= 1;
    hash.mockClear();
    expect(reasonOf(() => openEnvelope(swapped, { run: RUN, maxPayloadBytes: payloadBytes }))).toBe('hash');
    expect(hashedBytes()).toBe(payloadBytes);
  });

  it('refuses to seal invalid headers', () => {
    const p = new Uint8Array(1);
    const bad: [Parameters<typeof sealEnvelope>[1], EnvelopeReason][] = [
      [{ kind: 'nope' as MessageKind, run: RUN, round: 0, stage: 0 }, 'kind'],
      [{ kind: 'toString' as MessageKind, run: RUN, round: 0, stage: 0 }, 'kind'],
      [{ kind: 'update', run: '', round: 0, stage: 0 }, 'header'],
      [{ kind: 'update', run: 'x'.repeat(256), round: 0, stage: 0 }, 'header'],
      [{ kind: 'update', run: RUN, round: -1, stage: 0 }, 'header'],
      [{ kind: 'update', run: RUN, round: 2 ** 32, stage: 0 }, 'header'],
      [{ kind: 'update', run: RUN, round: 1.5, stage: 0 }, 'header'],
      [{ kind: 'update', run: RUN, round: 0, stage: 65536 }, 'header'],
    ];
    for (const [h, reason] of bad) expect(reasonOf(() => sealEnvelope(alice, h, p)), JSON.stringify(h)).toBe(reason);
  });

  it('peek and open never throw anything but EnvelopeError on random bytes', () => {
    for (let t = 0; t < 2000; t++) {
      const b = randomBytes(8 + (t % 300), t);
      if (t % 2) b.set([0x54, 0x53, 0x4e, 0x4d, 1, 0, 1 + (t % 6)]);
      expect(reasonOf(() => openEnvelope(b, expect_))).not.toBe('ok');
      expect(reasonOf(() => peekEnvelope(b))).not.toBe('ok');
    }
  });
});

describe('openEnvelopeHeader (a bucket intake reads only the header and the signature)', () => {
  const parts = (env: Uint8Array, total = env.length) => [env.subarray(0, Math.min(MAX_HEADER_BYTES, total - SIGNATURE_BYTES)), env.subarray(env.length - SIGNATURE_BYTES), total] as const;

  it('accepts a good envelope from its two ends without hashing the payload; refuses a bad signature, a wrong length, another run, an oversize one', () => {
    const payload = randomBytes(100_000);
    const env = sealEnvelope(alice, { kind: 'update', run: RUN, round: 3, stage: 0 }, payload);
    const hashed = vi.mocked(utilCrypto.blake2AsU8a).mock.calls.length;
    const header = openEnvelopeHeader(...parts(env), expect_);
    expect(header).toMatchObject({ kind: 'update', run: RUN, round: 3, sender: alice.address, payloadLength: payload.length });
    expect(vi.mocked(utilCrypto.blake2AsU8a).mock.calls.length).toBe(hashed); // the payload is not read
    const badSig = env.slice();
    badSig[badSig.length - 1] ^= 1;
    expect(reasonOf(() => openEnvelopeHeader(...parts(badSig), expect_))).toBe('signature');
    // The object is longer or shorter than the header declares.
    expect(reasonOf(() => openEnvelopeHeader(parts(env)[0], parts(env)[1], env.length + 10, expect_))).toBe('trailing');
    expect(reasonOf(() => openEnvelopeHeader(parts(env)[0], parts(env)[1], env.length - 10, expect_))).toBe('truncated');
    expect(reasonOf(() => openEnvelopeHeader(...parts(env), { ...expect_, run: 'other' }))).toBe('run');
    expect(reasonOf(() => openEnvelopeHeader(...parts(env), { ...expect_, maxPayloadBytes: 1000 }))).toBe('size');
    // A signature from someone else over the same header.
    const forged = env.slice();
    forged.set(bob.sign(env.subarray(0, env.length - payload.length - SIGNATURE_BYTES)), env.length - SIGNATURE_BYTES);
    expect(reasonOf(() => openEnvelopeHeader(...parts(forged), expect_))).toBe('signature');
  });
});
