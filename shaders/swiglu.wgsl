// SwiGLU over [N, F]: out = silu(gate) · up, silu(g) = g·σ(g).
// Backward: dgate = dout · up · σ(g)·(1 + g·(1 − σ(g))), dup = dout · silu(g).
// One thread per element. σ is evaluated from exp(−|g|) so no exp overflows.

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// swiglu_forward
@group(0) @binding(1) var<storage, read> f_gate: array<f32>;
@group(0) @binding(2) var<storage, read> f_up: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;

// swiglu_backward
@group(0) @binding(1) var<storage, read> b_gate: array<f32>;
@group(0) @binding(2) var<storage, read> b_up: array<f32>;
@group(0) @binding(3) var<storage, read> b_dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dup: array<f32>;

const WG: u32 = 256u;

fn sigmoid(g: f32) -> f32 {
  let e = exp(-abs(g));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, g >= 0.0);
}

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) {
    return;
  }
  let g = f_gate[i];
  f_out[i] = g * sigmoid(g) * f_up[i];
}

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) {
    return;
  }
  let g = b_gate[i];
  let s = sigmoid(g);
  let d = b_dout[i];
  b_dgate[i] = d * b_up[i] * s * (1.0 + g * (1.0 - s));
  b_dup[i] = d * g * s;
}

// ---- packed gate|up (one fused projection): gu [N, 2F], rows [gate (F) | up (F)] ----
// swiglu_packed_forward: m [N, F] = silu(gate)·up.
// swiglu_packed_backward: dgu [N, 2F] = [dgate | dup] from dm [N, F], and m recomputed into
// m (the down projection's weight gradient needs it: one pass instead of a second forward).

struct PackedParams {
  n: u32, // N·F
  F: u32,
}

@group(0) @binding(0) var<uniform> pp: PackedParams;
@group(0) @binding(1) var<storage, read> pf_gu: array<f32>;
@group(0) @binding(2) var<storage, read_write> pf_m: array<f32>;

@group(0) @binding(1) var<storage, read> pb_gu: array<f32>;
@group(0) @binding(2) var<storage, read> pb_dm: array<f32>;
@group(0) @binding(3) var<storage, read_write> pb_dgu: array<f32>;
@group(0) @binding(4) var<storage, read_write> pb_m: array<f32>;

// Index of row i / F's gate element f in the packed row (the up element is F further).
fn packed_gate(i: u32) -> u32 {
  return (i / pp.F) * 2u * pp.F + i % pp.F;
}

@compute @workgroup_size(WG)
fn swiglu_packed_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= pp.n) {
    return;
  }
  let j = packed_gate(i);
  let g = pf_gu[j];
  pf_m[i] = g * sigmoid(g) * pf_gu[j + pp.F];
}

@compute @workgroup_size(WG)
fn swiglu_packed_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                          @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= pp.n) {
    return;
  }
  let j = packed_gate(i);
  let g = pb_gu[j];
  let u = pb_gu[j + pp.F];
  let s = sigmoid(g);
  let d = pb_dm[i];
  pb_dgu[j] = d * u * s * (1.0 + g * (1.0 - s));
  pb_dgu[j + pp.F] = d * g * s;
  pb_m[i] = g * s * u;
}
