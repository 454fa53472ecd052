import { describe, expect, it } from 'vitest';
import { ByteReader, FormatError, exactUtf8, writeMagic, type FormatSpec } from '../../src/base/format.ts';
import { EnvelopeError } from '../../src/net/envelope.ts';
import { ActivationError } from '../../src/pipeline/activation-codec.ts';
import { UpdateError } from '../../src/sparseloco/wire.ts';
import { CheckpointError } from '../../src/train/checkpoint.ts';
import { ShardError } from '../../src/train/shards.ts';

type TestReason = 'truncated' | 'magic';
class TestError extends FormatError<TestReason> {
  constructor(reason: TestReason, message: string) {
    super('TestError', reason, message);
  }
}
const SPEC: FormatSpec = { name: 'test record', truncated: (m) => new TestError('truncated', m) };

function caught(f: () => unknown): TestError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TestError);
    return e as TestError;
  }
  throw new Error('expected a throw');
}

describe('FormatError', () => {
  it('carries its name, reason and message, and every codec error is one', () => {
    const e = new TestError('magic', 'not a test record');
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(FormatError);
    expect([e.name, e.reason, e.message]).toEqual(['TestError', 'magic', 'not a test record']);
    const codecs: [FormatError, string][] = [
      [new EnvelopeError('magic', 'm'), 'EnvelopeError'],
      [new ActivationError('magic', 'm'), 'ActivationError'],
      [new UpdateError('magic', 'm'), 'UpdateError'],
      [new CheckpointError('magic', 'm'), 'CheckpointError'],
      [new ShardError('magic', 'm'), 'ShardError'],
    ];
    for (const [err, name] of codecs) {
      expect(err).toBeInstanceOf(FormatError);
      expect([err.name, err.reason, String(err)]).toEqual([name, 'magic', `${name}: m`]);
    }
  });
});

describe('ByteReader', () => {
  it('reads little-endian integers and floats in order, on a view at an offset', () => {
    const backing = new Uint8Array(40);
    const bytes = backing.subarray(3, 3 + 22);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    bytes[0] = 0xfe;
    dv.setInt8(1, -5);
    dv.setUint16(2, 0xbeef, true);
    dv.setUint32(4, 0xdeadbeef, true);
    dv.setInt32(8, -123456, true);
    dv.setFloat32(12, 1.5, true);
    bytes.set([7, 8, 9, 10, 11, 12], 16);
    const r = new ByteReader(bytes, SPEC);
    expect([r.u8('a'), r.i8('b'), r.u16('c'), r.u32('d'), r.i32('e'), r.f32('f')]).toEqual([0xfe, -5, 0xbeef, 0xdeadbeef, -123456, 1.5]);
    expect(r.offset).toBe(16);
    const taken = r.take(2, 'g');
    expect(Array.from(taken)).toEqual([7, 8]);
    expect(taken.buffer).toBe(backing.buffer); // a view, not a copy
    r.skip(1, 'h');
    expect(r.u8('i')).toBe(10);
    expect(r.view.getUint8(0)).toBe(0xfe);
    expect(r.length).toBe(22);
    expect(new ByteReader(bytes, SPEC, 20).u16('j')).toBe(12 * 256 + 11);
  });

  it('reports truncation with the format, the field and the offset, and reads nothing', () => {
    const r = new ByteReader(new Uint8Array(5), SPEC);
    r.u16('its version');
    const e = caught(() => r.u32('its round and stage'));
    expect(e.reason).toBe('truncated');
    expect(e.message).toBe('test record of 5 bytes is truncated inside its round and stage (4 bytes at offset 2)');
    expect(r.offset).toBe(2);
    expect(r.u16('the rest')).toBe(0); // the reader is still usable where it was
    r.skip(1, 'the last byte');
    for (const read of [() => r.u8('x'), () => r.i8('x'), () => r.u16('x'), () => r.i32('x'), () => r.f32('x'), () => r.take(1, 'x'), () => r.skip(1, 'x')]) {
      expect(caught(read).message).toMatch(/^test record of 5 bytes is truncated inside x \(\d bytes at offset 5\)$/);
    }
    expect(r.take(0, 'nothing')).toHaveLength(0);
  });

  it('need() checks without reading', () => {
    const r = new ByteReader(new Uint8Array(10), SPEC, 4);
    r.need(6, 'the tail');
    expect(r.offset).toBe(4);
    expect(caught(() => r.need(7, 'the tail and one more')).message).toMatch(/inside the tail and one more \(7 bytes at offset 4\)/);
  });

  it('magic(): a short input is truncated, another magic is reported printable', () => {
    const wrong = (found: string) => new TestError('magic', `not a test record (magic '${found}')`);
    const ok = new Uint8Array(8);
    writeMagic(ok, 'TEST');
    expect(Array.from(ok.subarray(0, 4))).toEqual([0x54, 0x45, 0x53, 0x54]);
    const r = new ByteReader(ok, SPEC);
    r.magic('TEST', wrong);
    expect(r.offset).toBe(4);
    const short = caught(() => new ByteReader(ok.subarray(0, 3), SPEC).magic('TEST', wrong));
    expect([short.reason, short.message]).toEqual(['truncated', 'test record of 3 bytes is truncated inside its magic (4 bytes at offset 0)']);
    const other = caught(() => new ByteReader(new Uint8Array([0x54, 0x00, 0x7f, 0xc3, 0]), SPEC).magic('TEST', wrong));
    expect([other.reason, other.message]).toEqual(['magic', "not a test record (magic 'T???')"]);
    const at = new Uint8Array(6);
    writeMagic(at, 'ABCD', 2);
    expect(Array.from(at)).toEqual([0, 0, 65, 66, 67, 68]);
  });
});

describe('exactUtf8', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('returns the text of valid UTF-8', () => {
    for (const s of ['', 'run-1', 'lauf-ü-🚀', '日本語', '\u0000']) expect(exactUtf8(enc(s))).toBe(s);
  });
  it('refuses bytes that do not encode back to themselves', () => {
    const bad = [
      [0x80], // a lone continuation byte
      [0xc3], // a cut sequence
      [0xc0, 0xaf], // an overlong '/'
      [0xed, 0xa0, 0x80], // a UTF-16 surrogate
      [0xff],
      [0xef, 0xbb, 0xbf, 0x41], // a byte-order mark, which the decoder drops
    ];
    for (const b of bad) expect(exactUtf8(Uint8Array.from(b)), b.join(',')).toBeNull();
  });
});
