// The float64 reference model against finite differences: every entry of every parameter
// gradient, tied and untied, on a micro config; plus ignored targets, causality and slices.
import { describe, expect, it } from 'vitest';
import { type ModelConfig, Rng, initParameters, parameterLayout } from '../../src/model/config.ts';
import {
  type ParamMap, referenceBackward, referenceForward, referenceSliceBackward, referenceSliceForward,
} from '../../src/model/reference.ts';

const micro = (tied: boolean): ModelConfig => ({
  vocabSize: 11, dim: 8, layers: 2, heads: 2, kvHeads: 1, mlpHidden: 12, seqLen: 8,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: tied, initStd: 0.4,
});
const B = 2;
const T = 5;

/** Float64 parameters: the seeded init (std 0.4, so every nonlinearity is exercised) with
 * norm weights perturbed away from 1 (so a transposed or dropped weight would show). */
function microParams(cfg: ModelConfig, seed: number): Map<string, Float64Array> {
  const layout = parameterLayout(cfg);
  const init = initParameters(cfg, layout, seed);
  const rng = new Rng(seed + 1);
  const out = new Map<string, Float64Array>();
  for (const spec of layout) {
    const a = Float64Array.from(init.get(spec.name)!);
    if (spec.init.kind === 'ones') for (let i = 0; i < a.length; i++) a[i] += 0.3 * rng.nextNormal();
    out.set(spec.name, a);
  }
  return out;
}

function batch(V: number, seed: number, ignore: number[] = []) {
  const rng = new Rng(seed);
  const tokens = new Int32Array(B * T).map(() => rng.nextU32() % V);
  const targets = new Int32Array(B * T).map(() => rng.nextU32() % V);
  for (const i of ignore) targets[i] = -1;
  return { tokens, targets };
}

describe.each([false, true])('reference model, tied embeddings = %s', (tied) => {
  it('every parameter gradient matches central finite differences', () => {
    const cfg = micro(tied);
    const params = microParams(cfg, 7);
    // position (0, 2) and the last position of batch row 1 are ignored
    const { tokens, targets } = batch(cfg.vocabSize, 3, [2, 2 * T - 1]);
    const { loss, grads } = referenceBackward(cfg, params, tokens, targets, B, T);
    expect(Number.isFinite(loss)).toBe(true);
    const lossAt = () => referenceForward(cfg, params, tokens, targets, B, T).loss;

    // five-point central difference: f' ≈ [8(f(+h) − f(−h)) − (f(+2h) − f(−2h))] / 12h
    const h = 1e-3;
    let worst = 0;
    let checked = 0;
    const lines: string[] = [];
    for (const spec of parameterLayout(cfg)) {
      const p = params.get(spec.name)!;
      const g = grads.get(spec.name)!;
      expect(g.length).toBe(spec.size);
      let errNorm = 0;
      let refNorm = 0;
      let tensorWorst = 0;
      for (let i = 0; i < p.length; i++) {
        const x0 = p[i];
        const f = (d: number) => {
          p[i] = x0 + d;
          return lossAt();
        };
        const fd = (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h);
        p[i] = x0;
        const err = Math.abs(g[i] - fd);
        // relative error, with a floor so entries whose gradient is ~0 are judged absolutely
        const rel = err / Math.max(Math.abs(fd), Math.abs(g[i]), 1e-4);
        tensorWorst = Math.max(tensorWorst, rel);
        errNorm += err * err;
        refNorm += fd * fd;
        checked++;
      }
      worst = Math.max(worst, tensorWorst);
      lines.push(`${spec.name.padEnd(18)} [${spec.shape.join(',')}] max rel ${tensorWorst.toExponential(2)}` +
        `  ‖g−fd‖/‖fd‖ ${(Math.sqrt(errNorm) / Math.sqrt(refNorm)).toExponential(2)}  ‖fd‖ ${Math.sqrt(refNorm).toExponential(2)}`);
      expect(refNorm, `${spec.name} gradient is all zero`).toBeGreaterThan(0);
      expect(tensorWorst, spec.name).toBeLessThan(1e-6);
    }
    console.log(`tied=${tied}: loss ${loss.toFixed(6)}, ${checked} entries, worst relative error ${worst.toExponential(2)}\n  ${lines.join('\n  ')}`);
  });

  it('ignores targets of −1 and is causal', () => {
    const cfg = micro(tied);
    const params = microParams(cfg, 11);
    const last = [T - 1, 2 * T - 1];
    const { tokens, targets } = batch(cfg.vocabSize, 5, last);
    const { loss, logits } = referenceForward(cfg, params, tokens, targets, B, T);
    // the loss is the mean over the 8 valid positions only
    const V = cfg.vocabSize;
    let sum = 0;
    let n = 0;
    for (let r = 0; r < B * T; r++) {
      if (targets[r] === -1) continue;
      const row = logits.subarray(r * V, (r + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0));
      sum += lse - row[targets[r]];
      n++;
    }
    expect(n).toBe(B * T - 2);
    expect(loss).toBeCloseTo(sum / n, 12);
    // the last positions' inputs only reach their own (ignored) outputs: changing them is invisible
    const tokens2 = tokens.slice();
    for (const i of last) tokens2[i] = (tokens2[i] + 1) % V;
    expect(referenceForward(cfg, params, tokens2, targets, B, T).loss).toBe(loss);
    // ... while any earlier token matters
    const tokens3 = tokens.slice();
    tokens3[T - 2] = (tokens3[T - 2] + 1) % V;
    expect(referenceForward(cfg, params, tokens3, targets, B, T).loss).not.toBe(loss);
    // an ignored position's embedding row gets no gradient from its own (absent) target
    const allIgnored = new Int32Array(B * T).fill(-1);
    const r = referenceBackward(cfg, params, tokens, allIgnored, B, T);
    expect(r.loss).toBe(0);
    for (const [name, g] of r.grads) expect(g.every((v) => v === 0), name).toBe(true);
  });

  it('two stages compose to the whole model (loss, dx hand-off, gradients)', () => {
    const cfg = micro(tied);
    const params = microParams(cfg, 13);
    const { tokens, targets } = batch(cfg.vocabSize, 9, [4]);
    const whole = referenceBackward(cfg, params, tokens, targets, B, T);
    const s0 = referenceSliceForward(cfg, 0, 1, params, { tokens }, B, T);
    const s1 = referenceSliceBackward(cfg, 1, 2, params, { x: s0.out!, targets }, B, T);
    expect(s1.loss).toBe(whole.loss);
    const b0 = referenceSliceBackward(cfg, 0, 1, params, { tokens }, B, T, s1.dx!);
    const merged = new Map<string, Float64Array>();
    for (const g of [b0.grads, s1.grads]) {
      for (const [name, v] of g) {
        const acc = merged.get(name);
        if (!acc) merged.set(name, v.slice());
        else for (let i = 0; i < v.length; i++) acc[i] += v[i]; // the tied embedding: sum of both stages
      }
    }
    expect([...merged.keys()].sort()).toEqual([...whole.grads.keys()].sort());
    expect(s1.grads.has('embedding')).toBe(tied);
    for (const [name, g] of whole.grads) {
      const m = merged.get(name)!;
      for (let i = 0; i < g.length; i++) expect(m[i]).toBeCloseTo(g[i], 13);
    }
  });
});

it('rejects bad inputs', () => {
  const cfg = micro(false);
  const params: ParamMap = microParams(cfg, 1);
  const { tokens, targets } = batch(cfg.vocabSize, 1);
  expect(() => referenceForward(cfg, params, tokens, targets, B, 9)).toThrow(/T must/);
  const bad = tokens.slice();
  bad[3] = 11;
  expect(() => referenceForward(cfg, params, bad, targets, B, T)).toThrow(/tokens\[3\]/);
  const missing = new Map(params);
  missing.delete('blocks.1.wUp');
  expect(() => referenceForward(cfg, missing, tokens, targets, B, T)).toThrow(/blocks\.1\.wUp/);
});
