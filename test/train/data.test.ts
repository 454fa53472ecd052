// Tokenizers, token shards, the deterministic sampler and the held-out split.
import { describe, expect, it } from 'vitest';
import { ByteTokenizer, Gpt2Tokenizer, TokenizerError, encodeDocuments, tokenizerFor } from '../../src/train/tokenizer.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { ShardError, decodeShard, encodeShard, readShardHeader, tokenWidth } from '../../src/train/shards.ts';
import { SampleRng, evalBatches, sampleBatch, sampleSeed, splitShard, type SampleKey } from '../../src/train/sampler.ts';
import { unigramEntropy, unigramEntropyBits } from '../../src/train/stats.ts';
import { preset } from '../../src/model/config.ts';

/** A tiny seeded generator for test inputs (not the one under test). */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('tokenizers', () => {
  it('bytes: UTF-8 round trip, vocab 256', () => {
    const tok = new ByteTokenizer();
    const text = 'Fellow-Citizens — naïve 日本 🚀\n';
    const ids = tok.encode(text);
    expect(tok.vocabSize).toBe(256);
    expect(Array.from(ids)).toEqual(Array.from(new TextEncoder().encode(text)));
    expect(tok.decode(ids)).toBe(text);
    expect(() => tok.decode([256])).toThrow(TokenizerError);
  });

  it('gpt2: GPT-2 ids, round trip, special tokens stay text', () => {
    const tok = new Gpt2Tokenizer();
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eot).toBe(50256);
    expect(Array.from(tok.encode('hello world'))).toEqual([31373, 995]);
    expect(Array.from(tok.encode(' the'))).toEqual([262]);
    const text = 'The State of the Union is strong. Naïve café, 1790–2021!\n\n<|endoftext|> ok';
    const ids = tok.encode(text);
    expect(Array.from(ids)).not.toContain(50256);
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode([50256])).toBe('<|endoftext|>');
    expect(() => tok.decode([50257])).toThrow(TokenizerError);
  });

  it('tokenizerFor: by name and by model config', () => {
    expect(tokenizerFor('bytes').name).toBe('bytes');
    expect(tokenizerFor('gpt2').name).toBe('gpt2');
    expect(tokenizerFor(preset('tiny')).name).toBe('bytes');
    expect(tokenizerFor(preset('small')).name).toBe('gpt2');
    expect(tokenizerFor(preset('1b')).vocabSize).toBe(50257);
    expect(() => tokenizerFor('sentencepiece')).toThrow(/unknown tokenizer/);
    expect(() => tokenizerFor({ vocabSize: 1000 })).toThrow(/no tokenizer has vocabulary 1000/);
  });

  it('encodeDocuments separates documents by eot (gpt2) or a blank line (bytes)', () => {
    const g = encodeDocuments(tokenizerFor('gpt2'), ['a b', 'c']);
    expect(g).toBeInstanceOf(Uint16Array);
    expect(Array.from(g)).toEqual([...tokenizerFor('gpt2').encode('a b'), 50256, ...tokenizerFor('gpt2').encode('c')]);
    const b = encodeDocuments(tokenizerFor('bytes'), ['ab', 'c']);
    expect(new TextDecoder().decode(Uint8Array.from(b))).toBe('ab\n\nc');
  });
});

describe('token shards', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const a = new TextEncoder().encode('12345');
    const b = new TextEncoder().encode('6789');
    expect(crc32(b, crc32(a))).toBe(0xcbf43926);
  });

  it('round-trips random token streams (property)', () => {
    const rnd = lcg(1);
    for (let trial = 0; trial < 60; trial++) {
      const vocab = [1, 2, 256, 50257, 65536, 65537, 100_000, 2 ** 31 - 1][trial % 8];
      const n = Math.floor(rnd() * 300) * (trial % 5 === 0 ? 0 : 1);
      const tokens = Array.from({ length: n }, () => Math.floor(rnd() * vocab));
      const name = trial % 2 ? 'gpt2' : `tok-${trial}.v1`;
      const bytes = encodeShard(tokens, { tokenizer: name, vocabSize: vocab });
      const { meta, tokens: back } = decodeShard(bytes);
      expect(meta).toEqual({ tokenizer: name, vocabSize: vocab });
      expect(back.BYTES_PER_ELEMENT).toBe(tokenWidth(vocab));
      expect(Array.from(back)).toEqual(tokens);
      expect(readShardHeader(bytes).count).toBe(n);
      // Decoding a copy at an odd byte offset (unaligned payload) gives the same tokens.
      const shifted = new Uint8Array(bytes.length + 1);
      shifted.set(bytes, 1);
      expect(Array.from(decodeShard(shifted.subarray(1)).tokens)).toEqual(tokens);
    }
  });

  it('returns a copy, never a view of the input bytes', () => {
    const bytes = encodeShard([1, 2, 3], { tokenizer: 'bytes', vocabSize: 256 });
    const { tokens } = decodeShard(bytes);
    expect(tokens.buffer).not.toBe(bytes.buffer);
  });

  it('rejects every single-byte corruption, truncation and extension (property)', () => {
    const rnd = lcg(7);
    for (const vocab of [256, 50257, 70000]) {
      const tokens = Array.from({ length: 40 }, () => Math.floor(rnd() * vocab));
      const good = encodeShard(tokens, { tokenizer: 'gpt2', vocabSize: vocab });
      for (let i = 0; i < good.length; i++) {
        for (const flip of [0x01, 0x80, 0xff]) {
          const bad = good.slice();
          bad[i] ^= flip;
          expect(() => decodeShard(bad), `byte ${i} ^ ${flip}`).toThrow(ShardError);
        }
      }
      for (let len = 0; len < good.length; len++) {
        expect(() => decodeShard(good.subarray(0, len)), `truncated to ${len}`).toThrow(ShardError);
      }
      const longer = new Uint8Array(good.length + 2);
      longer.set(good);
      expect(() => decodeShard(longer)).toThrow(/unexpected bytes/);
    }
  });

  it('names the problem: magic, version, truncation, checksums, token range', () => {
    const good = encodeShard([1, 2, 3, 4], { tokenizer: 'bytes', vocabSize: 256 });
    const problem = (b: Uint8Array) => {
      try {
        decodeShard(b, 'x.bin');
      } catch (e) {
        expect(e).toBeInstanceOf(ShardError);
        expect((e as Error).message).toMatch(/^x\.bin: /);
        return (e as ShardError).reason;
      }
      return 'none';
    };
    const m = good.slice();
    m[0] = 0x50;
    expect(problem(m)).toBe('magic');
    const v = good.slice();
    v[4] = 2;
    expect(problem(v)).toBe('version');
    expect(() => decodeShard(v)).toThrow(/version 2.*rebuild/);
    expect(problem(good.subarray(0, good.length - 1))).toBe('truncated');
    const p = good.slice();
    p[p.length - 1] ^= 1;
    expect(problem(p)).toBe('payload-crc');
    const h = good.slice();
    h[9] ^= 1;
    expect(problem(h)).toBe('header-crc');
    expect(() => decodeShard(h)).toThrow(/corrupt/);
    // A token outside the vocabulary with valid checksums: forge one by re-encoding with a
    // bigger vocabulary, then patching the vocabulary down and fixing both CRCs.
    const big = encodeShard([1, 300], { tokenizer: 'bytes', vocabSize: 1000 });
    const dv = new DataView(big.buffer);
    dv.setUint32(8, 256, true);
    const H = big.length - 2 * 2;
    dv.setUint32(H - 4, crc32(big.subarray(0, H - 4)), true);
    expect(problem(big)).toBe('token-range');
    expect(() => decodeShard(big)).toThrow(/token 300 at position 1 is outside the vocabulary \[0, 256\)/);
  });

  it('refuses to write ids outside the vocabulary or bad names', () => {
    expect(() => encodeShard([0, 256], { tokenizer: 'bytes', vocabSize: 256 })).toThrow(/token 256 at position 1/);
    expect(() => encodeShard([0.5], { tokenizer: 'bytes', vocabSize: 256 })).toThrow(ShardError);
    expect(() => encodeShard([0], { tokenizer: 'a b', vocabSize: 256 })).toThrow(/tokenizer name/);
    expect(() => encodeShard([0], { tokenizer: 'bytes', vocabSize: 0 })).toThrow(/vocabSize/);
  });
});

describe('sampler', () => {
  const stream = Uint16Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 50257);
  const key: SampleKey = { runSeed: 42, round: 3, contributor: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY', step: 5 };

  it('same key → same batch; targets are the tokens shifted by one', () => {
    const a = sampleBatch(stream, { B: 4, T: 16 }, key);
    const b = sampleBatch(Array.from(stream), { B: 4, T: 16 }, { ...key });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.targets).toEqual(b.targets);
    expect(a.offsets).toEqual(b.offsets);
    for (let r = 0; r < 4; r++) {
      const o = a.offsets[r];
      expect(o).toBeGreaterThanOrEqual(0);
      expect(o + 16).toBeLessThan(stream.length);
      for (let t = 0; t < 16; t++) {
        expect(a.tokens[r * 16 + t]).toBe(stream[o + t]);
        expect(a.targets[r * 16 + t]).toBe(stream[o + t + 1]);
      }
    }
  });

  it('is pinned: these offsets are what every machine must compute', () => {
    // If this changes, validators and contributors disagree: bump SAMPLER_VERSION instead.
    expect(sampleSeed(key)).toEqual([1368821309, 3463748993, 1558798747, 265434463]);
    expect(sampleBatch(stream, { B: 4, T: 16 }, key).offsets).toEqual([6308, 5407, 2202, 6208]);
  });

  it('any field of the key changes the batch', () => {
    const base = sampleBatch(stream, { B: 8, T: 8 }, key).offsets;
    for (const k of [{ runSeed: 43 }, { round: 4 }, { step: 6 }, { contributor: key.contributor + 'x' }]) {
      expect(sampleBatch(stream, { B: 8, T: 8 }, { ...key, ...k }).offsets).not.toEqual(base);
    }
  });

  it('covers the whole range, including both ends, about uniformly', () => {
    const small = Uint16Array.from({ length: 12 }, (_, i) => i);
    const seen = new Array(12 - 4).fill(0);
    for (let step = 0; step < 400; step++) {
      for (const o of sampleBatch(small, { B: 2, T: 4 }, { ...key, step }).offsets) seen[o]++;
    }
    expect(seen.every((c) => c > 60 && c < 140)).toBe(true);
    const rng = new SampleRng([1, 2, 3, 4]);
    const hist = new Array(3).fill(0);
    for (let i = 0; i < 30_000; i++) hist[rng.below(3)]++;
    for (const c of hist) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });

  it('rejects bad shapes and keys', () => {
    expect(() => sampleBatch(stream.subarray(0, 8), { B: 1, T: 8 }, key)).toThrow(/cannot hold one window/);
    expect(sampleBatch(stream.subarray(0, 9), { B: 3, T: 8 }, key).offsets).toEqual([0, 0, 0]);
    expect(() => sampleBatch(stream, { B: 0, T: 8 }, key)).toThrow(/B must be/);
    expect(() => sampleBatch(stream, { B: 1, T: 8 }, { ...key, round: -1 })).toThrow(/round/);
    expect(() => sampleBatch(stream, { B: 1, T: 8 }, { ...key, contributor: '' })).toThrow(/contributor/);
  });

  it('splitShard holds out the last fraction; training windows never reach it', () => {
    const { train, valid } = splitShard(stream, { validFraction: 0.1 });
    expect(valid.length).toBe(1000);
    expect(train.length).toBe(9000);
    expect(valid[0]).toBe(stream[9000]);
    for (let step = 0; step < 50; step++) {
      const b = sampleBatch(train, { B: 4, T: 32 }, { ...key, step });
      for (const o of b.offsets) expect(o + 32).toBeLessThan(train.length);
    }
    const arr = splitShard([1, 2, 3, 4, 5], { validFraction: 0.4 });
    expect(arr).toEqual({ train: [1, 2, 3], valid: [4, 5] });
    expect(splitShard([1, 2, 3], { validFraction: 0 }).valid).toEqual([]);
    expect(() => splitShard([1], { validFraction: 1 })).toThrow(RangeError);
  });

  it('evalBatches walks the held-out part in consecutive windows', () => {
    const valid = Uint16Array.from({ length: 100 }, (_, i) => i);
    const bs = evalBatches(valid, { B: 2, T: 10 });
    expect(bs.length).toBe(4); // 9 windows of 10 (+1 target) → 4 full batches of 2
    expect(bs[1].offsets).toEqual([20, 30]);
    expect(bs[1].tokens[0]).toBe(20);
    expect(bs[1].targets[9]).toBe(30);
    expect(evalBatches(valid, { B: 2, T: 10 }, 1).length).toBe(1);
  });
});

describe('unigram entropy', () => {
  it('is log V for a uniform stream, 0 for a constant one', () => {
    const uniform = Array.from({ length: 256 * 4 }, (_, i) => i % 256);
    expect(unigramEntropy(uniform, 256)).toBeCloseTo(Math.log(256), 12);
    expect(unigramEntropyBits(uniform, 256)).toBeCloseTo(8, 12);
    expect(unigramEntropy([5, 5, 5], 256)).toBe(0);
    expect(unigramEntropy([], 256)).toBe(0);
    expect(unigramEntropyBits([0, 1], 2)).toBeCloseTo(1, 12);
    expect(() => unigramEntropy([256], 256)).toThrow(RangeError);
  });
});
