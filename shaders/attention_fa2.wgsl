// Causal attention, variant 2 (FlashAttention-2 / ONNX Runtime style): one thread owns one
// row, its operands and accumulators live in registers, and the other side's rows are
// loaded cooperatively into workgroup memory as tiles that every thread of a warp reads at
// the same address (a broadcast: one shared-memory pass per vec4, no bank conflicts).
// Variant 1 (attention.wgsl) stays the fallback for shapes this file does not take.
//
// Layouts as attention.wgsl: q [B, T, H, D], k and v [B, T, HKV, D], out [B, T, H, D],
// lse and drow [B, H, T]; here D is a multiple of 4 (rows are read as vec4) and at most
// 4 · MAX_DK4, so a row fits the register arrays below.
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
  nrows: u32, // unused here (attention.wgsl's rowdot)
}

override BQ: u32 = 64u; // query rows per tile (forward / bwd_dq: threads per workgroup)
override BC: u32 = 32u; // key rows per tile (bwd_dkdv: keys per workgroup, two threads each)
override KS: u32 = 1u; // forward / bwd_dq: threads per query row, each taking KC keys of a tile
override KC: u32 = BC / KS;
override DK4: u32 = 16u; // D / 4
override KT: u32 = BC * DK4; // a key-side tile, vec4s
override QT: u32 = BQ * DK4; // a query-side tile, vec4s

const MAX_DK4: u32 = 16u; // D ≤ 64
const MAX_BC: u32 = 64u;
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const NEG: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
// forward
@group(0) @binding(4) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> lse_w: array<f32>;
// bwd_dq: q, k, v, out, dout, lse → drow, dq
@group(0) @binding(4) var<storage, read> fwd_out: array<vec4f>;
@group(0) @binding(5) var<storage, read> dq_dout: array<vec4f>;
@group(0) @binding(6) var<storage, read> dq_lse: array<f32>;
@group(0) @binding(7) var<storage, read_write> drow_w: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4f>;
// bwd_dkdv: q, k, v, dout, lse, drow → dk, dv
@group(0) @binding(4) var<storage, read> dout: array<vec4f>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> drow: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4f>;

// forward / bwd_dq: the K and V tiles. bwd_dkdv: the Q and dout tiles (qs, os) and the query
// rows' statistics.
var<workgroup> ks: array<vec4f, KT>;
var<workgroup> vs: array<vec4f, KT>;
var<workgroup> qs: array<vec4f, QT>;
var<workgroup> os: array<vec4f, QT>;
var<workgroup> row_lse: array<f32, BQ>;
var<workgroup> row_d: array<f32, BQ>;

// vec4 index of row t of query head h / key-value head hk.
fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.H + h) * DK4;
}
fn kv_row(b: u32, t: u32, hk: u32) -> u32 {
  return ((b * p.T + t) * p.HKV + hk) * DK4;
}

// K and V rows k0 .. k0 + BC − 1 into ks and vs (zero past T); consecutive threads take
// consecutive vec4s of a row, so the global reads are coalesced and the stores conflict-free.
fn load_kv_tile(b: u32, hk: u32, k0: u32, lid: u32, nthreads: u32) {
  for (var i = lid; i < KT; i += nthreads) {
    let t = k0 + i / DK4;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (t < p.T) {
      let at = kv_row(b, t, hk) + i % DK4;
      x = k[at];
      y = v[at];
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
  if (live) {
    let at = q_row(b, tq, h);
    for (var c = 0u; c < DK4; c++) { qr[c] = q[at + c] * mul; }
  }

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
    let at = q_row(b, tq, h);
    for (var c = 0u; c < DK4; c++) { out[at + c] = acc[c] * inv; }
    lse_w[(b * p.H + h) * p.T + tq] = (m + log2(l)) * LN2;
  }
}

// ---------------------------------------------------------------------------------------
// backward: dq (and drow)

@compute @workgroup_size(BQ * KS)
fn bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let qb = p.nblocks - 1u - wg % p.nblocks;
  let bh = wg / p.nblocks;
  if (bh >= p.B * p.H) { return; }
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
    let at = q_row(b, tq, h);
    let mul = p.scale * LOG2E;
    for (var c = 0u; c < DK4; c++) {
      qr[c] = q[at + c] * mul;
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
    let at = q_row(b, tq, h);
    for (var c = 0u; c < DK4; c++) { dq[at + c] = acc[c] * p.scale; }
  }
}

// ---------------------------------------------------------------------------------------
// backward: dk and dv. Here threads own key rows, two per key: thread j < BC accumulates dk
// of key k0 + j, thread BC + j its dv, so each holds k (and v for dk) and one accumulator:
// 3·D registers of rows, as bwd_dq, instead of 4·D (past 255 registers at D = 64). Both
// compute the key's scores (a quarter more FMAs); with BC a multiple of the warp width the
// role branch is uniform per warp. The tiles hold BQ query rows.

@compute @workgroup_size(2 * BC)
fn bwd_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let kb = wg % p.nblocks; // the first key blocks see the most queries and go first
  let bhk = wg / p.nblocks;
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
    let at = kv_row(b, key, hk);
    for (var c = 0u; c < DK4; c++) { kr[c] = k[at + c]; }
    if (for_dk) {
      for (var c = 0u; c < DK4; c++) { vr[c] = v[at + c]; }
    }
  }

  let mul = p.scale * LOG2E;
  let qb0 = k0 / BQ; // the first query tile holding a query ≥ k0
  let nqb = (p.T + BQ - 1u) / BQ;
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    for (var qb = qb0; qb < nqb; qb++) {
      let q0 = qb * BQ;
      for (var i = lid; i < QT; i += nthreads) {
        let t = q0 + i / DK4;
        var x = vec4f(0.0);
        var y = vec4f(0.0);
        if (t < p.T) {
          let at = q_row(b, t, h) + i % DK4;
          x = q[at] * mul;
          y = dout[at];
        }
        qs[i] = x;
        os[i] = y;
      }
      for (var i = lid; i < BQ; i += nthreads) {
        let t = q0 + i;
        var a = 0.0;
        var e = 0.0;
        if (t < p.T) {
          a = lse[(b * p.H + h) * p.T + t] * LOG2E;
          e = drow[(b * p.H + h) * p.T + t];
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
  }

  if (key < p.T) {
    let at = kv_row(b, key, hk);
    if (for_dk) {
      // qs held q·scale·log2(e): dk = scale·Σ dS q = ln2 · Σ dS (q·scale·log2 e).
      for (var c = 0u; c < DK4; c++) { dk[at + c] = acc[c] * LN2; }
    } else {
      for (var c = 0u; c < DK4; c++) { dv[at + c] = acc[c]; }
    }
  }
}
