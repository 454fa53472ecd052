// Receivers' aggregation of the peers' decoded updates (DESIGN.md, step 3): per tensor,
//   1. each peer's L2 norm of its values; a tensor whose values are all zero says nothing of
//      that tensor and takes no part in it (neither the bound nor any index's average), so an
//      all-zero update cannot halve what honest peers sent;
//   2. the clip bound is the LOWER median of the other norms (the smaller middle value of an
//      even count), so an attacker cannot move it: with two updates it is the smaller norm, and
//      in general more than half the updates must be large for the bound to be large. (The
//      mean of the middle two let one attacker beside one honest peer pass at ~×500.) With
//      fewer than FLOORED_BELOW updates the bound is at least the commit's clip floor (the
//      validator's reference norm of recent helpful updates, carried in the commit), so a huge
//      one is still clipped to a recent honest size. The bound depends on the commit alone,
//      never on the receiver's own update, so every replica applies the same bits;
//   3. each peer's values scaled to the update size: min(bound, the largest norm) / norm, up
//      as well as down, so every update counts as one vote of one size. Only clipping (down)
//      let an update shrunk just over the validator's undersize bar (×1/9) halve every index it
//      shared with an honest one (the average of h and h/9), round after round; scaled up, it
//      weighs what its direction is worth, and an attacker could send that direction at the
//      bound's size anyway. Never above the largest norm: a lone update, or two under a floor
//      raised above both, keep their own size rather than a lagging reference's;
//   4. for each index, the average over the peers that sent it (sum / number of senders).
// The result has sorted unique indices. A non-finite result (impossible from decoded
// updates, whose values the decoder bounds) throws, so nothing non-finite is ever applied.
//
// Method: concatenate every peer's (index, scaled value) pairs in peer order, sort them by
// index with a stable LSD radix sort (11-bit digits, only as many passes as the largest
// index needs), then sum each run of equal indices. O(total nnz) time and memory per tensor,
// no array of the tensor's size. Stable order means each index's sum runs in peer order, in
// float64, so the result is bit-identical to summing peer by peer. Environment-free.
import type { SparseTensor } from './selection.ts';

export interface AggregateLayout {
  name: string;
  shape: readonly number[];
}

const DIGIT = 11;
const BUCKETS = 1 << DIGIT;
const count = new Uint32Array(BUCKETS);
const F32_MAX = 3.4028234663852886e38;

/** The average of some index is not a finite f32: the round's aggregate must not be applied. */
export class NonFiniteAggregate extends RangeError {}

/** Median of the numbers (mean of the middle two for an even count); 0 for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length & 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Lower median: the middle value, the smaller of the two middle values for an even count; 0 for none. */
export function lowerMedian(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/** Below this many updates in a tensor the clip bound is raised to the commit's floor (with more, a majority decides the lower median). */
export const FLOORED_BELOW = 3;

/** The per-tensor norm every peer's values are clipped to (see the top of the file); `floor`: the commit's clip floor for the tensor. */
export function clipBound(norms: readonly number[], floor = 0): number {
  const median = lowerMedian(norms);
  return norms.length < FLOORED_BELOW && floor > median ? floor : median;
}

/** The norm every non-zero update of a tensor is scaled to (step 3): the bound, never above the largest norm; `norms` without the zeros. */
export function updateSize(norms: readonly number[], floor = 0): number {
  return Math.min(clipBound(norms, floor), Math.max(0, ...norms));
}

/** L2 norm of the values (float64, in order). */
export function l2norm(values: ArrayLike<number>): number {
  let ss = 0;
  for (let i = 0; i < values.length; i++) ss += values[i] * values[i];
  return Math.sqrt(ss);
}

/**
 * Averages the peers' sparse updates tensor by tensor. `updates[p]` holds peer p's tensors
 * in `layout` order; `clipFloor[t]`: the commit's clip floor of tensor t (none: 0); within a peer, a tensor's indices must be unique (decodeUpdate
 * guarantees it). Throws RangeError on a missing or misnamed tensor or an index outside the
 * tensor, NonFiniteAggregate on an average that is not a finite f32.
 */
export function aggregate(updates: readonly (readonly SparseTensor[])[], layout: readonly AggregateLayout[], clipFloor: readonly number[] = []): SparseTensor[] {
  updates.forEach((u, p) => {
    if (u.length !== layout.length) throw new RangeError(`aggregate: peer ${p} sent ${u.length} tensors, the layout has ${layout.length}`);
  });
  return layout.map((spec, t) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const peers = updates.map((u, p) => {
      const x = u[t];
      if (x.name !== spec.name) throw new RangeError(`aggregate: peer ${p}'s tensor ${t} is '${x.name}', expected '${spec.name}'`);
      if (x.indices.length !== x.values.length) throw new RangeError(`aggregate: peer ${p}'s '${x.name}' has ${x.indices.length} indices and ${x.values.length} values`);
      // Checked for every peer, an all-zero tensor too (it takes no part below).
      for (const key of x.indices) if (key >= size) throw new RangeError(`aggregate: peer ${p}'s '${x.name}' has index ${key}, outside its ${size} elements`);
      return x;
    });
    const norms = peers.map((x) => l2norm(x.values));
    const voting = peers.map((_, p) => p).filter((p) => norms[p] > 0);
    const target = updateSize(voting.map((p) => norms[p]), clipFloor[t] ?? 0);
    let total = 0;
    for (const p of voting) total += peers[p].indices.length;
    let keys = new Uint32Array(total);
    let vals = new Float64Array(total);
    let at = 0;
    let maxKey = 0;
    for (const p of voting) {
      const x = peers[p];
      const scale = target / norms[p];
      const { indices, values } = x;
      for (let i = 0; i < indices.length; i++, at++) {
        const key = indices[i];
        if (key > maxKey) maxKey = key;
        keys[at] = key;
        vals[at] = values[i] * scale;
      }
    }
    // Stable LSD radix sort of (key, value) by key.
    if (total > 1) {
      let keys2 = new Uint32Array(total);
      let vals2 = new Float64Array(total);
      for (let shift = 0; shift < 32 && maxKey >>> shift > 0; shift += DIGIT) {
        count.fill(0);
        for (let i = 0; i < total; i++) count[(keys[i] >>> shift) & (BUCKETS - 1)]++;
        let sum = 0;
        for (let b = 0; b < BUCKETS; b++) {
          const c = count[b];
          count[b] = sum;
          sum += c;
        }
        for (let i = 0; i < total; i++) {
          const d = count[(keys[i] >>> shift) & (BUCKETS - 1)]++;
          keys2[d] = keys[i];
          vals2[d] = vals[i];
        }
        [keys, keys2] = [keys2, keys];
        [vals, vals2] = [vals2, vals];
      }
    }
    // Average each run of equal indices.
    let unique = 0;
    for (let i = 0; i < total; i++) if (i === 0 || keys[i] !== keys[i - 1]) unique++;
    const indices = new Uint32Array(unique);
    const values = new Float32Array(unique);
    let u = 0;
    for (let i = 0; i < total;) {
      const key = keys[i];
      let sum = 0;
      let senders = 0;
      for (; i < total && keys[i] === key; i++, senders++) sum += vals[i];
      const mean = sum / senders;
      if (!Number.isFinite(mean) || Math.abs(mean) > F32_MAX) throw new NonFiniteAggregate(`aggregate: '${spec.name}' index ${key} averages to ${mean}, not a finite f32`);
      indices[u] = key;
      values[u++] = mean;
    }
    return { name: spec.name, shape: [...spec.shape], indices, values };
  });
}
