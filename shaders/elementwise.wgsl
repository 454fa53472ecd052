// Elementwise kernels over flat f32 arrays: fill (y = value) and axpby (y = a·x + b·y).
// One thread per element; the grid may fold into y past the dispatch limit.
// Entry points use different bindings; WGSL allows that as long as no entry point uses both.

struct Params {
  n: u32,
  a: f32,
  b: f32,
  value: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> fill_y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    fill_y[i] = p.value;
  }
}

@compute @workgroup_size(WG)
fn axpby(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) {
    y[i] = p.a * x[i] + p.b * y[i];
  }
}
