import { describe, expect, it } from 'vitest';
import { fromHex, fromPrefixedHex, hex32, isPrefixedHex, toHex, toPrefixedHex } from '../../src/base/hex.ts';
import { rng } from '../helpers/rng.ts';

// Strings that are not hex in either spelling.
const NOT_HEX = ['0', 'abc', 'zz', '0x0', ' 00', '00 ', '0x0x00', '-1', '0X00', '00\n', 'g0', '0x 00', '０', '0xzz'];

describe('hex', () => {
  it('round trips bytes, accepts 0x, refuses odd lengths and non-hex', () => {
    const b = new Uint8Array([0, 1, 0x7f, 0x80, 0xff]);
    expect(toHex(b)).toBe('00017f80ff');
    expect(fromHex('00017f80ff')).toEqual(b);
    expect(fromHex('0x00017F80FF')).toEqual(b);
    expect(fromHex('')).toEqual(new Uint8Array(0));
    for (const bad of ['0', 'abc', 'zz', '0x0', ' 00', '00 ', '0x0x00', '-1']) expect(fromHex(bad), bad).toBeNull();
  });

  it('round trips random bytes of every length up to 70, in both spellings', () => {
    const next = rng(16);
    for (let n = 0; n <= 70; n++) {
      const bytes = Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
      const bare = toHex(bytes);
      expect(bare).toMatch(/^([0-9a-f]{2})*$/);
      expect(bare.length).toBe(2 * n);
      expect(toPrefixedHex(bytes)).toBe(`0x${bare}`);
      expect(fromHex(bare)).toEqual(bytes);
      expect(fromHex(bare.toUpperCase())).toEqual(bytes);
      expect(fromHex(toPrefixedHex(bytes))).toEqual(bytes);
      expect(fromPrefixedHex(toPrefixedHex(bytes))).toEqual(bytes);
      expect(isPrefixedHex(toPrefixedHex(bytes))).toBe(true);
    }
  });

  it('the 0x spelling: required by isPrefixedHex and fromPrefixedHex, which throws on anything else', () => {
    expect(isPrefixedHex('0x')).toBe(true);
    expect(fromPrefixedHex('0x')).toEqual(new Uint8Array(0));
    expect(isPrefixedHex('0xABcd')).toBe(true);
    expect(fromPrefixedHex('0xABcd')).toEqual(new Uint8Array([0xab, 0xcd]));
    for (const bad of [...NOT_HEX, '00', 'ab', '']) {
      expect(isPrefixedHex(bad), bad).toBe(false);
      expect(() => fromPrefixedHex(bad), bad).toThrow(TypeError);
    }
    for (const notString of [undefined, null, 12, ['0x00'], { length: 2 }]) {
      expect(isPrefixedHex(notString)).toBe(false);
      expect(() => fromPrefixedHex(notString as string)).toThrow(/not 0x-prefixed hex/);
    }
  });

  it('fromHex refuses what is not hex, non-strings included, with null', () => {
    for (const bad of NOT_HEX) expect(fromHex(bad), JSON.stringify(bad)).toBeNull();
    for (const notString of [undefined, null, 1234, ['00'], new Uint8Array(2)]) expect(fromHex(notString)).toBeNull();
  });

  it('hex32 writes a u32 as 0x and eight digits', () => {
    expect(hex32(0)).toBe('0x00000000');
    expect(hex32(0xcbf43926)).toBe('0xcbf43926');
    expect(hex32(-1)).toBe('0xffffffff');
    expect(hex32(0x1234)).toBe('0x00001234');
  });
});
