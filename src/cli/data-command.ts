// `tessera data`: build token shards from the default corpus or text files, and inspect them.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TOKENIZER_NAMES, tokenizerFor, type TokenizerName } from '../train/tokenizer.ts';
import { unigramEntropy } from '../train/stats.ts';
import { parseCommandArgs } from './args.ts';
import { buildShard, defaultShardPath, loadSotuCorpus, loadTextFiles, readShardFile } from '../node/corpus.ts';

export const DATA_USAGE = `usage:
  tessera data build [--tokenizer bytes|gpt2] [--input file.txt ...] [--out path]
      tokenize the default corpus (State of the Union addresses, 1790–2021) or the given
      text files into a token shard; default output .tessera/data/<corpus>-<tokenizer>.bin
  tessera data info <shard.bin>
      check a shard and print its tokenizer, token count and unigram entropy`;

/** A usage mistake: the CLI prints the message and the usage, and exits 2. */
export class DataUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataUsageError';
  }
}

export async function dataCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'build':
      return dataBuild(rest);
    case 'info':
      return dataInfo(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(DATA_USAGE);
      return 0;
    default:
      throw new DataUsageError(`unknown data command '${sub}'`);
  }
}

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtMB = (b: number) => `${(b / 1e6).toFixed(2)} MB`;

function entropyLine(tokens: ArrayLike<number>, vocab: number): string {
  const nats = unigramEntropy(tokens, vocab);
  return `${(nats / Math.LN2).toFixed(4)} bits/token, ${nats.toFixed(4)} nats/token (unigram)`;
}

function dataBuild(args: string[]): number {
  const { values } = parseCommandArgs({
    args,
    options: {
      tokenizer: { type: 'string', default: 'bytes' },
      input: { type: 'string', multiple: true },
      out: { type: 'string' },
    },
  }, (m) => new DataUsageError(m));
  const name = values.tokenizer as string;
  if (!TOKENIZER_NAMES.includes(name as TokenizerName)) {
    throw new DataUsageError(`--tokenizer must be one of ${TOKENIZER_NAMES.join(', ')}, got '${name}'`);
  }
  const t0 = performance.now();
  const tok = tokenizerFor(name);
  const corpus = values.input?.length ? loadTextFiles(values.input) : loadSotuCorpus();
  const out = values.out ? resolve(values.out) : defaultShardPath(corpus.name, tok.name);
  const b = buildShard(corpus, tok, out);
  const seconds = (performance.now() - t0) / 1000;
  console.log([
    `corpus     ${corpus.name}: ${b.corpus.documents} document${b.corpus.documents === 1 ? '' : 's'}, ${fmtMB(b.corpus.textBytes)} of text`,
    `tokenizer  ${tok.name} (vocab ${tok.vocabSize})`,
    `tokens     ${fmtInt(b.tokens.length)}`,
    `entropy    ${entropyLine(b.tokens, tok.vocabSize)}`,
    `wrote      ${b.path} (${fmtMB(b.fileBytes)})`,
    `time       ${seconds.toFixed(2)} s`,
  ].join('\n'));
  return 0;
}

function dataInfo(args: string[]): number {
  const { positionals } = parseCommandArgs({ args, allowPositionals: true, options: {} }, (m) => new DataUsageError(m));
  if (positionals.length !== 1) throw new DataUsageError('tessera data info takes one shard file');
  const path = resolve(positionals[0]);
  const { meta, tokens } = readShardFile(path);
  console.log([
    `shard      ${path} (${fmtMB(statSync(path).size)}), checksums valid`,
    `tokenizer  ${meta.tokenizer} (vocab ${meta.vocabSize})`,
    `tokens     ${fmtInt(tokens.length)}`,
    `entropy    ${entropyLine(tokens, meta.vocabSize)}`,
  ].join('\n'));
  return 0;
}
