// Causal attention, variant 2 (FlashAttention-2 / ONNX Runtime style): one thread owns one
// row, its operands and accumulators live in registers, and the other side's rows are
// loaded cooperatively into workgroup memory as tiles that every thread of a warp reads at
// the same address (a broadcast: one shared-memory pass per vec4, no bank conflicts).
// Variant 1 (attention.wgsl) stays the fallback for shapes this file does not take.
//
// Layouts: q, k and v are read from one buffer `src` and dq, dk, dv written at offsets
// and row strides the params give (vec4 units; a row is one token b·T + t, heads D apart in
// it): separate tensors [B, T, H, D] / [B, T, HKV, D] copied back to back, or the fused
// projection's rows [q | k | v] as they are. out [B, T, H, D], lse and drow [B, H, T].
// D is a multiple of 4 (rows are read as vec4) and at most 4 · MAX_DK4, so a row fits the
// register arrays below.
//
// ROPE (D a multiple of 8): q and k are rotated as they are loaded (rotate-half pairs
// (d, d + D/2), (cos, sin) of each position from `rope_tab`, rope.wgsl's table) and dq, dk
// rotated back (by −θ) before they are written: the fused projection's output goes into
// attention unrotated and its gradient comes out packed, with no RoPE pass either side.
//
// Entry points:
//   forward   one thread per query row, BQ rows per workgroup: q (scaled) and the output
//             accumulator in registers; K and V tiles of BC keys; online softmax per tile;
//             tiles past the block's last query are never loaded (causal block skipping),
//             and a thread whose row precedes a whole tile skips its arithmetic. Where rows
//             are few, KS threads share a row, each taking KC = BC / KS keys of every tile,
//             and their partial results are merged at the end (one more barrier).
//   bwd_dq    as forward (rows, KS): q, dout and dq in registers; D_i = dout·out is
//             computed here from the thread's own rows and written to drow for bwd_dkdv
//             (so the backward needs no separate rowdot pass).
//   bwd_dkdv  two threads per key row, BC keys per workgroup: one holds k, v and dk, the
//             other k and dv, in registers; Q, dout, lse and drow tiles of BQ queries from
//             the key block's first query to T, for each query head of the group (summed in
//             registers: no atomics).
//
// Query split (p.qsplits = S > 1, where key blocks are too few to fill the GPU): S bwd_dkdv
// workgroups share a key block, each taking a contiguous 1/S of its (head, query tile)
// steps and writing partial dk, dv to a scratch buffer (S slices of [dk | dv]); bwd_dkdv
// then runs first, computing D_i from dout and out itself, and bwd_dq, the dispatch after
// it, sums the S partials in order (deterministic, no atomics) into dk and dv beside dq (one
// buffer). With S = 1 both kernels run as before: bwd_dq first, drow handed to bwd_dkdv.
//
// Two barriers per tile: after the tile is loaded, and before it is overwritten. Scores are
// base 2 (q pre-multiplied by scale·log2 e). Masked scores are a large finite negative, and
// every row sees key 0 in its first tile, so the running max is finite.

struct Params {
  B: u32,
  T: u32,
  H: u32,
  HKV: u32,
  D: u32,
  scale: f32,
  nblocks: u32, // query blocks per (b, h) for forward / bwd_dq, key blocks per (b, hk) for bwd_dkdv
  // vec4 offsets of q's, k's and v's first row in src, and their row strides
  q_off: u32,
  q_stride: u32,
  k_off: u32,
  v_off: u32,
  kv_stride: u32,
  // likewise for dq (in dq) and dk, dv (in dkv)
  dq_off: u32,
  dq_stride: u32,
  dk_off: u32,
  dv_off: u32,
  dkv_stride: u32,
  qsplits: u32, // bwd_dkdv workgroups per key block (1: no split)
  part_stride: u32, // bwd_dkdv: vec4s between consecutive splits' partials in dkv
}

override BQ: u32 = 64u; // query rows per tile (forward / bwd_dq: threads per workgroup)
override BC: u32 = 32u; // key rows per tile (bwd_dkdv: keys per workgroup, two threads each)
override KS: u32 = 1u; // forward / bwd_dq: threads per query row, each taking KC keys of a tile
override KC: u32 = BC / KS;
override DK4: u32 = 16u; // D / 4
override KT: u32 = BC * DK4; // a key-side tile, vec4s
override QT: u32 = BQ * DK4; // a query-side tile, vec4s
override ROPE: bool = false;
override RH: u32 = DK4 / 2u; // vec4s from a rotate-half pair's first element to its second

const MAX_DK4: u32 = 16u; // D ≤ 64
const MAX_BC: u32 = 64u;
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const NEG: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4f>; // q, k, v
// (cos, sin) pairs [T, D/2] (read only with ROPE; the host binds src here without it)
@group(0) @binding(2) var<storage, read> rope_tab: array<vec4f>;
// forward
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> lse_w: array<f32>;
// bwd_dq: src, out, dout, lse → drow, dq
@group(0) @binding(3) var<storage, read> fwd_out: array<vec4f>;
@group(0) @binding(4) var<storage, read> dq_dout: array<vec4f>;
@group(0) @binding(5) var<storage, read> dq_lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> drow_w: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<vec4f>;
// bwd_dq with qsplits > 1: bwd_dkdv's partial [dk | dv] slices, summed into dk and dv in dq
@group(0) @binding(8) var<storage, read> dkv_parts: array<vec4f>;
// bwd_dkdv: src, dout, lse, drow → dk, dv (both in dkv)
@group(0) @binding(3) var<storage, read> dout: array<vec4f>;
@group(0) @binding(4) var<storage, read> lse: array<f32>;
@group(0) @binding(5) var<storage, read> drow: array<f32>;
@group(0) @binding(6) var<storage, read_write> dkv: array<vec4f>;
// with qsplits > 1: the forward's output, for D_i (drow is not written yet)
@group(0) @binding(7) var<storage, read> dkdv_fwd_out: array<vec4f>;

// forward / bwd_dq: the K and V tiles. bwd_dkdv: the Q and dout tiles (qs, os) and the query
// rows' statistics.
var<workgroup> ks: array<vec4f, KT>;
var<workgroup> vs: array<vec4f, KT>;
var<workgroup> qs: array<vec4f, QT>;
var<workgroup> os: array<vec4f, QT>;
var<workgroup> row_lse: array<f32, BQ>;
var<workgroup> row_d: array<f32, BQ>;

// vec4 index of row t of query head h in out, dout (and of q, k, v in src, dq and dkv).
fn o_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.H + h) * DK4;
}
fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return p.q_off + (b * p.T + t) * p.q_stride + h * DK4;
}
fn k_row(b: u32, t: u32, hk: u32) -> u32 {
  return p.k_off + (b * p.T + t) * p.kv_stride + hk * DK4;
}
fn v_row(b: u32, t: u32, hk: u32) -> u32 {
  return p.v_off + (b * p.T + t) * p.kv_stride + hk * DK4;
}
fn dq_row(b: u32, t: u32, h: u32) -> u32 {
  return p.dq_off + (b * p.T + t) * p.dq_stride + h * DK4;
}

// RoPE of quad c of a row at position t: x holds its elements, y the quad D/2 away (its
// rotate-half partner). sign 1 rotates by θ (rope.wgsl's forward), −1 by −θ (its backward):
// x·cos − y·sin in the first half, x·cos + y·sin in the second (sin negated for −θ).
fn rope_quad(t: u32, c: u32, x: vec4f, y: vec4f, sign: f32) -> vec4f {
  let first = c < RH;
  let cc = select(c - RH, c, first);
  // rope_tab row t holds D/2 (cos, sin) pairs: DK4 vec4s, quad cc's four pairs in two
  let e = rope_tab[t * DK4 + 2u * cc];
  let f = rope_tab[t * DK4 + 2u * cc + 1u];
  let sn = select(sign, -sign, first) * vec4f(e.y, e.w, f.y, f.w);
  return x * vec4f(e.x, e.z, f.x, f.z) + y * sn;
}

// Quad c of the q or k row at `at` (position t) in src, rotated with ROPE.
fn qk_quad(at: u32, t: u32, c: u32) -> vec4f {
  let x = src[at + c];
  if (ROPE) {
    return rope_quad(t, c, x, src[select(at + c - RH, at + c + RH, c < RH)], 1.0);
  }
  return x;
}

// A row of q or k from src at `at` (position t) into r, times mul.
fn load_row(at: u32, t: u32, mul: f32, r: ptr<function, array<vec4f, MAX_DK4>>) {
  for (var c = 0u; c < DK4; c++) { (*r)[c] = qk_quad(at, t, c) * mul; }
}

// K and V rows k0 .. k0 + BC − 1 into ks and vs (zero past T); consecutive threads take
// consecutive vec4s of a row, so the global reads are coalesced and the stores conflict-free.
fn load_kv_tile(b: u32, hk: u32, k0: u32, lid: u32, nthreads: u32) {
  for (var i = lid; i < KT; i += nthreads) {
    let t = k0 + i / DK4;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (t < p.T) {
      let c = i % DK4;
      x = qk_quad(k_row(b, t, hk), t, c);
      y = src[v_row(b, t, hk) + c];
    }
    ks[i] = x;
    vs[i] = y;
  }
}

// ---------------------------------------------------------------------------------------
// forward

// Thread lid of forward / bwd_dq: query row lid % BQ of the block, key part lid / BQ (whole
// warps share a part when BQ is a multiple of the warp width, so reads stay broadcasts).
// With KS > 1 the parts' partial results meet through ks and vs after the last tile (the
// host keeps (KS − 1)·BQ ≤ BC so they fit).

@compute @workgroup_size(BQ * KS)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  // The longest query blocks (most key tiles) are dispatched first.
  let qb = p.nblocks - 1u - wg % p.nblocks;
  let bh = wg / p.nblocks;
  if (bh >= p.B * p.H) { return; } // whole workgroups only: the barriers stay uniform
  let b = bh / p.H;
  let h = bh % p.H;
  let hk = h / (p.H / p.HKV);
  let r = lid % BQ;
  let part = lid / BQ;
  let q0 = qb * BQ;
  let tq = q0 + r;
  let live = tq < p.T;

  var qr: array<vec4f, MAX_DK4>;
  var acc: array<vec4f, MAX_DK4>;
  let mul = p.scale * LOG2E;
  for (var c = 0u; c < DK4; c++) {
    qr[c] = vec4f(0.0);
    acc[c] = vec4f(0.0);
  }
  if (live) { load_row(q_row(b, tq, h), tq, mul, &qr); }

  var m = NEG;
  var l = 0.0;
  var s: array<f32, MAX_BC>;
  let kend = min(p.T, q0 + BQ);
  let ntiles = (kend + BC - 1u) / BC;
  for (var kb = 0u; kb < ntiles; kb++) {
    let k0 = kb * BC + part * KC; // this part's first key of the tile
    load_kv_tile(b, hk, kb * BC, lid, BQ * KS);
    workgroupBarrier(); // the tile is loaded
    // The part's first key is at or before the row, so the running max is finite from here.
    if (k0 <= tq) {
      var mt = m;
      for (var j = 0u; j < KC; j++) {
        let jj = part * KC + j;
        var x = 0.0;
        for (var c = 0u; c < DK4; c++) { x += dot(qr[c], ks[jj * DK4 + c]); }
        x = select(x, NEG, k0 + j > tq);
        s[j] = x;
        mt = max(mt, x);
      }
      let alpha = exp2(m - mt);
      l *= alpha;
      for (var c = 0u; c < DK4; c++) { acc[c] *= alpha; }
      for (var j = 0u; j < KC; j++) {
        let jj = part * KC + j;
        let pj = exp2(s[j] - mt);
        l += pj;
        for (var c = 0u; c < DK4; c++) { acc[c] += pj * vs[jj * DK4 + c]; }
      }
      m = mt;
    }
    workgroupBarrier(); // every thread is done with the tile
  }

  if (KS > 1u) {
    // Parts 1.. hand (m, l, acc) to part 0, which rescales them to the common max.
    if (part > 0u) {
      let slot = (part - 1u) * BQ + r;
      vs[slot] = vec4f(m, l, 0.0, 0.0);
      for (var c = 0u; c < DK4; c++) { ks[slot * DK4 + c] = acc[c]; }
    }
    workgroupBarrier();
    if (part == 0u) {
      for (var o = 1u; o < KS; o++) {
        let slot = (o - 1u) * BQ + r;
        let ml = vs[slot];
        let mt = max(m, ml.x);
        let a0 = exp2(m - mt);
        let a1 = exp2(ml.x - mt);
        l = l * a0 + ml.y * a1;
        for (var c = 0u; c < DK4; c++) { acc[c] = acc[c] * a0 + ks[slot * DK4 + c] * a1; }
        m = mt;
      }
    }
  }

  if (live && part == 0u) {
    let inv = 1.0 / l;
    let at = o_row(b, tq, h);
    for (var c = 0u; c < DK4; c++) { out[at + c] = acc[c] * inv; }
    lse_w[(b * p.H + h) * p.T + tq] = (m + log2(l)) * LN2;
  }
}

// dq's row (acc·mul) at `at` in dq, rotated back by −θ with ROPE.
fn store_dq_row(at: u32, t: u32, mul: f32, r: ptr<function, array<vec4f, MAX_DK4>>) {
  for (var c = 0u; c < DK4; c++) {
    var x = (*r)[c] * mul;
    if (ROPE) {
      x = rope_quad(t, c, x, (*r)[select(c - RH, c + RH, c < RH)] * mul, -1.0);
    }
    dq[at + c] = x;
  }
}

// ---------------------------------------------------------------------------------------
// backward: dq (and drow)

// bwd_dq's workgroup wg (of B·H·nblocks) sums its share of bwd_dkdv's partials, split 0
// first, into dk and dv (in dq, at dk_off / dv_off with row stride dkv_stride). A partial
// slice is [dk | dv], each [B·T, HKV·DK4] vec4s: split s's at s · 2 · n4.
fn sum_dkv_parts(wg: u32, lid: u32) {
  let row4 = p.HKV * DK4;
  let n4 = p.B * p.T * row4;
  let total = 2u * n4;
  let nwg = p.B * p.H * p.nblocks;
  let per = (total + nwg - 1u) / nwg;
  let end = min(total, (wg + 1u) * per);
  for (var e = wg * per + lid; e < end; e += BQ * KS) {
    var x = dkv_parts[e];
    for (var s = 1u; s < p.qsplits; s++) { x += dkv_parts[s * total + e]; }
    let r = e % n4;
    let base = select(p.dk_off, p.dv_off, e >= n4);
    dq[base + (r / row4) * p.dkv_stride + r % row4] = x;
  }
}

@compute @workgroup_size(BQ * KS)
fn bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let qb = p.nblocks - 1u - wg % p.nblocks;
  let bh = wg / p.nblocks;
  if (bh >= p.B * p.H) { return; }
  if (p.qsplits > 1u) { sum_dkv_parts(wg, lid); }
  let b = bh / p.H;
  let h = bh % p.H;
  let hk = h / (p.H / p.HKV);
  let r = lid % BQ;
  let part = lid / BQ;
  let q0 = qb * BQ;
  let tq = q0 + r;
  let live = tq < p.T;

  var qr: array<vec4f, MAX_DK4>;
  var dor: array<vec4f, MAX_DK4>;
  var acc: array<vec4f, MAX_DK4>;
  for (var c = 0u; c < DK4; c++) {
    qr[c] = vec4f(0.0);
    dor[c] = vec4f(0.0);
    acc[c] = vec4f(0.0);
  }
  var lse2 = 0.0;
  var di = 0.0;
  if (live) {
    load_row(q_row(b, tq, h), tq, p.scale * LOG2E, &qr);
    let at = o_row(b, tq, h);
    for (var c = 0u; c < DK4; c++) {
      dor[c] = dq_dout[at + c];
      di += dot(dor[c], fwd_out[at + c]);
    }
    let row = (b * p.H + h) * p.T + tq;
    lse2 = dq_lse[row] * LOG2E;
    if (part == 0u) { drow_w[row] = di; }
  }

  let kend = min(p.T, q0 + BQ);
  let ntiles = (kend + BC - 1u) / BC;
  for (var kb = 0u; kb < ntiles; kb++) {
    let k0 = kb * BC + part * KC;
    load_kv_tile(b, hk, kb * BC, lid, BQ * KS);
    workgroupBarrier();
    if (k0 <= tq) {
      for (var j = 0u; j < KC; j++) {
        let jj = part * KC + j;
        var x = 0.0;
        var y = 0.0;
        for (var c = 0u; c < DK4; c++) {
          x += dot(qr[c], ks[jj * DK4 + c]);
          y += dot(dor[c], vs[jj * DK4 + c]);
        }
        let pr = select(exp2(x - lse2), 0.0, k0 + j > tq);
        let w = pr * (y - di);
        for (var c = 0u; c < DK4; c++) { acc[c] += w * ks[jj * DK4 + c]; }
      }
    }
    workgroupBarrier();
  }

  if (KS > 1u) {
    if (part > 0u) {
      let slot = (part - 1u) * BQ + r;
      for (var c = 0u; c < DK4; c++) { ks[slot * DK4 + c] = acc[c]; }
    }
    workgroupBarrier();
    if (part == 0u) {
      for (var o = 1u; o < KS; o++) {
        let slot = (o - 1u) * BQ + r;
        for (var c = 0u; c < DK4; c++) { acc[c] += ks[slot * DK4 + c]; }
      }
    }
  }

  if (live && part == 0u) {
    let at = dq_row(b, tq, h);
    store_dq_row(at, tq, p.scale, &acc);
  }
}

// ---------------------------------------------------------------------------------------
// backward: dk and dv. Here threads own key rows, two per key: thread j < BC accumulates dk
// of key k0 + j, thread BC + j its dv, so each holds k (and v for dk) and one accumulator:
// 3·D registers of rows, as bwd_dq, instead of 4·D (past 255 registers at D = 64). Both
// compute the key's scores (a quarter more FMAs); with BC a multiple of the warp width the
// role branch is uniform per warp. The tiles hold BQ query rows.

// Query rows q0 .. q0 + BQ − 1 of head h into qs (times mul, rotated with ROPE) and their
// dout rows into os, zero past T; coalesced as load_kv_tile.
fn load_q_tile(b: u32, h: u32, q0: u32, lid: u32, nthreads: u32, mul: f32) {
  for (var i = lid; i < QT; i += nthreads) {
    let t = q0 + i / DK4;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (t < p.T) {
      let c = i % DK4;
      x = qk_quad(q_row(b, t, h), t, c) * mul;
      y = dout[o_row(b, t, h) + c];
    }
    qs[i] = x;
    os[i] = y;
  }
}

// dk's row (acc·mul) at `at` in dkv, rotated back by −θ with ROPE.
fn store_dk_row(at: u32, t: u32, mul: f32, r: ptr<function, array<vec4f, MAX_DK4>>) {
  for (var c = 0u; c < DK4; c++) {
    var x = (*r)[c] * mul;
    if (ROPE) {
      x = rope_quad(t, c, x, (*r)[select(c - RH, c + RH, c < RH)] * mul, -1.0);
    }
    dkv[at + c] = x;
  }
}

@compute @workgroup_size(2 * BC)
fn bwd_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let split = wg % p.qsplits;
  let kb = (wg / p.qsplits) % p.nblocks; // the first key blocks see the most queries and go first
  let bhk = wg / (p.qsplits * p.nblocks);
  if (bhk >= p.B * p.HKV) { return; }
  let b = bhk / p.HKV;
  let hk = bhk % p.HKV;
  let group = p.H / p.HKV;
  let k0 = kb * BC;
  let key = k0 + lid % BC;
  let for_dk = lid < BC;
  let nthreads = 2u * BC;

  var kr: array<vec4f, MAX_DK4>;
  var vr: array<vec4f, MAX_DK4>;
  var acc: array<vec4f, MAX_DK4>; // dk (·scale·log2 e) or dv
  for (var c = 0u; c < DK4; c++) {
    kr[c] = vec4f(0.0);
    vr[c] = vec4f(0.0);
    acc[c] = vec4f(0.0);
  }
  if (key < p.T) {
    load_row(k_row(b, key, hk), key, 1.0, &kr);
    if (for_dk) {
      let at = v_row(b, key, hk);
      for (var c = 0u; c < DK4; c++) { vr[c] = src[at + c]; }
    }
  }

  let mul = p.scale * LOG2E;
  let qb0 = k0 / BQ; // the first query tile holding a query ≥ k0
  let nqb = (p.T + BQ - 1u) / BQ;
  // The block's steps are (head g, query tile qb), g-major; this split takes steps
  // [n·split / S, n·(split + 1) / S) of n (all of them without a split).
  let ntiles = nqb - qb0;
  let nsteps = group * ntiles;
  let qstep_end = (nsteps * (split + 1u)) / p.qsplits;
  for (var qstep = (nsteps * split) / p.qsplits; qstep < qstep_end; qstep++) {
    let h = hk * group + qstep / ntiles;
    let qb = qb0 + qstep % ntiles;
    let q0 = qb * BQ;
    load_q_tile(b, h, q0, lid, nthreads, mul);
    for (var i = lid; i < BQ; i += nthreads) {
      let t = q0 + i;
      var a = 0.0;
      var e = 0.0;
      if (t < p.T) {
        let row = (b * p.H + h) * p.T + t;
        a = lse[row] * LOG2E;
        if (p.qsplits > 1u) {
          // D_i = dout_i · out_i, summed as bwd_dq sums it.
          let at = o_row(b, t, h);
          for (var c = 0u; c < DK4; c++) { e += dot(dout[at + c], dkdv_fwd_out[at + c]); }
        } else {
          e = drow[row];
        }
      }
      row_lse[i] = a;
      row_d[i] = e;
    }
    workgroupBarrier(); // the tile is loaded
    // A key after the tile's last query has nothing to add from it.
    if (key < q0 + BQ) {
      for (var i = 0u; i < BQ; i++) {
        var x = 0.0;
        for (var c = 0u; c < DK4; c++) { x += dot(qs[i * DK4 + c], kr[c]); }
        let tq = q0 + i;
        let pr = select(exp2(x - row_lse[i]), 0.0, key > tq || tq >= p.T);
        if (for_dk) {
          var y = 0.0;
          for (var c = 0u; c < DK4; c++) { y += dot(os[i * DK4 + c], vr[c]); }
          let w = pr * (y - row_d[i]);
          for (var c = 0u; c < DK4; c++) { acc[c] += w * qs[i * DK4 + c]; }
        } else {
          for (var c = 0u; c < DK4; c++) { acc[c] += pr * os[i * DK4 + c]; }
        }
      }
    }
    workgroupBarrier(); // every thread is done with the tile
  }

  if (key < p.T) {
    let row = split * p.part_stride + (b * p.T + key) * p.dkv_stride + hk * DK4;
    if (for_dk) {
      // qs held q·scale·log2(e): dk = scale·Σ dS q = ln2 · Σ dS (q·scale·log2 e).
      store_dk_row(p.dk_off + row, key, LN2, &acc);
    } else {
      for (var c = 0u; c < DK4; c++) { dkv[p.dv_off + row + c] = acc[c]; }
    }
  }
}
