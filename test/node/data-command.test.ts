// `tessera data build` as a user runs it (a real process), and loadOrBuildShard.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeShard } from '../../src/train/shards.ts';
import { tokenizerFor } from '../../src/train/tokenizer.ts';
import { defaultShardPath, loadOrBuildShard, loadSotuCorpus } from '../../src/node/corpus.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tessera-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tessera(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000, cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function printed(out: string, key: string): string {
  const m = out.match(new RegExp(`^${key}\\s+(.*)$`, 'm'));
  expect(m, `'${key}' line in:\n${out}`).not.toBeNull();
  return m![1];
}

describe('tessera data build', () => {
  it('bytes over the whole default corpus: a valid shard and a sane entropy', () => {
    const out = join(dir, 'x.bin');
    const r = tessera(['data', 'build', '--tokenizer', 'bytes', '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const { meta, tokens } = decodeShard(readFileSync(out), out);
    expect(meta).toEqual({ tokenizer: 'bytes', vocabSize: 256 });
    const count = Number(printed(r.out, 'tokens').replace(/,/g, ''));
    expect(count).toBe(tokens.length);
    expect(count).toBeGreaterThan(10_000_000); // ~10.8 MB of text, mostly ASCII
    // English text as bytes: about 4.3 bits/token at order 0, well under the 8 of uniform bytes.
    const [, bits, nats] = printed(r.out, 'entropy').match(/([\d.]+) bits\/token, ([\d.]+) nats\/token/)!;
    expect(Number(bits)).toBeGreaterThan(3.8);
    expect(Number(bits)).toBeLessThan(5);
    expect(Number(nats)).toBeCloseTo(Number(bits) * Math.LN2, 3);
    expect(printed(r.out, 'time')).toMatch(/^[\d.]+ s$/);
    // The text is the corpus, documents joined by blank lines.
    expect(new TextDecoder().decode(Uint8Array.from(tokens.subarray(0, 40)))).toBe('Fellow-Citizens of the Senate and House ');
    // No temporary file is left next to it.
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('gpt2 on a small --input file; default output under .tessera/data of the current folder', () => {
    const input = join(dir, 'speech.txt');
    const text = 'We the People of the United States, in Order to form a more perfect Union, establish Justice. '.repeat(20);
    writeFileSync(input, text);
    const r = tessera(['data', 'build', '--tokenizer', 'gpt2', '--input', input], dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const path = defaultShardPath('speech', 'gpt2', dir);
    expect(printed(r.out, 'wrote')).toContain(path);
    const { meta, tokens } = decodeShard(readFileSync(path));
    expect(meta).toEqual({ tokenizer: 'gpt2', vocabSize: 50257 });
    expect(tokenizerFor('gpt2').decode(tokens)).toBe(text);
    const bits = Number(printed(r.out, 'entropy').split(' ')[0]);
    expect(bits).toBeGreaterThan(2);
    expect(bits).toBeLessThan(Math.log2(tokens.length));
  });

  it('bad usage exits 2 with the usage; a corrupt shard exits 1 with its problem', () => {
    const r = tessera(['data', 'build', '--tokenizer', 'words']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--tokenizer must be one of bytes, gpt2/);
    expect(r.err).toMatch(/usage:/);
    const bad = join(dir, 'bad.bin');
    writeFileSync(bad, 'TSRD but not really a shard at all......');
    const i = tessera(['data', 'info', bad]);
    expect(i.code).toBe(1);
    expect(i.err).toMatch(/bad\.bin: .*(corrupt|version|truncated)/);
    expect(i.err).not.toMatch(/\n\s+at /);
  });
});

describe('loadOrBuildShard', () => {
  it('builds the default shard on first use, then reads it; rebuilds a corrupt one', () => {
    const root = join(dir, 'proj');
    const logs: string[] = [];
    const first = loadOrBuildShard({ tokenizer: 'bytes', root, log: (l) => logs.push(l) });
    expect(first.built).toBe(true);
    expect(first.path).toBe(defaultShardPath('sotu', 'bytes', root));
    const again = loadOrBuildShard({ tokenizer: { vocabSize: 256 }, root });
    expect(again.built).toBe(false);
    expect(again.tokens.length).toBe(first.tokens.length);
    // (toEqual on 10M elements takes minutes: compare the bytes)
    expect(Buffer.from(again.tokens.buffer).equals(Buffer.from(first.tokens.buffer))).toBe(true);
    const bytes = readFileSync(first.path);
    bytes[bytes.length - 10] ^= 0x40;
    writeFileSync(first.path, bytes);
    const rebuilt = loadOrBuildShard({ tokenizer: 'bytes', root, log: (l) => logs.push(l) });
    expect(rebuilt.built).toBe(true);
    expect(logs.some((l) => /checksum mismatch.*rebuilding/.test(l))).toBe(true);
    // An explicit path is never silently replaced.
    writeFileSync(first.path, bytes);
    expect(() => loadOrBuildShard({ tokenizer: 'bytes', path: first.path })).toThrow(/checksum mismatch/);
    expect(() => loadOrBuildShard({ tokenizer: 'gpt2', path: join(root, 'none.bin') })).toThrow(/not found/);
  });

  it('the default corpus is the 233 addresses, oldest first', () => {
    const c = loadSotuCorpus();
    expect(c.documents.length).toBe(233);
    expect(c.documents[0]).toMatch(/^Fellow-Citizens of the Senate/);
  });
});
