// The simulation's cheap updates and its modelled bucket: templated updates are valid for the
// real decoder, exactly their template's size, distinct per (peer, round) and deterministic;
// the CRC combination they rely on equals a CRC of the whole; the modelled bucket keeps
// recipes, regenerates the uploaded bytes exactly (hash-checked) and behaves as an
// ObjectStore for the coordinator's bucket intake (head, conditional copy, delete, URLs).
import { beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/base/crc32.ts';
import { crc32Combine, zeroBytesOperator } from '../../src/sim/crc32-combine.ts';
import { UpdateTemplates } from '../../src/sim/update-templates.ts';
import { MODELLED_BUCKET_ORIGIN, SimBucket, BUCKET_NODE } from '../../src/sim/sim-bucket.ts';
import { LinkModel } from '../../src/sim/link-model.ts';
import { payloadHash } from '../../src/sim/fingerprint.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { decodeUpdate, UpdateError } from '../../src/sparseloco/wire.ts';
import { parameterLayout, preset } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { MAX_HEADER_BYTES, SIGNATURE_BYTES, openEnvelope, sealEnvelope } from '../../src/net/envelope.ts';
import { ObjectStoreError } from '../../src/coordinator/object-store.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

const config = parseRunConfig({ run: 'sim', model: 'tiny' });
const cfg = preset(config.model);
const decode = (u: Uint8Array, round: number) => decodeUpdate(u, { configHash: configHash(cfg), round, layout: parameterLayout(cfg), maxBytes: config.maxMessageBytes });

describe('crc32Combine', () => {
  it('gives the CRC of a‖b from the parts, at every split', () => {
    const whole = Uint8Array.from({ length: 3000 }, (_, i) => (i * 131 + 17) & 0xff);
    for (const split of [0, 1, 3, 4, 1000, 2999, 3000]) {
      const a = whole.subarray(0, split);
      const b = whole.subarray(split);
      expect(crc32Combine(crc32(a), crc32(b), zeroBytesOperator(b.length))).toBe(crc32(whole));
    }
  });
});

describe('UpdateTemplates', () => {
  let templates: UpdateTemplates;
  beforeAll(() => {
    templates = UpdateTemplates.make(config, 3);
  });

  it('makes updates the real decoder accepts, of exactly their template’s size, for the round asked', () => {
    for (const [round, seed] of [[0, 1], [1, 1], [7, 250], [123456, 3]]) {
      const u = templates.update(round, seed);
      expect(u.length).toBe(templates.sizeOf(templates.recipe(round, seed).template));
      const d = decode(u, round);
      expect(d.tensors.length).toBe(parameterLayout(cfg).length);
      expect(() => decode(u, round + 1)).toThrow(UpdateError); // the round field is the one asked for
    }
  });

  it('rewrites the codes: peers on one template share index sets but not values, and every (peer, round) hashes differently', () => {
    const hashes = new Set<string>();
    for (let round = 0; round < 4; round++) for (let seed = 1; seed <= 30; seed++) hashes.add(payloadHash(templates.update(round, seed)));
    expect(hashes.size).toBe(4 * 30);
    const a = decode(templates.update(0, 3), 0); // 3 and 6 use the same template (3 of them) in round 0
    const b = decode(templates.update(0, 6), 0);
    expect(templates.recipe(0, 3).template).toBe(templates.recipe(0, 6).template);
    expect(a.tensors[0].indices).toEqual(b.tensors[0].indices);
    expect(a.tensors[0].values).not.toEqual(b.tensors[0].values);
  });

  it('is deterministic: the same recipe gives the same bytes, here and written in place', () => {
    const one = templates.update(5, 42);
    expect(templates.update(5, 42)).toEqual(one);
    const out = new Uint8Array(one.length + 10);
    templates.write(templates.recipe(5, 42), out, 7);
    expect(out.subarray(7, 7 + one.length)).toEqual(one);
    expect(() => templates.write({ template: 9, seed: 1, round: 0 }, out, 0)).toThrow(/no update template 9/);
  });
});

describe('SimBucket (the modelled bucket)', () => {
  let templates: UpdateTemplates;
  let key: Hotkey;
  beforeAll(async () => {
    await cryptoReady();
    templates = UpdateTemplates.make(config, 2);
    key = Hotkey.fromSeed(new Uint8Array(32).fill(7));
  });
  const envelopeOf = (round: number, seed: number) => sealEnvelope(key, { kind: 'update', run: config.run, round, stage: 0 }, templates.update(round, seed));

  it('keeps a recipe, and a read regenerates the uploaded bytes exactly (the envelope still opens)', async () => {
    const bucket = new SimBucket({ templates });
    const envelope = envelopeOf(2, 9);
    const url = await bucket.presignPut('uploads/sim/2/x.bin');
    expect(url.startsWith(MODELLED_BUCKET_ORIGIN)).toBe(true);
    const k = SimBucket.keyOf(url)!;
    bucket.upload(k, bucket.recordOf(envelope, templates.recipe(2, 9)));
    expect(await bucket.head(k)).toMatchObject({ bytes: envelope.length });
    const read = (await bucket.get(k, config.maxMessageBytes * 2))!;
    expect(read).toEqual(envelope);
    expect(openEnvelope(read, { run: config.run, maxPayloadBytes: config.maxMessageBytes }).header.sender).toBe(key.address);
    expect(bucket.peerRead(k)).toBe(envelope.length);
    expect(bucket.download(k)).toEqual(envelope);
    expect(bucket.counters).toMatchObject({ uploads: 1, coordinatorReads: 1, peerReads: 2, regenerated: 2 });
    // The intake's ranged reads (the header with the frame's first bytes, the signature): the same bytes, nothing regenerated.
    const etag = (await bucket.head(k))!.etag;
    const headEnd = Math.min(MAX_HEADER_BYTES, envelope.length - SIGNATURE_BYTES);
    expect(await bucket.getRange(k, 0, headEnd, etag)).toEqual(envelope.subarray(0, headEnd));
    expect(await bucket.getRange(k, envelope.length - SIGNATURE_BYTES, envelope.length, etag)).toEqual(envelope.subarray(envelope.length - SIGNATURE_BYTES));
    expect(bucket.counters).toMatchObject({ coordinatorRangeReads: 2, regenerated: 2 });
    expect(SimBucket.keyOf('https://elsewhere.example/x')).toBeNull();
  });

  it('refuses a read whose regenerated bytes do not hash as uploaded', async () => {
    const bucket = new SimBucket({ templates });
    const envelope = envelopeOf(1, 4);
    // A record claiming another peer's recipe: the bytes it regenerates are not the ones uploaded.
    bucket.upload('k', bucket.recordOf(envelope, { ...templates.recipe(1, 4), seed: 5 }));
    await expect(bucket.get('k', Infinity)).rejects.toThrow(/regenerated from its recipe hashes .*, not .* as uploaded/);
  });

  it('copies only the version asked for, deletes, keeps put objects whole, and enforces the size limit', async () => {
    const bucket = new SimBucket({ templates });
    const envelope = envelopeOf(0, 1);
    bucket.upload('a', bucket.recordOf(envelope, templates.recipe(0, 1)));
    const { etag } = (await bucket.head('a'))!;
    await expect(bucket.copy('a', 'b', 'stale')).rejects.toBeInstanceOf(ObjectStoreError);
    await bucket.copy('a', 'b', etag);
    expect(await bucket.get('b', Infinity)).toEqual(envelope);
    await expect(bucket.get('b', 10)).rejects.toMatchObject({ reason: 'too-large' });
    await bucket.put('c', new Uint8Array([1, 2, 3]));
    expect(await bucket.get('c', 10)).toEqual(new Uint8Array([1, 2, 3]));
    await bucket.delete(['a', 'c', 'missing']);
    expect(await bucket.head('a')).toBeNull();
    expect(await bucket.get('c', 10)).toBeNull();
    expect(bucket.counters).toMatchObject({ copies: 1, deletes: 2, held: 1, peakHeld: 3 });
  });

  it("waits the coordinator's modelled read of each object (a fake clock)", async () => {
    const links = new LinkModel({ unlinkable: 0, seed: 1 });
    links.addNode(BUCKET_NODE, { upMbps: 8, downMbps: 8, rttMs: 10, loss: 0 });
    links.addNode(-1, { upMbps: 8, downMbps: 8, rttMs: 10, loss: 0 });
    const slept: number[] = [];
    const bucket = new SimBucket({ templates, links: { model: links, coordinator: -1 }, now: () => 0, sleep: async (ms) => void slept.push(ms) });
    await bucket.put('x', new Uint8Array(1000));
    await bucket.get('x', Infinity);
    await bucket.get('x', Infinity); // queued behind the first on the links
    expect(slept).toEqual([11, 12]); // 1,000 bytes at 8 Mbit/s = 1 ms, plus the 10 ms round trip
  });
});
