// Top-k by magnitude per chunk (SparseLoCo). One workgroup per chunk of the chunk grid
// (src/sparseloco/chunks.ts: 2-D tensors in blockRows × blockCols blocks, 1-D in runs; a chunk
// holds at most 4096 elements). For every chunk it writes the k elements of largest |x| to
// slots [c·k, c·k + kept) in ascending local-index order; the slots a small chunk cannot fill
// get local 0xFFFFFFFF and value 0.
//
// Exact and deterministic:
//   1. Thread t owns the elements j ∈ [t·per, (t+1)·per) of the chunk in local-index order
//      (j enumerates the chunk's rows then columns, so it orders like the local index) and
//      keeps their f32 bits in registers.
//   2. Radix select of the k-th largest key = bits & 0x7fffffff (for |x| the bit pattern orders
//      like the value): 4 passes over 8-bit digits, most significant first. Each pass builds a
//      256-bin histogram of the candidates' digit with workgroup atomics (integer counts:
//      the same result in any order), a suffix sum over the bins picks the digit holding the
//      k-th largest, and the candidates narrow to that digit. After the 4 passes the prefix is
//      the threshold T and `need` says how many elements equal to T are still to be taken.
//   3. Stable compaction: every element with key > T is kept; elements equal to T are kept in
//      local-index order until `need` are taken. One workgroup scan of the per-thread counts
//      (greater | equal << 16) gives each element its output slot.
// NaN has key above +inf, so it counts as the largest magnitude (it should never be in e).
// Values are moved as u32 bits, so the output is a bit-exact copy of the input.

struct Params {
  rows: u32,
  cols: u32,
  blockRows: u32,
  blockCols: u32,
  across: u32,
  count: u32,
  k: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_local: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_values: array<u32>;

const WG: u32 = 256u;
// Elements per thread at most: 4096 / WG (keep in step with MAX_CHUNK_ELEMENTS).
const PER: u32 = 16u;
const EMPTY: u32 = 0xffffffffu;

var<workgroup> hist: array<atomic<u32>, WG>;
var<workgroup> scan: array<u32, WG>;
var<workgroup> sel_digit: u32;
var<workgroup> sel_need: u32;

// Inclusive suffix sum over the workgroup: returns Σ_{t' ≥ lid} v(t'), and leaves the sums in
// `scan`. Every thread must call it (barriers).
fn suffix_sum(lid: u32, v: u32) -> u32 {
  scan[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < WG; off = off << 1u) {
    var s = scan[lid];
    if (lid + off < WG) {
      s += scan[lid + off];
    }
    workgroupBarrier();
    scan[lid] = s;
    workgroupBarrier();
  }
  return scan[lid];
}

@compute @workgroup_size(WG)
fn topk_chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= p.count) {
    return;
  }
  let r0 = (c / p.across) * p.blockRows;
  let c0 = (c % p.across) * p.blockCols;
  let er = min(p.blockRows, p.rows - r0);
  let ec = min(p.blockCols, p.cols - c0);
  let n = er * ec;
  let k = p.k;
  let per = (n + WG - 1u) / WG;
  let j0 = min(n, lid * per);
  let cnt = min(n, j0 + per) - j0;

  // 1. Load this thread's run of the chunk.
  var bits: array<u32, PER>;
  var r = j0 / ec;
  var cc = j0 % ec;
  for (var i = 0u; i < PER; i++) {
    if (i < cnt) {
      bits[i] = x[(r0 + r) * p.cols + c0 + cc];
      cc += 1u;
      if (cc == ec) {
        cc = 0u;
        r += 1u;
      }
    }
  }

  // 2. Radix select of the threshold (skipped when the chunk is kept whole).
  let keep_all = n <= k;
  var prefix = 0u;
  var mask = 0u;
  var need = min(k, n);
  if (!keep_all) {
    for (var round = 0u; round < 4u; round++) {
      let shift = 24u - 8u * round;
      atomicStore(&hist[lid], 0u);
      workgroupBarrier();
      // Runs of equal digits in this thread's elements go in with one atomic.
      var run_digit = 0u;
      var run = 0u;
      for (var i = 0u; i < PER; i++) {
        if (i < cnt) {
          let key = bits[i] & 0x7fffffffu;
          if ((key & mask) == prefix) {
            let d = (key >> shift) & 255u;
            if (run > 0u && d != run_digit) {
              atomicAdd(&hist[run_digit], run);
              run = 0u;
            }
            run_digit = d;
            run += 1u;
          }
        }
      }
      if (run > 0u) {
        atomicAdd(&hist[run_digit], run);
      }
      workgroupBarrier();
      // at_or_above = candidates whose digit ≥ lid; the k-th largest lies in the one bin
      // where the count above it is < need ≤ the count at or above it.
      let at_or_above = suffix_sum(lid, atomicLoad(&hist[lid]));
      var above = 0u;
      if (lid + 1u < WG) {
        above = scan[lid + 1u];
      }
      if (above < need && at_or_above >= need) {
        sel_digit = lid;
        sel_need = need - above;
      }
      workgroupBarrier();
      prefix |= sel_digit << shift;
      mask |= 255u << shift;
      need = sel_need;
    }
  }

  // 3. Output slots: an exclusive prefix over threads of (greater | equal << 16).
  var gt = 0u;
  var eq = 0u;
  for (var i = 0u; i < PER; i++) {
    if (i < cnt) {
      let key = bits[i] & 0x7fffffffu;
      if (keep_all || key > prefix) {
        gt += 1u;
      } else if (key == prefix) {
        eq += 1u;
      }
    }
  }
  let mine = gt | (eq << 16u);
  let suffix = suffix_sum(lid, mine);
  let before = scan[0] - suffix; // Σ over threads t' < lid
  var gt_before = before & 0xffffu;
  var eq_before = before >> 16u;
  let base = c * k;
  r = j0 / ec;
  cc = j0 % ec;
  for (var i = 0u; i < PER; i++) {
    if (i < cnt) {
      let key = bits[i] & 0x7fffffffu;
      var slot = EMPTY;
      if (keep_all || key > prefix) {
        slot = gt_before + min(eq_before, need);
        gt_before += 1u;
      } else if (key == prefix) {
        if (eq_before < need) {
          slot = gt_before + eq_before;
        }
        eq_before += 1u;
      }
      if (slot != EMPTY) {
        out_local[base + slot] = r * p.blockCols + cc;
        out_values[base + slot] = bits[i];
      }
      cc += 1u;
      if (cc == ec) {
        cc = 0u;
        r += 1u;
      }
    }
  }
  for (var s = min(k, n) + lid; s < k; s += WG) {
    out_local[base + s] = EMPTY;
    out_values[base + s] = 0u;
  }
}
