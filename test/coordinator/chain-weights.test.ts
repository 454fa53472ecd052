// Shares → set_weights arguments, against vectors worked by hand from Bittensor's documented
// algorithm (bittensor/utils/weight_utils.py: process_weights, normalize_max_weight,
// convert_weights_and_uids_for_emit). Each expected value is derived in the comment beside it;
// they were also cross-checked by running that Python algorithm with numpy on this machine.
import { describe, expect, it } from 'vitest';
import {
  ChainConfigError, convertWeightsAndUidsForEmit, normalizeMaxWeight, parseChainOptions, processWeights, roundHalfEven,
  sharesToChainWeights, U16_MAX,
} from '../../src/coordinator/chain-weights.ts';

describe('roundHalfEven (Python round)', () => {
  it('rounds halves to the even neighbour, the rest to the nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, 32767.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 32768]);
    expect([2.4, 2.6, 0, 65535].map(roundHalfEven)).toEqual([2, 3, 0, 65535]);
  });
});

describe('convertWeightsAndUidsForEmit', () => {
  it('max-upscales to 65535 and rounds each weight', () => {
    // As float32, 0.1, 0.2 and 0.4 share one mantissa, so w/max is exactly 1/4 and 1/2:
    // 0.25·65535 = 16383.75 → 16384; 0.5·65535 = 32767.5 → 32768 (even); 0.3f/0.4f is
    // 0.7499999…, ·65535 = 49151.25 → 49151; the max → 65535.
    expect(convertWeightsAndUidsForEmit([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4])).toEqual({ dests: [0, 1, 2, 3], weights: [16384, 32768, 49151, 65535] });
  });

  it('rounds a half to even as Python does, not up as Math.round does', () => {
    // 5 / 131070 · 65535 = 2.5 exactly in float64: Python round → 2 (Math.round would say 3).
    expect(convertWeightsAndUidsForEmit([7, 9], [131070, 5])).toEqual({ dests: [7, 9], weights: [65535, 2] });
  });

  it('drops weights that round to zero, and sets nothing for all-zero weights', () => {
    // 1e-6 · 65535 = 0.066 → 0: uid 2 is dropped with uid 1 (zero).
    expect(convertWeightsAndUidsForEmit([0, 1, 2], [1, 0, 1e-6])).toEqual({ dests: [0], weights: [65535] });
    expect(convertWeightsAndUidsForEmit([0, 1], [0, 0])).toEqual({ dests: [], weights: [] });
  });

  it('refuses negative weights, bad uids and mismatched lengths', () => {
    expect(() => convertWeightsAndUidsForEmit([0, 1], [1, -0.5])).toThrow(/negative/);
    expect(() => convertWeightsAndUidsForEmit([0, 70000], [1, 1])).toThrow(/uid/);
    expect(() => convertWeightsAndUidsForEmit([0], [1, 1])).toThrow(/length/);
  });
});

describe('normalizeMaxWeight', () => {
  it('caps the largest share at the limit', () => {
    // [1,1,1,7], limit 0.3: shares .1 .1 .1 .7; the three smallest pass the cutoff test
    // (.1/(.3+.1) = .25 < .3 …), the last does not (.7). cutoff_scale = (0.3·0.3 − 1e-7)/(1 − 0.3·1),
    // cutoff = 10·that = 1.28571286 (9/7 without the epsilon, where 9/7 / (3 + 9/7) = 0.3 exactly).
    const cutoff = (10 * (0.3 * 0.3 - 1e-7)) / 0.7;
    const y = normalizeMaxWeight([1, 1, 1, 7], 0.3);
    expect(y[3]).toBeCloseTo(cutoff / (3 + cutoff), 12);
    expect(y[3]).toBeCloseTo(0.3, 6);
    expect(y[3]).toBeLessThanOrEqual(0.3);
    for (const v of y.slice(0, 3)) expect(v).toBeCloseTo(1 / (3 + cutoff), 12);
    // [.7,.2,.1], limit 0.6: two pass; cutoff = (0.6·0.3 − 1e-7)/(1 − 0.6) = 0.44999975.
    const c2 = (0.6 * 0.3 - 1e-7) / 0.4;
    const y2 = normalizeMaxWeight([0.7, 0.2, 0.1], 0.6);
    expect(y2[0]).toBeCloseTo(c2 / (c2 + 0.3), 12);
    expect(y2[1]).toBeCloseTo(0.2 / (c2 + 0.3), 12);
  });

  it('only normalises when nothing exceeds the limit; equal shares when the limit cannot be met', () => {
    expect(normalizeMaxWeight([1, 2, 3, 4], 0.5).map((v) => +v.toFixed(12))).toEqual([0.1, 0.2, 0.3, 0.4]);
    // 2 values · 0.5 ≤ 1: no way to keep both at or under 0.5 but equal.
    expect(normalizeMaxWeight([5, 1], 0.5)).toEqual([0.5, 0.5]);
    expect(normalizeMaxWeight([0, 0, 0], 0.5)).toEqual([1 / 3, 1 / 3, 1 / 3]);
  });
});

describe('processWeights', () => {
  it('keeps the positive uids, normalised', () => {
    // float32(0.6) = 0.60000002, float32(0.4) = 0.40000001; they sum to 1.
    const p = processWeights([0, 0.6, 0.4, 0], 1, 1)!;
    expect(p.uids).toEqual([1, 2]);
    expect(p.weights[0]).toBeCloseTo(0.6, 7);
    // 0.4/0.6 · 65535 = 43690 (exactly 2/3·65535 = 43690).
    expect(convertWeightsAndUidsForEmit(p.uids, p.weights)).toEqual({ dests: [1, 2], weights: [65535, 43690] });
  });

  it('pads every neuron with 1e-5 when fewer than min_allowed_weights are positive', () => {
    // One positive of four, minimum 2: [1e-5, 1+1e-5, 1e-5, 1e-5]; each small one upscales to
    // 1e-5/1.00001 · 65535 = 0.655 → 1.
    const p = processWeights([0, 1, 0, 0], 2, 1)!;
    expect(p.uids).toEqual([0, 1, 2, 3]);
    expect(convertWeightsAndUidsForEmit(p.uids, p.weights)).toEqual({ dests: [0, 1, 2, 3], weights: [1, 65535, 1, 1] });
  });

  it('sets nothing when nobody is positive (the SDK would spread equal weights)', () => {
    expect(processWeights([0, 0, 0], 1, 1)).toBeNull();
    expect(processWeights([1, 1], 3, 1)).toBeNull();
  });
});

describe('sharesToChainWeights', () => {
  // The //Alice … //Eve development keys.
  const A = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
  const B = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
  const C = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';
  const D = '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy';
  const X = '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw';

  it('maps hotkeys to uids, skips unregistered ones and zero shares', () => {
    // B (uid 1) 0.5, D (uid 3) 0.25 → normalised 2/3, 1/3 → 65535 and 0.5·65535 = 32767.5 → 32768.
    const w = sharesToChainWeights({ [B]: 0.5, [D]: 0.25, [X]: 0.25, [C]: 0 }, { hotkeys: [A, B, C, D], minAllowedWeights: 1, maxWeightLimit: 1 });
    expect(w).toEqual({ dests: [1, 3], weights: [65535, 32768], unregistered: [X] });
  });

  it("applies the subnet's max_weight_limit before upscaling", () => {
    // The 0.6 example above: cutoff 0.44999975; 0.2/0.45·65535 = 29126.7 → 29127; 0.1/0.45 → 14563.
    const w = sharesToChainWeights({ [A]: 0.7, [B]: 0.2, [C]: 0.1 }, { hotkeys: [A, B, C], minAllowedWeights: 1, maxWeightLimit: 0.6 });
    expect(w).toEqual({ dests: [0, 1, 2], weights: [U16_MAX, 29127, 14563], unregistered: [] });
  });

  it('sets nothing when no registered contributor earned', () => {
    expect(sharesToChainWeights({ [X]: 1 }, { hotkeys: [A, B], minAllowedWeights: 1, maxWeightLimit: 1 })).toEqual({ dests: [], weights: [], unregistered: [X] });
  });
});

describe('parseChainOptions', () => {
  it('is off without flags, and reads valid ones', () => {
    expect(parseChainOptions({})).toBeNull();
    expect(parseChainOptions({ subtensor: 'ws://127.0.0.1:9944', netuid: '3' })).toEqual({ endpoint: 'ws://127.0.0.1:9944', netuid: 3, versionKey: undefined });
    expect(parseChainOptions({ subtensor: 'wss://entrypoint-finney.opentensor.ai:443', netuid: '3', versionKey: '18446744073709551615' })!.versionKey).toBe(2n ** 64n - 1n);
  });

  it.each([
    [{ netuid: '3' }, '--subtensor', /is needed with --netuid/],
    [{ subtensor: 'ws://h:9944' }, '--netuid', /is needed with --subtensor/],
    [{ subtensor: 'http://h:9944', netuid: '3' }, '--subtensor', /ws:\/\/ or wss:\/\//],
    [{ subtensor: 'not a url', netuid: '3' }, '--subtensor', /URL/],
    [{ subtensor: 'ws://h:9944', netuid: '-1' }, '--netuid', /integer from 1 to 65535/],
    [{ subtensor: 'ws://h:9944', netuid: '70000' }, '--netuid', /integer from 1 to 65535/],
    [{ subtensor: 'ws://h:9944', netuid: '0' }, '--netuid', /root network/],
    [{ subtensor: 'ws://h:9944', netuid: '3', versionKey: '1.5' }, '--version-key', /integer/],
    [{ versionKey: '1' }, '--version-key', /only means something/],
  ])('%o → an error naming %s', (raw, field, message) => {
    let error: unknown;
    try {
      parseChainOptions(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChainConfigError);
    expect((error as ChainConfigError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(`'${field}'`);
  });
});
