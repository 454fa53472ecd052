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
