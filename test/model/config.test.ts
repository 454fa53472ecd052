// Presets, validation, parameter layout and deterministic initialisation.
import { describe, expect, it } from 'vitest';
import {
  ConfigError, type ModelConfig, PRESETS, type PresetName, Rng, initParameters, parameterCount, parameterLayout,
  portableLog, preset, validateConfig,
} from '../../src/model/config.ts';

const RANGES: Record<PresetName, [number, number]> = {
  tiny: [50e3, 500e3],
  small: [10e6, 20e6],
  base: [110e6, 140e6],
  '1b': [0.9e9, 1.2e9],
};

describe('presets', () => {
  it('validate and have parameter counts in their classes', () => {
    const lines: string[] = [];
    for (const name of Object.keys(PRESETS) as PresetName[]) {
      const cfg = preset(name);
      expect(() => validateConfig(cfg)).not.toThrow();
      const n = parameterCount(cfg);
      lines.push(`${name.padEnd(5)} ${n.toLocaleString('en-US').padStart(14)} params  V ${cfg.vocabSize} C ${cfg.dim} L ${cfg.layers} ` +
        `H ${cfg.heads}/${cfg.kvHeads} F ${cfg.mlpHidden} T ${cfg.seqLen} tied ${cfg.tiedEmbeddings}`);
      expect(n).toBeGreaterThanOrEqual(RANGES[name][0]);
      expect(n).toBeLessThanOrEqual(RANGES[name][1]);
    }
    console.log(lines.join('\n'));
    expect(PRESETS.tiny.vocabSize).toBe(256);
    expect(PRESETS.small.vocabSize).toBe(50257);
    expect(() => { (PRESETS.tiny as ModelConfig).dim = 1; }).toThrow();
  });

  it('counts parameters by hand for tiny', () => {
    const { vocabSize: V, dim: C, layers: L, heads: H, kvHeads: Hkv, mlpHidden: F } = PRESETS.tiny;
    const D = C / H;
    const block = 2 * C + H * D * C + 2 * Hkv * D * C + C * H * D + 3 * F * C;
    expect(parameterCount(PRESETS.tiny)).toBe(V * C + L * block + C + (PRESETS.tiny.tiedEmbeddings ? 0 : V * C));
  });
});

describe('validateConfig', () => {
  const good = (): ModelConfig => preset('tiny');
  const cases: [string, Partial<Record<keyof ModelConfig, unknown>>, RegExp][] = [
    ['vocabSize', { vocabSize: 256.5 }, /integer/],
    ['vocabSize', { vocabSize: 0 }, /≥ 1/],
    ['dim', { dim: '64' }, /integer/],
    ['layers', { layers: -1 }, /≥ 1/],
    ['heads', { heads: 3 }, /divisible/],
    ['heads', { dim: 60, heads: 4, kvHeads: 4 }, /odd head size/],
    ['kvHeads', { kvHeads: 3 }, /divisible/],
    ['kvHeads', { kvHeads: 1.5 }, /integer/],
    ['mlpHidden', { mlpHidden: 0 }, /≥ 1/],
    ['seqLen', { seqLen: NaN }, /integer/],
    ['ropeBase', { ropeBase: 0 }, /> 1/],
    ['normEps', { normEps: -1e-5 }, /≥ 0/],
    ['normEps', { normEps: Infinity }, /finite/],
    ['tiedEmbeddings', { tiedEmbeddings: 1 }, /boolean/],
    ['initStd', { initStd: 0 }, /> 0/],
  ];
  it.each(cases)('%s: %j', (field, patch, problem) => {
    const cfg = { ...good(), ...patch } as ModelConfig;
    let err: unknown;
    try {
      validateConfig(cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
    expect((err as ConfigError).message).toContain(field);
    expect((err as ConfigError).message).toMatch(problem);
  });
  it('checks slice bounds', () => {
    expect(() => parameterLayout(good(), 0, 3)).toThrow(ConfigError);
    expect(() => parameterLayout(good(), 1, 1)).toThrow(/to/);
    expect(() => parameterLayout(good(), -1, 2)).toThrow(/from/);
  });
});

describe('parameterLayout', () => {
  it('follows the [out, in] shapes and the decay rule', () => {
    const cfg = preset('tiny');
    const byName = new Map(parameterLayout(cfg).map((p) => [p.name, p]));
    const C = cfg.dim;
    const D = C / cfg.heads;
    expect(byName.get('embedding')!.shape).toEqual([256, C]);
    expect(byName.get('blocks.1.wk')!.shape).toEqual([cfg.kvHeads * D, C]);
    expect(byName.get('blocks.1.wo')!.shape).toEqual([C, cfg.heads * D]);
    expect(byName.get('blocks.0.wDown')!.shape).toEqual([C, cfg.mlpHidden]);
    expect(byName.get('head')!.shape).toEqual([256, C]);
    for (const p of byName.values()) {
      expect(p.weightDecay).toBe(p.shape.length === 2);
      expect(p.size).toBe(p.shape.reduce((a, b) => a * b, 1));
    }
  });

  it('places the embedding, final norm and head by slice; a tied last stage holds a copy', () => {
    const untied = { ...preset('tiny'), layers: 3 };
    const names = (cfg: ModelConfig, a: number, b: number) => parameterLayout(cfg, a, b).map((p) => p.name);
    expect(names(untied, 0, 1)[0]).toBe('embedding');
    expect(names(untied, 0, 1)).not.toContain('finalNorm');
    expect(names(untied, 1, 2).every((n) => n.startsWith('blocks.1.'))).toBe(true);
    expect(names(untied, 2, 3).slice(-2)).toEqual(['finalNorm', 'head']);
    const tied = { ...untied, tiedEmbeddings: true };
    const whole = parameterLayout(tied);
    expect(whole.filter((p) => p.name === 'embedding')).toHaveLength(1);
    expect(whole.some((p) => p.name === 'head' || p.tiedCopy)).toBe(false);
    const lastStage = parameterLayout(tied, 2, 3);
    expect(lastStage.at(-1)).toMatchObject({ name: 'embedding', tiedCopy: true, shape: [256, 64] });
    // stages partition the model, except the tied copy
    const stages = [parameterLayout(tied, 0, 1), parameterLayout(tied, 1, 2), lastStage].flat();
    expect(stages.filter((p) => !p.tiedCopy).map((p) => p.name).sort()).toEqual(whole.map((p) => p.name).sort());
  });
});

/** Same length and same bits (fast; deep equality on big typed arrays is slow). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

describe('initParameters', () => {
  it('is deterministic, seed-dependent, and scaled as specified', () => {
    const cfg = preset('tiny');
    const layout = parameterLayout(cfg);
    const a = initParameters(cfg, layout, 42);
    const b = initParameters(cfg, layout, 42);
    const c = initParameters(cfg, layout, 43);
    for (const spec of layout) {
      expect(sameBits(a.get(spec.name)!, b.get(spec.name)!), spec.name).toBe(true);
      const x = a.get(spec.name)!;
      if (spec.init.kind === 'ones') {
        expect(x.every((v) => v === 1)).toBe(true);
        continue;
      }
      expect(sameBits(x, c.get(spec.name)!)).toBe(false);
      const mean = x.reduce((s, v) => s + v, 0) / x.length;
      const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
      const want = spec.name.endsWith('wo') || spec.name.endsWith('wDown') ? 0.02 / Math.sqrt(2 * cfg.layers) : 0.02;
      expect(spec.init).toEqual({ kind: 'normal', std: want });
      expect(Math.abs(mean)).toBeLessThan((5 * want) / Math.sqrt(x.length));
      expect(Math.abs(std / want - 1)).toBeLessThan(5 / Math.sqrt(2 * x.length) + 0.01);
    }
    // distinct tensors of the same shape get distinct streams
    expect(sameBits(a.get('blocks.0.wq')!, a.get('blocks.1.wq')!)).toBe(false);
    // pinned values: a change to the generator changes every contributor's weights
    expect(Array.from(a.get('blocks.0.wq')!.subarray(0, 3))).toEqual([0.004409067798405886, 0.03848583251237869, -0.029566913843154907]);
  });

  it('initialises a slice [k, L) exactly like the whole model', () => {
    for (const tiedEmbeddings of [false, true]) {
      const cfg = { ...preset('tiny'), layers: 4, tiedEmbeddings };
      const whole = initParameters(cfg, parameterLayout(cfg), 7);
      for (let k = 1; k < 4; k++) {
        const layout = parameterLayout(cfg, k, 4);
        const slice = initParameters(cfg, layout, 7);
        for (const spec of layout) expect(sameBits(slice.get(spec.name)!, whole.get(spec.name)!), `${spec.name} of [${k}, 4)`).toBe(true);
      }
      const first = initParameters(cfg, parameterLayout(cfg, 0, 2), 7);
      for (const [name, v] of first) expect(sameBits(v, whole.get(name)!), name).toBe(true);
    }
  });

  it('draws normals from integer arithmetic and a portable logarithm', () => {
    for (const x of [1e-19, 2.3e-10, 0.001, 0.3, 0.5, 0.70710678, 0.7071068, 0.99, 0.9999999, 1, 1.5, 2, 1e10]) {
      expect(Math.abs(portableLog(x) - Math.log(x))).toBeLessThanOrEqual(4 * Number.EPSILON * Math.max(1, Math.abs(Math.log(x))));
    }
    const rng = new Rng(123);
    let s = 0;
    let s2 = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const z = rng.nextNormal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.01);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.02);
  });
});
