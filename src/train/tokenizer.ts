// Tokenizers: text ↔ token ids. Environment-free (workers, pages, Node).
//
// - `bytes`: UTF-8 bytes, vocabulary 256 (the `tiny` preset). Lossless for any text.
// - `gpt2`: GPT-2's byte-level BPE, vocabulary 50257 (`small`, `base`, `1b`), from the
//   `gpt-tokenizer` package, whose r50k_base encoding (= GPT-2's) ships its merge ranks as a
//   JavaScript module: nothing is fetched at run time and it needs only TextEncoder and
//   TextDecoder from its host. Special tokens in the text are encoded as plain text (never
//   as <|endoftext|>), so a document cannot inject control tokens; documents are separated
//   by `eot` (50256) when a corpus is tokenized (encodeDocuments).
import { encode as r50kEncode, decode as r50kDecode, vocabularySize as r50kVocabSize } from 'gpt-tokenizer/encoding/r50k_base';

export interface Tokenizer {
  /** Stable identifier, stored in shards: 'bytes' or 'gpt2'. */
  name: string;
  vocabSize: number;
  /** End-of-text token separating documents, when the vocabulary has one. */
  eot?: number;
  encode(text: string): number[] | Uint32Array;
  decode(ids: ArrayLike<number>): string;
}

export type TokenizerName = 'bytes' | 'gpt2';
export const TOKENIZER_NAMES: readonly TokenizerName[] = ['bytes', 'gpt2'];

/** An id outside the vocabulary, or an unknown tokenizer. */
export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

function checkIds(name: string, ids: ArrayLike<number>, vocab: number): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new TokenizerError(`${name} tokenizer: id ${t} at position ${i} is outside the vocabulary [0, ${vocab})`);
    }
  }
}

/** UTF-8 bytes as tokens. decode() replaces invalid UTF-8 (e.g. a cut multi-byte char) with U+FFFD. */
export class ByteTokenizer implements Tokenizer {
  readonly name = 'bytes';
  readonly vocabSize = 256;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder('utf-8');

  encode(text: string): Uint32Array {
    return Uint32Array.from(this.enc.encode(text));
  }

  decode(ids: ArrayLike<number>): string {
    checkIds(this.name, ids, this.vocabSize);
    return this.dec.decode(Uint8Array.from(ids as ArrayLike<number>));
  }
}

const NO_SPECIAL = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

/** GPT-2 byte-level BPE (tiktoken's r50k_base), 50257 ids; 50256 is <|endoftext|>. */
export class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2';
  readonly vocabSize = 50257;
  readonly eot = 50256;

  constructor() {
    if (r50kVocabSize !== this.vocabSize) {
      throw new TokenizerError(`gpt2 tokenizer: gpt-tokenizer's r50k_base has ${r50kVocabSize} ids, expected 50257`);
    }
  }

  encode(text: string): number[] {
    return r50kEncode(text, NO_SPECIAL);
  }

  decode(ids: ArrayLike<number>): string {
    checkIds(this.name, ids, this.vocabSize);
    return r50kDecode(Array.from(ids));
  }
}

let gpt2: Gpt2Tokenizer | null = null;
const bytes = new ByteTokenizer();

/**
 * The tokenizer with this name ('bytes' | 'gpt2'), or the one matching a model config's
 * vocabulary (256 → bytes, 50257 → gpt2).
 */
export function tokenizerFor(what: string | { vocabSize: number }): Tokenizer {
  const name = typeof what === 'string' ? what : what.vocabSize === 256 ? 'bytes' : what.vocabSize === 50257 ? 'gpt2' : null;
  if (name === 'bytes') return bytes;
  if (name === 'gpt2') return (gpt2 ??= new Gpt2Tokenizer());
  throw new TokenizerError(
    typeof what === 'string'
      ? `unknown tokenizer '${what}' (known: ${TOKENIZER_NAMES.join(', ')})`
      : `no tokenizer has vocabulary ${what.vocabSize}: use 256 (bytes) or 50257 (gpt2)`,
  );
}

/**
 * Tokenizes documents into one stream, separated by the tokenizer's `eot` token (or, for a
 * vocabulary without one, by the encoding of a blank line). u16 ids when the vocabulary fits.
 */
export function encodeDocuments(tok: Tokenizer, docs: Iterable<string>): Uint16Array | Uint32Array {
  const parts: ArrayLike<number>[] = [];
  const sep: ArrayLike<number> = tok.eot !== undefined ? [tok.eot] : tok.encode('\n\n');
  let n = 0;
  let first = true;
  for (const d of docs) {
    if (!first) {
      parts.push(sep);
      n += sep.length;
    }
    first = false;
    const ids = tok.encode(d);
    parts.push(ids);
    n += ids.length;
  }
  const out = tok.vocabSize <= 65536 ? new Uint16Array(n) : new Uint32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
