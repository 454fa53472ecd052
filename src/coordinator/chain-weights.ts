// From the validator's reward shares to the (uid, u16 weight) pairs of subtensor's
// set_weights, the way Bittensor's Python SDK computes them (bittensor/utils/weight_utils.py):
//   process_weights                  the subnet's min_allowed_weights and max_weight_limit,
//   normalize_max_weight             caps any one weight at max_weight_limit of the total,
//   convert_weights_and_uids_for_emit  max-upscales (the largest weight becomes 65535),
//                                    rounds half to even (Python's round) and drops zeros.
// The SDK casts weights to float32 first (process_weights, set_weights); we round each input
// to float32 the same way, then compute in float64 (numpy computes normalize_max_weight in
// float32, so a capped weight can differ in its last float32 bits, never in its u16).
// Deliberately unlike the SDK: when no registered contributor earned anything we set nothing,
// where process_weights would spread equal weights over every neuron of the subnet.
import { RunConfigError } from '../protocol/run-config.ts';

export const U16_MAX = 65535;

/** Python's round(): to the nearest integer, halves to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

/**
 * Normalises `x` to sum 1 with no value above `limit` (bittensor normalize_max_weight): values
 * above a cutoff are clipped to it, the cutoff chosen so the largest share lands at the limit.
 */
export function normalizeMaxWeight(x: readonly number[], limit = 0.1): number[] {
  const epsilon = 1e-7;
  const n = x.length;
  if (n === 0) return [];
  if (sum(x) === 0 || n * limit <= 1) return x.map(() => 1 / n);
  const values = [...x].sort((a, b) => a - b);
  const valuesSum = sum(values);
  const estimation = values.map((v) => v / valuesSum);
  if (Math.max(...estimation) <= limit) {
    const total = sum(x);
    return x.map((w) => w / total);
  }
  const cumsum: number[] = [];
  estimation.forEach((e, i) => cumsum.push((i ? cumsum[i - 1] : 0) + e));
  // How many of the smallest values stay under the cutoff.
  let below = 0;
  for (let i = 0; i < n; i++) if (estimation[i] / ((n - i - 1) * estimation[i] + cumsum[i] + epsilon) < limit) below++;
  const cutoffScale = (limit * cumsum[below - 1] - epsilon) / (1 - limit * (n - below));
  const cutoff = cutoffScale * valuesSum;
  const clipped = x.map((w) => (w > cutoff ? cutoff : w));
  const total = sum(clipped);
  return clipped.map((w) => w / total);
}

/**
 * bittensor process_weights with exclude_quantile 0: `weights` is indexed by uid (one per
 * neuron). Keeps the positive ones and caps them; when fewer than the subnet's minimum are
 * positive, every neuron gets 1e-5 on top (so the vector is long enough for the chain).
 * Returns null where the SDK would set equal weights on everyone (nothing positive, or a
 * subnet smaller than its own minimum).
 */
export function processWeights(weights: readonly number[], minAllowedWeights: number, maxWeightLimit: number): { uids: number[]; weights: number[] } | null {
  const w = weights.map((v) => Math.fround(v));
  const positive = w.flatMap((v, uid) => (v > 0 ? [uid] : []));
  if (positive.length === 0 || w.length < minAllowedWeights) return null;
  if (positive.length < minAllowedWeights) {
    const padded = w.map((v) => 1e-5 + (v > 0 ? v : 0));
    return { uids: padded.map((_, uid) => uid), weights: normalizeMaxWeight(padded, maxWeightLimit) };
  }
  return { uids: positive, weights: normalizeMaxWeight(positive.map((uid) => w[uid]), maxWeightLimit) };
}

/** bittensor convert_weights_and_uids_for_emit: the largest weight → 65535, zeros dropped. */
export function convertWeightsAndUidsForEmit(uids: readonly number[], weights: readonly number[]): { dests: number[]; weights: number[] } {
  if (uids.length !== weights.length) throw new RangeError(`uids and weights differ in length (${uids.length} and ${weights.length})`);
  if (uids.length === 0) return { dests: [], weights: [] };
  const w = weights.map((v) => Math.fround(v));
  if (Math.min(...w) < 0) throw new RangeError(`a weight is negative (${Math.min(...w)}): the chain holds none`);
  if (Math.min(...uids) < 0 || uids.some((u) => !Number.isInteger(u) || u > U16_MAX)) throw new RangeError('a uid is not an integer in 0..65535');
  if (sum(w) === 0) return { dests: [], weights: [] };
  const max = Math.max(...w);
  const dests: number[] = [];
  const out: number[] = [];
  w.forEach((v, i) => {
    const u16 = roundHalfEven((v / max) * U16_MAX);
    if (u16 !== 0) {
      dests.push(uids[i]);
      out.push(u16);
    }
  });
  return { dests, weights: out };
}

/** What the subnet looks like to the validator when it sets weights. */
export interface SubnetView {
  /** Registered hotkeys (ss58) by uid: hotkeys[uid]. */
  hotkeys: string[];
  minAllowedWeights: number;
  /** max_weight_limit as a fraction (the chain's u16 / 65535). */
  maxWeightLimit: number;
}

export interface ChainWeights {
  dests: number[];
  weights: number[];
  /** Addresses with a positive share that hold no uid on the subnet (skipped). */
  unregistered: string[];
}

/** Reward shares by ss58 address → set_weights arguments; unregistered addresses are skipped. */
export function sharesToChainWeights(shares: Readonly<Record<string, number>>, subnet: SubnetView): ChainWeights {
  const uidOf = new Map(subnet.hotkeys.map((hotkey, uid) => [hotkey, uid]));
  const vector = subnet.hotkeys.map(() => 0);
  const unregistered: string[] = [];
  for (const [address, share] of Object.entries(shares)) {
    if (!(share > 0)) continue;
    const uid = uidOf.get(address);
    if (uid === undefined) unregistered.push(address);
    else vector[uid] += share;
  }
  const processed = processWeights(vector, subnet.minAllowedWeights, subnet.maxWeightLimit);
  if (!processed) return { dests: [], weights: [], unregistered };
  return { ...convertWeightsAndUidsForEmit(processed.uids, processed.weights), unregistered };
}

/** The chain side of a coordinator, when configured. */
export interface ChainOptions {
  /** ws:// or wss:// URL of a subtensor node. */
  endpoint: string;
  netuid: number;
  /** set_weights' version_key; undefined: the subnet's WeightsVersionKey, read from the chain. */
  versionKey?: bigint;
}

/** A chain option is missing or malformed; `field` names the flag. */
export class ChainConfigError extends RunConfigError {
  override name = 'ChainConfigError';
  constructor(field: string, message: string) {
    super(field, message);
    this.message = `chain: '${field}' ${message}`;
  }
}

/** Validates the chain flags: both absent → null (no chain side); one without the other → an error. */
export function parseChainOptions(raw: { subtensor?: string; netuid?: string; versionKey?: string }): ChainOptions | null {
  const { subtensor, netuid, versionKey } = raw;
  if (subtensor === undefined && netuid === undefined) {
    if (versionKey !== undefined) throw new ChainConfigError('--version-key', 'only means something with --subtensor and --netuid');
    return null;
  }
  if (subtensor === undefined) throw new ChainConfigError('--subtensor', 'is needed with --netuid: the ws:// or wss:// URL of a subtensor node (e.g. wss://entrypoint-finney.opentensor.ai:443)');
  if (netuid === undefined) throw new ChainConfigError('--netuid', `is needed with --subtensor: the number of your subnet`);
  let url: URL;
  try {
    url = new URL(subtensor);
  } catch {
    throw new ChainConfigError('--subtensor', `must be a ws:// or wss:// URL, got '${subtensor}'`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new ChainConfigError('--subtensor', `must be a ws:// or wss:// URL (a node's WebSocket RPC), got '${subtensor}'`);
  if (!/^\d+$/.test(netuid) || Number(netuid) > U16_MAX) throw new ChainConfigError('--netuid', `must be an integer from 1 to ${U16_MAX}, got '${netuid}'`);
  if (Number(netuid) === 0) throw new ChainConfigError('--netuid', 'is 0, the root network, where weights are set differently: give your subnet\'s netuid');
  let key: bigint | undefined;
  if (versionKey !== undefined) {
    if (!/^\d+$/.test(versionKey) || BigInt(versionKey) >= 2n ** 64n) throw new ChainConfigError('--version-key', `must be an integer from 0 to 2^64-1, got '${versionKey}'`);
    key = BigInt(versionKey);
  }
  return { endpoint: subtensor, netuid: Number(netuid), versionKey: key };
}
