// Naive causal attention: materialises the [B, H, T, T] score / probability matrices. The
// benchmark's baseline for attention.wgsl, written the straightforward way: one thread per
// matrix or output element, and one workgroup per row for the softmax reductions.
//
// Layouts as attention.wgsl: q [B, T, H, D], k and v [B, T, HKV, D], out [B, T, H, D],
// lse [B, H, T]; matrices [B, H, T, T] with entries j > i (future keys) set to 0.
//
// Forward:  scores (S = scale·q·kᵀ) → softmax (in place: S → P, and lse) → pv (out = P·v).
// Backward: probs (P = exp(S − lse)) → dprobs (dP = dout·vᵀ) → softmax_bwd (in place:
//           dS = P ∘ (dP − rowsum(P ∘ dP))) → dq, dk, dv (dk and dv sum the group's heads).

struct Params {
  B: u32,
  T: u32,
  H: u32,
  HKV: u32,
  D: u32,
  scale: f32,
  n: u32, // threads (or rows for the softmax kernels) in this dispatch
  _pad: u32,
}

const WG: u32 = 256u;
const ROW_WG: u32 = 64u;
const NEG: f32 = -1.0e30;

@group(0) @binding(0) var<uniform> p: Params;
// scores
@group(0) @binding(1) var<storage, read> sc_q: array<f32>;
@group(0) @binding(2) var<storage, read> sc_k: array<f32>;
@group(0) @binding(3) var<storage, read_write> sc_s: array<f32>;
// softmax
@group(0) @binding(1) var<storage, read_write> sm_s: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_lse: array<f32>;
// pv
@group(0) @binding(1) var<storage, read> pv_p: array<f32>;
@group(0) @binding(2) var<storage, read> pv_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> pv_out: array<f32>;
// probs
@group(0) @binding(1) var<storage, read> pr_q: array<f32>;
@group(0) @binding(2) var<storage, read> pr_k: array<f32>;
@group(0) @binding(3) var<storage, read> pr_lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> pr_p: array<f32>;
// dprobs
@group(0) @binding(1) var<storage, read> dp_dout: array<f32>;
@group(0) @binding(2) var<storage, read> dp_v: array<f32>;
@group(0) @binding(3) var<storage, read_write> dp_dp: array<f32>;
// softmax_bwd
@group(0) @binding(1) var<storage, read> sb_p: array<f32>;
@group(0) @binding(2) var<storage, read_write> sb_dp: array<f32>;
// dq: dS·k; dk: dSᵀ·q; dv: Pᵀ·dout
@group(0) @binding(1) var<storage, read> g_mat: array<f32>;
@group(0) @binding(2) var<storage, read> g_x: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_y: array<f32>;

var<workgroup> red: array<f32, ROW_WG>;

fn linear(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// Element n of a [B, H, T, T] matrix → (b, h, i, j).
fn mat_index(n: u32) -> vec4u {
  let j = n % p.T;
  let i = (n / p.T) % p.T;
  let bh = n / (p.T * p.T);
  return vec4u(bh / p.H, bh % p.H, i, j);
}

fn q_row(b: u32, t: u32, h: u32) -> u32 {
  return ((b * p.T + t) * p.H + h) * p.D;
}
fn kv_row(b: u32, t: u32, hk: u32) -> u32 {
  return ((b * p.T + t) * p.HKV + hk) * p.D;
}

@compute @workgroup_size(WG)
fn scores(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let e = mat_index(n);
  var s = 0.0;
  if (e.w <= e.z) {
    let qi = q_row(e.x, e.z, e.y);
    let kj = kv_row(e.x, e.w, e.y / (p.H / p.HKV));
    for (var d = 0u; d < p.D; d++) { s += sc_q[qi + d] * sc_k[kj + d]; }
    s *= p.scale;
  }
  sc_s[n] = s;
}

// One workgroup per row (b, h, i): max, sum of exponentials, normalise over j ≤ i.
@compute @workgroup_size(ROW_WG)
fn softmax(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.n) { return; }
  let i = row % p.T;
  let base = row * p.T;
  var m = NEG;
  for (var j = lid; j <= i; j += ROW_WG) { m = max(m, sm_s[base + j]); }
  red[lid] = m;
  workgroupBarrier();
  for (var w = ROW_WG / 2u; w > 0u; w /= 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  m = red[0];
  workgroupBarrier();
  var l = 0.0;
  for (var j = lid; j <= i; j += ROW_WG) { l += exp(sm_s[base + j] - m); }
  red[lid] = l;
  workgroupBarrier();
  for (var w = ROW_WG / 2u; w > 0u; w /= 2u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }
  l = red[0];
  let inv = 1.0 / l;
  for (var j = lid; j < p.T; j += ROW_WG) {
    var pr = 0.0;
    if (j <= i) { pr = exp(sm_s[base + j] - m) * inv; }
    sm_s[base + j] = pr;
  }
  if (lid == 0u) { sm_lse[row] = m + log(l); }
}

// out[b, i, h, d] = Σ_j P[b, h, i, j] · v[b, j, hk, d]
@compute @workgroup_size(WG)
fn pv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let d = n % p.D;
  let h = (n / p.D) % p.H;
  let bi = n / (p.D * p.H);
  let i = bi % p.T;
  let b = bi / p.T;
  let hk = h / (p.H / p.HKV);
  let prow = ((b * p.H + h) * p.T + i) * p.T;
  var s = 0.0;
  for (var j = 0u; j <= i; j++) { s += pv_p[prow + j] * pv_v[kv_row(b, j, hk) + d]; }
  pv_out[n] = s;
}

@compute @workgroup_size(WG)
fn probs(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let e = mat_index(n);
  var pr = 0.0;
  if (e.w <= e.z) {
    let qi = q_row(e.x, e.z, e.y);
    let kj = kv_row(e.x, e.w, e.y / (p.H / p.HKV));
    var s = 0.0;
    for (var d = 0u; d < p.D; d++) { s += pr_q[qi + d] * pr_k[kj + d]; }
    pr = exp(s * p.scale - pr_lse[(e.x * p.H + e.y) * p.T + e.z]);
  }
  pr_p[n] = pr;
}

@compute @workgroup_size(WG)
fn dprobs(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let e = mat_index(n);
  var s = 0.0;
  if (e.w <= e.z) {
    let oi = q_row(e.x, e.z, e.y);
    let vj = kv_row(e.x, e.w, e.y / (p.H / p.HKV));
    for (var d = 0u; d < p.D; d++) { s += dp_dout[oi + d] * dp_v[vj + d]; }
  }
  dp_dp[n] = s;
}

// One workgroup per row: dS = P ∘ (dP − Σ_j P dP), in place over dP.
@compute @workgroup_size(ROW_WG)
fn softmax_bwd(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.n) { return; }
  let base = row * p.T;
  var s = 0.0;
  for (var j = lid; j < p.T; j += ROW_WG) { s += sb_p[base + j] * sb_dp[base + j]; }
  red[lid] = s;
  workgroupBarrier();
  for (var w = ROW_WG / 2u; w > 0u; w /= 2u) {
    if (lid < w) { red[lid] += red[lid + w]; }
    workgroupBarrier();
  }
  let di = red[0];
  for (var j = lid; j < p.T; j += ROW_WG) { sb_dp[base + j] = sb_p[base + j] * (sb_dp[base + j] - di); }
}

// dq[b, i, h, d] = scale · Σ_j dS[b, h, i, j] · k[b, j, hk, d]
@compute @workgroup_size(WG)
fn dq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let d = n % p.D;
  let h = (n / p.D) % p.H;
  let bi = n / (p.D * p.H);
  let i = bi % p.T;
  let b = bi / p.T;
  let hk = h / (p.H / p.HKV);
  let row = ((b * p.H + h) * p.T + i) * p.T;
  var s = 0.0;
  for (var j = 0u; j <= i; j++) { s += g_mat[row + j] * g_x[kv_row(b, j, hk) + d]; }
  g_y[n] = s * p.scale;
}

// dk[b, j, hk, d] = scale · Σ_{h in group} Σ_i dS[b, h, i, j] · q[b, i, h, d]  (g_x = q)
// dv[b, j, hk, d] =         Σ_{h in group} Σ_i P[b, h, i, j] · dout[b, i, h, d]  (g_x = dout)
// The same loop; p.scale is 1 for dv.
@compute @workgroup_size(WG)
fn dkv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let n = linear(wid, nwg, lid);
  if (n >= p.n) { return; }
  let d = n % p.D;
  let hk = (n / p.D) % p.HKV;
  let bj = n / (p.D * p.HKV);
  let j = bj % p.T;
  let b = bj / p.T;
  let group = p.H / p.HKV;
  var s = 0.0;
  for (var g = 0u; g < group; g++) {
    let h = hk * group + g;
    let col = (b * p.H + h) * p.T * p.T + j;
    for (var i = j; i < p.T; i++) { s += g_mat[col + i * p.T] * g_x[q_row(b, i, h) + d]; }
  }
  g_y[n] = s * p.scale;
}
