// Causal attention, FlashAttention style: the T×T score matrix is never stored.
//
// Layouts: q [B, T, H, D], k and v [B, T, HKV, D], out [B, T, H, D], lse and drow [B, H, T].
// Query head h reads key/value head h / (H / HKV) (grouped-query attention).
//
// Entry points:
//   forward  one workgroup per (b, h, block of BR query rows); loops over key blocks of BC up
//            to the causal limit with an online softmax; writes out and the row logsumexp.
//   rowdot   drow[b, h, t] = Σ_d dout·out over one row (one thread per row).
//   bwd_dq   one workgroup per (b, h, query block): dq = scale · Σ_j dS_ij k_j.
//   bwd_dkdv one workgroup per (b, kv head, block of BC keys): loops over the H / HKV query
//            heads of the group and the query blocks at or after the keys, so dk and dv are
//            summed in registers (no atomics).
//
// Tiles live in workgroup memory as vec4 rows of DK4 = ceil(D / 4) vectors, zero-padded past
// D, with a row stride of DK4 + 1 vectors so that threads reading different rows hit
// different banks. A tile row is served by TPR consecutive threads: thread tx owns the key
// (or query) columns tx, tx + TPR, ... of the score tile and the vec4 columns tx, tx + TPR,
// ... of the output row. Scores are kept in base 2: q is pre-multiplied by scale·log2(e).
// Masked scores use a large finite negative instead of −∞ (WGSL does not promise IEEE
// infinities), and every row sees key 0 in its first tile, so the running max is finite.

struct Params {
  B: u32,
  T: u32,
  H: u32,
  HKV: u32,
  D: u32,
  scale: f32,
  nblocks: u32, // query blocks per (b, h) for forward / bwd_dq, key blocks per (b, hk) for bwd_dkdv
  nrows: u32, // rowdot: B·T·H
}

override BR: u32 = 16u; // query rows per tile
override BC: u32 = 16u; // key rows per tile
override TPR: u32 = 4u; // threads per tile row
override DK4: u32 = 16u; // ceil(D / 4)
override DPT4: u32 = 4u; // ceil(DK4 / TPR): vec4 output columns per thread (≤ MAX_DPT4)
override DS: u32 = DK4 + 1u; // tile row stride in vec4s
override QT: u32 = BR * DS; // a query-side tile
override KT: u32 = BC * DS; // a key-side tile
override PT: u32 = BR * BC; // a probability tile
override RT: u32 = BR * TPR; // per-thread partials of a query tile

const MAX_DPT4: u32 = 4u;
const MAX_SPT: u32 = 16u; // BC / TPR in forward and bwd_dq
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const NEG: f32 = -1.0e30;
const ROW_WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
// forward
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse_w: array<f32>;
// backward
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> drow: array<f32>;
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
// rowdot
@group(0) @binding(1) var<storage, read> rd_out: array<f32>;
@group(0) @binding(2) var<storage, read> rd_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> rd_drow: array<f32>;

var<workgroup> qs: array<vec4f, QT>; // q tile (scaled); in bwd_dkdv the q tile of the step
var<workgroup> os: array<vec4f, QT>; // dout tile (backward)
var<workgroup> ks: array<vec4f, KT>; // k tile; in forward / bwd_dq reused for v
var<workgroup> vs: array<vec4f, KT>; // v tile (bwd_dkdv)
// Probability tiles are stored key-major in forward / bwd_dq ([BC][BR]) and query-major in
// bwd_dkdv ([BR][BC]), so that the threads of a warp, which share the inner loop's index
// and differ in their tile row, read consecutive words.
var<workgroup> ps: array<f32, PT>; // P (forward, bwd_dkdv), dS (bwd_dq)
var<workgroup> ds: array<f32, PT>; // dS (bwd_dkdv)
var<workgroup> red_max: array<f32, RT>;
var<workgroup> red_sum: array<f32, RT>;
var<workgroup> row_lse: array<f32, BR>; // bwd_dkdv: lse·log2(e) of the step's query rows
var<workgroup> row_d: array<f32, BR>; // bwd_dkdv: drow of the step's query rows

// Four consecutive elements d = 4c .. 4c + 3 of a row starting at `base`, zero past D.
fn q4(base: u32, c: u32) -> vec4f {
  let d = 4u * c;
  var r = vec4f(0.0);
  if (d < p.D) { r.x = q[base + d]; }
  if (d + 1u < p.D) { r.y = q[base + d + 1u]; }
  if (d + 2u < p.D) { r.z = q[base + d + 2u]; }
  if (d + 3u < p.D) { r.w = q[base + d + 3u]; }
  return r;
}
fn k4(base: u32, c: u32) -> vec4f {
  let d = 4u * c;
  var r = vec4f(0.0);
  if (d < p.D) { r.x = k[base + d]; }
  if (d + 1u < p.D) { r.y = k[base + d + 1u]; }
  if (d + 2u < p.D) { r.z = k[base + d + 2u]; }
  if (d + 3u < p.D) { r.w = k[base + d + 3u]; }
  return r;
}
fn v4(base: u32, c: u32) -> vec4f {
  let d = 4u * c;
  var r = vec4f(0.0);
  if (d < p.D) { r.x = v[base + d]; }
  if (d + 1u < p.D) { r.y = v[base + d + 1u]; }
  if (d + 2u < p.D) { r.z = v[base + d + 2u]; }
  if (d + 3u < p.D) { r.w = v[base + d + 3u]; }
  return r;
}
fn o4(base: u32, c: u32) -> vec4f {
  let d = 4u * c;
  var r = vec4f(0.0);
  if (d < p.D) { r.x = dout[base + d]; }
  if (d + 1u < p.D) { r.y = dout[base + d + 1u]; }
  if (d + 2u < p.D) { r.z = dout[base + d + 2u]; }
  if (d + 3u < p.D) { r.w = dout[base + d + 3u]; }
  return r;
}

fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.H + h) * p.D;
}
fn kv_row(b: u32, t: u32, hk: u32) -> u32 {
  return ((b * p.T + t) * p.HKV + hk) * p.D;
}

// ---------------------------------------------------------------------------------------
// forward

fn load_q_tile(b: u32, h: u32, t0: u32, lid: u32, nthreads: u32, mul: f32) {
  for (var i = lid; i < BR * DK4; i += nthreads) {
    let row = i / DK4;
    let c = i % DK4;
    let t = t0 + row;
    var x = vec4f(0.0);
    if (t < p.T) { x = q4(q_row(b, t, h), c) * mul; }
    qs[row * DS + c] = x;
  }
}

fn load_k_tile(b: u32, hk: u32, t0: u32, lid: u32, nthreads: u32) {
  for (var i = lid; i < BC * DK4; i += nthreads) {
    let row = i / DK4;
    let c = i % DK4;
    let t = t0 + row;
    var x = vec4f(0.0);
    if (t < p.T) { x = k4(kv_row(b, t, hk), c); }
    ks[row * DS + c] = x;
  }
}

// Into ks (forward and bwd_dq reuse the k tile's memory for v).
fn load_v_into_ks(b: u32, hk: u32, t0: u32, lid: u32, nthreads: u32) {
  for (var i = lid; i < BC * DK4; i += nthreads) {
    let row = i / DK4;
    let c = i % DK4;
    let t = t0 + row;
    var x = vec4f(0.0);
    if (t < p.T) { x = v4(kv_row(b, t, hk), c); }
    ks[row * DS + c] = x;
  }
}

@compute @workgroup_size(BR * TPR)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  // The longest query blocks (most key blocks) are dispatched first.
  let qb = p.nblocks - 1u - wg % p.nblocks;
  let bh = wg / p.nblocks;
  if (bh >= p.B * p.H) { return; }
  let b = bh / p.H;
  let h = bh % p.H;
  let hk = h / (p.H / p.HKV);
  let nthreads = BR * TPR;
  let r = lid / TPR;
  let tx = lid % TPR;
  let q0 = qb * BR;
  let tq = q0 + r;
  let spt = BC / TPR;

  load_q_tile(b, h, q0, lid, nthreads, p.scale * LOG2E);

  var m = NEG;
  var l = 0.0;
  var acc: array<vec4f, MAX_DPT4>;
  for (var i = 0u; i < MAX_DPT4; i++) { acc[i] = vec4f(0.0); }
  var sc: array<f32, MAX_SPT>;

  let kend = min(p.T, q0 + BR);
  let ntiles = (kend + BC - 1u) / BC;
  for (var kb = 0u; kb < ntiles; kb++) {
    let k0 = kb * BC;
    workgroupBarrier(); // the last tile's readers are done with ks and ps
    load_k_tile(b, hk, k0, lid, nthreads);
    workgroupBarrier();

    var pmax = NEG;
    for (var s = 0u; s < spt; s++) {
      let j = tx + TPR * s;
      let key = k0 + j;
      var x = 0.0;
      for (var c = 0u; c < DK4; c++) {
        x += dot(qs[r * DS + c], ks[j * DS + c]);
      }
      if (key > tq || key >= p.T) { x = NEG; }
      sc[s] = x;
      pmax = max(pmax, x);
    }
    red_max[lid] = pmax;
    workgroupBarrier(); // partial maxima written; ks (k) no longer read

    var mt = m;
    for (var i = 0u; i < TPR; i++) { mt = max(mt, red_max[r * TPR + i]); }
    var psum = 0.0;
    for (var s = 0u; s < spt; s++) {
      let e = exp2(sc[s] - mt);
      ps[(tx + TPR * s) * BR + r] = e;
      psum += e;
    }
    red_sum[lid] = psum;
    load_v_into_ks(b, hk, k0, lid, nthreads);
    workgroupBarrier();

    let alpha = exp2(m - mt);
    var lt = 0.0;
    for (var i = 0u; i < TPR; i++) { lt += red_sum[r * TPR + i]; }
    l = l * alpha + lt;
    m = mt;
    for (var i = 0u; i < DPT4; i++) { acc[i] *= alpha; }
    for (var j = 0u; j < BC; j++) {
      let pj = ps[j * BR + r];
      for (var i = 0u; i < DPT4; i++) {
        let c = min(tx + TPR * i, DK4 - 1u); // columns past DK4 compute a duplicate, unwritten
        acc[i] += pj * ks[j * DS + c];
      }
    }
  }

  if (tq < p.T) {
    let inv = 1.0 / l;
    let base = q_row(b, tq, h);
    for (var i = 0u; i < DPT4; i++) {
      let c = tx + TPR * i;
      if (c < DK4) {
        let y = acc[i] * inv;
        let d = 4u * c;
        if (d < p.D) { out[base + d] = y.x; }
        if (d + 1u < p.D) { out[base + d + 1u] = y.y; }
        if (d + 2u < p.D) { out[base + d + 2u] = y.z; }
        if (d + 3u < p.D) { out[base + d + 3u] = y.w; }
      }
    }
    if (tx == 0u) {
      lse_w[(b * p.H + h) * p.T + tq] = (m + log2(l)) * LN2;
    }
  }
}

// ---------------------------------------------------------------------------------------
// backward: drow = rowsum(dout ∘ out)

@compute @workgroup_size(ROW_WG)
fn rowdot(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = (wid.x + wid.y * nwg.x) * ROW_WG + lid; // row (b, t, h)
  if (n >= p.nrows) { return; }
  let base = n * p.D;
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += rd_dout[base + d] * rd_out[base + d]; }
  let h = n % p.H;
  let bt = n / p.H;
  let t = bt % p.T;
  let b = bt / p.T;
  rd_drow[(b * p.H + h) * p.T + t] = s;
}

// ---------------------------------------------------------------------------------------
// backward: dq

fn load_o_tile(b: u32, h: u32, t0: u32, lid: u32, nthreads: u32) {
  for (var i = lid; i < BR * DK4; i += nthreads) {
    let row = i / DK4;
    let c = i % DK4;
    let t = t0 + row;
    var x = vec4f(0.0);
    if (t < p.T) { x = o4(q_row(b, t, h), c); }
    os[row * DS + c] = x;
  }
}

@compute @workgroup_size(BR * TPR)
fn bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let qb = p.nblocks - 1u - wg % p.nblocks;
  let bh = wg / p.nblocks;
  if (bh >= p.B * p.H) { return; }
  let b = bh / p.H;
  let h = bh % p.H;
  let hk = h / (p.H / p.HKV);
  let nthreads = BR * TPR;
  let r = lid / TPR;
  let tx = lid % TPR;
  let q0 = qb * BR;
  let tq = q0 + r;
  let spt = BC / TPR;

  load_q_tile(b, h, q0, lid, nthreads, p.scale * LOG2E);
  load_o_tile(b, h, q0, lid, nthreads);
  var lse2 = 0.0;
  var di = 0.0;
  if (tq < p.T) {
    lse2 = lse[(b * p.H + h) * p.T + tq] * LOG2E;
    di = drow[(b * p.H + h) * p.T + tq];
  }

  var acc: array<vec4f, MAX_DPT4>;
  for (var i = 0u; i < MAX_DPT4; i++) { acc[i] = vec4f(0.0); }
  var dp: array<f32, MAX_SPT>;

  let kend = min(p.T, q0 + BR);
  let ntiles = (kend + BC - 1u) / BC;
  for (var kb = 0u; kb < ntiles; kb++) {
    let k0 = kb * BC;
    workgroupBarrier();
    load_v_into_ks(b, hk, k0, lid, nthreads);
    workgroupBarrier();
    for (var s = 0u; s < spt; s++) {
      let j = tx + TPR * s;
      var x = 0.0;
      for (var c = 0u; c < DK4; c++) { x += dot(os[r * DS + c], ks[j * DS + c]); }
      dp[s] = x;
    }
    workgroupBarrier();
    load_k_tile(b, hk, k0, lid, nthreads);
    workgroupBarrier();
    for (var s = 0u; s < spt; s++) {
      let j = tx + TPR * s;
      let key = k0 + j;
      var x = 0.0;
      for (var c = 0u; c < DK4; c++) { x += dot(qs[r * DS + c], ks[j * DS + c]); }
      var pr = 0.0;
      if (key <= tq && tq < p.T) { pr = exp2(x - lse2); }
      ps[j * BR + r] = pr * (dp[s] - di);
    }
    workgroupBarrier();
    for (var j = 0u; j < BC; j++) {
      let w = ps[j * BR + r];
      for (var i = 0u; i < DPT4; i++) {
        let c = min(tx + TPR * i, DK4 - 1u);
        acc[i] += w * ks[j * DS + c];
      }
    }
  }

  if (tq < p.T) {
    let base = q_row(b, tq, h);
    for (var i = 0u; i < DPT4; i++) {
      let c = tx + TPR * i;
      if (c < DK4) {
        let y = acc[i] * p.scale;
        let d = 4u * c;
        if (d < p.D) { dq[base + d] = y.x; }
        if (d + 1u < p.D) { dq[base + d + 1u] = y.y; }
        if (d + 2u < p.D) { dq[base + d + 2u] = y.z; }
        if (d + 3u < p.D) { dq[base + d + 3u] = y.w; }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// backward: dk and dv. Here a tile row is a key: BC rows × TPR threads.

@compute @workgroup_size(BC * TPR)
fn bwd_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let kb = wg % p.nblocks; // the first key blocks see the most queries and go first
  let bhk = wg / p.nblocks;
  if (bhk >= p.B * p.HKV) { return; }
  let b = bhk / p.HKV;
  let hk = bhk % p.HKV;
  let group = p.H / p.HKV;
  let nthreads = BC * TPR;
  let j = lid / TPR;
  let tx = lid % TPR;
  let k0 = kb * BC;
  let key = k0 + j;
  let c2 = p.scale * LOG2E;

  for (var i = lid; i < BC * DK4; i += nthreads) {
    let row = i / DK4;
    let c = i % DK4;
    let t = k0 + row;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (t < p.T) {
      x = k4(kv_row(b, t, hk), c);
      y = v4(kv_row(b, t, hk), c);
    }
    ks[row * DS + c] = x;
    vs[row * DS + c] = y;
  }

  var adk: array<vec4f, MAX_DPT4>;
  var adv: array<vec4f, MAX_DPT4>;
  for (var i = 0u; i < MAX_DPT4; i++) {
    adk[i] = vec4f(0.0);
    adv[i] = vec4f(0.0);
  }

  let qb0 = k0 / BR; // first query block holding a query ≥ k0
  let nqb = (p.T + BR - 1u) / BR;
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    for (var qb = qb0; qb < nqb; qb++) {
      let q0 = qb * BR;
      workgroupBarrier(); // the last step's readers are done with qs, os, ps, ds, row_*
      load_q_tile(b, h, q0, lid, nthreads, c2);
      load_o_tile(b, h, q0, lid, nthreads);
      for (var i = lid; i < BR; i += nthreads) {
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
      workgroupBarrier();

      for (var i = tx; i < BR; i += TPR) {
        let tq = q0 + i;
        var x = 0.0;
        var y = 0.0;
        for (var c = 0u; c < DK4; c++) {
          x += dot(qs[i * DS + c], ks[j * DS + c]);
          y += dot(os[i * DS + c], vs[j * DS + c]);
        }
        var pr = 0.0;
        if (key <= tq && tq < p.T) { pr = exp2(x - row_lse[i]); }
        ps[i * BC + j] = pr;
        ds[i * BC + j] = pr * (y - row_d[i]);
      }
      workgroupBarrier();

      for (var i = 0u; i < BR; i++) {
        let pr = ps[i * BC + j];
        let w = ds[i * BC + j];
        for (var u = 0u; u < DPT4; u++) {
          let c = min(tx + TPR * u, DK4 - 1u);
          adv[u] += pr * os[i * DS + c];
          adk[u] += w * qs[i * DS + c];
        }
      }
    }
  }

  if (key < p.T) {
    let base = kv_row(b, key, hk);
    for (var u = 0u; u < DPT4; u++) {
      let c = tx + TPR * u;
      if (c < DK4) {
        // qs held q·scale·log2(e): dk = scale·Σ dS q = ln2 · Σ dS (q·scale·log2 e).
        let x = adk[u] * LN2;
        let y = adv[u];
        let d = 4u * c;
        if (d < p.D) { dk[base + d] = x.x; dv[base + d] = y.x; }
        if (d + 1u < p.D) { dk[base + d + 1u] = x.y; dv[base + d + 1u] = y.y; }
        if (d + 2u < p.D) { dk[base + d + 2u] = x.z; dv[base + d + 2u] = y.z; }
        if (d + 3u < p.D) { dk[base + d + 3u] = x.w; dv[base + d + 3u] = y.w; }
      }
    }
  }
}
