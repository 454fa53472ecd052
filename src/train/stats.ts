// Statistics of a token stream. Environment-free.

/**
 * Unigram (order-0) entropy of the token distribution, in NATS per token:
 * H = −Σ p(t)·ln p(t), p(t) = count(t)/n. A model that has learned only token frequencies
 * reaches this cross-entropy; a model that uses context goes below it. Divide by ln 2
 * (or use unigramEntropyBits) for bits/token. 0 for an empty stream.
 */
export function unigramEntropy(tokens: ArrayLike<number>, vocab: number): number {
  if (!Number.isInteger(vocab) || vocab < 1) throw new RangeError(`unigramEntropy: vocab must be a positive integer, got ${vocab}`);
  const counts = new Float64Array(vocab);
  const n = tokens.length;
  for (let i = 0; i < n; i++) {
    const t = tokens[i];
    if (!(t >= 0 && t < vocab) || !Number.isInteger(t)) throw new RangeError(`unigramEntropy: token ${t} at ${i} is outside [0, ${vocab})`);
    counts[t]++;
  }
  if (n === 0) return 0;
  let h = 0;
  for (let v = 0; v < vocab; v++) {
    const c = counts[v];
    if (c > 0) h -= (c / n) * Math.log(c / n);
  }
  return h;
}

/** unigramEntropy in bits per token. */
export function unigramEntropyBits(tokens: ArrayLike<number>, vocab: number): number {
  return unigramEntropy(tokens, vocab) / Math.LN2;
}
