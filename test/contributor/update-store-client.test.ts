// UpdateUploads, the contributor's side of the update store, on a hand-moved clock and a
// recording HTTP client (the real bucket is test/e2e/s3-store.test.ts): which path an update
// takes, what is counted, and the fallback to the socket each time the bucket's side fails.
import { beforeAll, describe, expect, it } from 'vitest';
import { UpdateUploads } from '../../src/contributor/update-store-client.ts';
import { Refusals } from '../../src/contributor/inbox.ts';
import { Traffic } from '../../src/contributor/traffic.ts';
import type { HttpClient } from '../../src/protocol/http.ts';
import { sealEnvelope, peekEnvelope, openEnvelopeHeader, MAX_HEADER_BYTES, SIGNATURE_BYTES } from '../../src/net/envelope.ts';
import { envelopeRoot } from '../../src/net/pieces.ts';
import { verifyPieceRoot } from '../../src/net/signed-root.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { devKeys } from '../coordinator/helpers.ts';

/** A signed envelope of a 1,000-byte payload: a bucket upload signs its piece root. */
let ENVELOPE: Uint8Array;
let key: Hotkey;
beforeAll(async () => {
  key = (await devKeys()).alice;
  ENVELOPE = sealEnvelope(key, { kind: 'update', run: 'run', round: 4, stage: 0 }, new Uint8Array(1000).fill(7));
});
const URL_OF = (r: number) => `http://bucket.test/uploads/run/${r}/x.bin?X-Amz-Signature=abc`;

function setup(answer: (url: string) => { status: number; text: string } | Error) {
  let t = 0;
  const clock = { now: () => t, sleep: async () => {} };
  const puts: string[] = [];
  const control: unknown[] = [];
  const binary: Uint8Array[] = [];
  const http: HttpClient = {
    get: async () => null,
    put: async (url) => {
      puts.push(url);
      const a = answer(url);
      if (a instanceof Error) throw a;
      return a;
    },
  };
  const refusals = new Refusals(() => {});
  const traffic = new Traffic();
  const uploads = new UpdateUploads({ key, http, clock, refusals, traffic, coordinator: () => ({ send: (m) => void control.push(m), sendBinary: (b) => (binary.push(b), true) }) });
  return { uploads, puts, control, binary, refusals, traffic, advance: (ms: number) => (t += ms) };
}

describe('UpdateUploads', () => {
  it('without an upload URL the update goes over the socket', async () => {
    const s = setup(() => ({ status: 200, text: '' }));
    expect(await s.uploads.send(3, ENVELOPE)).toBe('coordinator');
    expect(s.binary).toEqual([ENVELOPE]);
    expect(s.puts).toEqual([]);
    expect(s.traffic.totals({ bytesSent: 0, bytesReceived: 0 }).bytesUp).toBe(ENVELOPE.length);
  });

  it("with the round's URL it PUTs there and says uploaded; a URL of another round is not used", async () => {
    const s = setup(() => ({ status: 200, text: '' }));
    s.uploads.offer({ type: 'upload-url', round: 4, url: URL_OF(4), validMs: 60_000 });
    expect(await s.uploads.send(4, ENVELOPE)).toBe('bucket');
    expect(s.puts).toEqual([URL_OF(4)]);
    expect(s.control).toEqual([{ type: 'uploaded', round: 4, bytes: ENVELOPE.length, pieces: envelopeRoot(ENVELOPE), piecesSignature: expect.stringMatching(/^[0-9a-f]{128}$/) }]);
    // The root is signed by the envelope's author, for this envelope: what the coordinator checks.
    const said = s.control[0] as { pieces: string; piecesSignature: string };
    const header = openEnvelopeHeader(ENVELOPE.subarray(0, Math.min(MAX_HEADER_BYTES, ENVELOPE.length - SIGNATURE_BYTES)), ENVELOPE.subarray(ENVELOPE.length - SIGNATURE_BYTES), ENVELOPE.length, { run: 'run', maxPayloadBytes: 4096 });
    expect(verifyPieceRoot(header, ENVELOPE.length, said)).toBe(true);
    expect(peekEnvelope(ENVELOPE).sender).toBe(key.address);
    expect(s.binary).toEqual([]);
    s.uploads.accepted(4);
    s.uploads.refused('bucket-missing'); // accepted already: nothing pending, nothing resent
    expect(s.binary).toEqual([]);
    s.uploads.offer({ type: 'upload-url', round: 5, url: URL_OF(5), validMs: 60_000 });
    expect(await s.uploads.send(6, ENVELOPE)).toBe('coordinator');
    expect(s.puts).toHaveLength(1);
  });

  it('an expired URL is not tried: counted, sent over the socket', async () => {
    const s = setup(() => ({ status: 200, text: '' }));
    s.uploads.offer({ type: 'upload-url', round: 1, url: URL_OF(1), validMs: 10_000 });
    s.advance(10_000);
    expect(await s.uploads.send(1, ENVELOPE)).toBe('coordinator');
    expect(s.puts).toEqual([]);
    expect(s.refusals.byReason).toEqual({ 'bucket-expired': 1 });
  });

  it("the bucket's refusals are counted by kind, with S3's code, and the update goes over the socket", async () => {
    const answers: ({ status: number; text: string } | Error)[] = [
      { status: 403, text: '<Error><Code>AccessDenied</Code></Error>' },
      { status: 404, text: '<Error><Code>NoSuchBucket</Code></Error>' },
      new TypeError('fetch failed'),
    ];
    const s = setup(() => answers.shift()!);
    for (const r of [1, 2, 3]) {
      s.uploads.offer({ type: 'upload-url', round: r, url: URL_OF(r), validMs: 60_000 });
      expect(await s.uploads.send(r, ENVELOPE)).toBe('coordinator');
    }
    expect(s.refusals.byReason).toEqual({ 'bucket-expired': 1, 'bucket-refused': 1, 'bucket-unreachable': 1 });
    expect(s.binary).toHaveLength(3);
    expect(s.control).toEqual([]);
  });

  it("the coordinator's bucket-… refusal of an upload sends the same envelope over the socket, once", async () => {
    const s = setup(() => ({ status: 200, text: '' }));
    s.uploads.offer({ type: 'upload-url', round: 2, url: URL_OF(2), validMs: 60_000 });
    await s.uploads.send(2, ENVELOPE);
    s.uploads.refused('signal-not-neighbour'); // not about the upload
    expect(s.binary).toEqual([]);
    s.uploads.refused('bucket-size');
    s.uploads.refused('bucket-size');
    expect(s.binary).toEqual([ENVELOPE]);
  });
});
