// Rotary position embedding over [B, T, H, D], rotate-half pairs (d, d + D/2):
//   y[d]       = x[d]·cos − x[d + D/2]·sin
//   y[d + D/2] = x[d]·sin + x[d + D/2]·cos
// with (cos, sin) of (t + posOffset)·base^(−2d/D) read from a [T, D/2] table computed in
// float64 on the CPU (an f32 angle of a large position would lose digits before the sin).
// The backward is the same rotation by −θ: p.sign = −1 flips sin.
// One thread per pair; neighbouring threads take neighbouring d, so both halves coalesce.

struct Params {
  pairs: u32, // B·T·H·D/2
  T: u32,
  H: u32,
  half: u32, // D/2
  sign: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn rope(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.pairs) {
    return;
  }
  let d = i % p.half;
  let bth = i / p.half;
  let t = (bth / p.H) % p.T;
  let cs = table[t * p.half + d];
  let c = cs.x;
  let s = p.sign * cs.y;
  let base = bth * 2u * p.half + d;
  let x1 = x[base];
  let x2 = x[base + p.half];
  y[base] = x1 * c - x2 * s;
  y[base + p.half] = x1 * s + x2 * c;
}

// ---- packed q|k|v (one fused projection) ----
// The fused projection writes qkv [N, W] rows [q (H·D) | k (Hkv·D) | v (Hkv·D)], W = (H + 2·Hkv)·D.
// rope_qkv_forward unpacks a row into q [N, H, D] and k [N, Hkv, D] (both rotated) and
// v [N, Hkv, D] (copied); rope_qkv_backward packs dq, dk (rotated back by −θ: sign = −1 in
// the table's sin) and dv into dqkv [N, W]. One thread per pair of one head of one row.

struct PackedParams {
  pairs: u32, // N·(H + 2·Hkv)·D/2
  T: u32,
  H: u32,
  Hkv: u32,
  half: u32, // D/2
  sign: f32,
}

@group(0) @binding(0) var<uniform> pq: PackedParams;
@group(0) @binding(1) var<storage, read> pq_table: array<vec2f>;
// forward: packed → q, k, v
@group(0) @binding(2) var<storage, read> fq_qkv: array<f32>;
@group(0) @binding(3) var<storage, read_write> fq_q: array<f32>;
@group(0) @binding(4) var<storage, read_write> fq_k: array<f32>;
@group(0) @binding(5) var<storage, read_write> fq_v: array<f32>;
// backward: dq, dk, dv → packed
@group(0) @binding(2) var<storage, read> bq_dq: array<f32>;
@group(0) @binding(3) var<storage, read> bq_dk: array<f32>;
@group(0) @binding(4) var<storage, read> bq_dv: array<f32>;
@group(0) @binding(5) var<storage, read_write> bq_qkv: array<f32>;

struct PackedPair {
  valid: bool,
  // 0 q, 1 k, 2 v
  part: u32,
  // first element of the pair in the packed row and in the part's own [N, heads, D] tensor
  packed: u32,
  own: u32,
  cs: vec2f,
}

fn packed_pair(i: u32) -> PackedPair {
  var r: PackedPair;
  r.valid = i < pq.pairs;
  let heads = pq.H + 2u * pq.Hkv;
  let d = i % pq.half;
  let nh = i / pq.half;
  let h = nh % heads;
  let n = nh / heads;
  let D = 2u * pq.half;
  r.packed = (n * heads + h) * D + d;
  if (h < pq.H) {
    r.part = 0u;
    r.own = (n * pq.H + h) * D + d;
  } else if (h < pq.H + pq.Hkv) {
    r.part = 1u;
    r.own = (n * pq.Hkv + h - pq.H) * D + d;
  } else {
    r.part = 2u;
    r.own = (n * pq.Hkv + h - pq.H - pq.Hkv) * D + d;
  }
  let t = n % pq.T;
  r.cs = pq_table[t * pq.half + d];
  r.cs.y = pq.sign * r.cs.y;
  return r;
}

@compute @workgroup_size(WG)
fn rope_qkv_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let r = packed_pair((wid.x + wid.y * nwg.x) * WG + lid);
  if (!r.valid) {
    return;
  }
  let x1 = fq_qkv[r.packed];
  let x2 = fq_qkv[r.packed + pq.half];
  let c = r.cs.x;
  let s = r.cs.y;
  if (r.part == 0u) {
    fq_q[r.own] = x1 * c - x2 * s;
    fq_q[r.own + pq.half] = x1 * s + x2 * c;
  } else if (r.part == 1u) {
    fq_k[r.own] = x1 * c - x2 * s;
    fq_k[r.own + pq.half] = x1 * s + x2 * c;
  } else {
    fq_v[r.own] = x1;
    fq_v[r.own + pq.half] = x2;
  }
}

@compute @workgroup_size(WG)
fn rope_qkv_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let r = packed_pair((wid.x + wid.y * nwg.x) * WG + lid);
  if (!r.valid) {
    return;
  }
  var x1: f32;
  var x2: f32;
  if (r.part == 0u) {
    x1 = bq_dq[r.own];
    x2 = bq_dq[r.own + pq.half];
  } else if (r.part == 1u) {
    x1 = bq_dk[r.own];
    x2 = bq_dk[r.own + pq.half];
  } else {
    bq_qkv[r.packed] = bq_dv[r.own];
    bq_qkv[r.packed + pq.half] = bq_dv[r.own + pq.half];
    return;
  }
  let c = r.cs.x;
  let s = r.cs.y;
  bq_qkv[r.packed] = x1 * c - x2 * s;
  bq_qkv[r.packed + pq.half] = x1 * s + x2 * c;
}

// rope_packed: packed rows in, packed rows out: the q and k heads of src rotated (sign 1) or
// rotated back (sign −1) into dst, the v heads copied. The packed path of a software adapter
// runs attention straight off the rows (attention-qkv.ts) with RoPE as this pass either side.
@group(0) @binding(2) var<storage, read> pk_src: array<f32>;
@group(0) @binding(3) var<storage, read_write> pk_dst: array<f32>;

@compute @workgroup_size(WG)
fn rope_packed(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let r = packed_pair((wid.x + wid.y * nwg.x) * WG + lid);
  if (!r.valid) {
    return;
  }
  let x1 = pk_src[r.packed];
  let x2 = pk_src[r.packed + pq.half];
  if (r.part == 2u) {
    pk_dst[r.packed] = x1;
    pk_dst[r.packed + pq.half] = x2;
    return;
  }
  let c = r.cs.x;
  let s = r.cs.y;
  pk_dst[r.packed] = x1 * c - x2 * s;
  pk_dst[r.packed + pq.half] = x1 * s + x2 * c;
}
