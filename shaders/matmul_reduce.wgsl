// Split-K reduction for matmul_core.wgsl: C_z = alpha · Σ_s P[z·splits + s] + beta · C_z,
// the partial slices P (dense M×N each) added in split order s = 0, 1, … so the result is
// the same bit for bit on every run (no atomics, no order left to the scheduler).

struct Params {
  M: u32,
  N: u32,
  batch: u32,
  splits: u32,
  strideC: u32,
  alpha: f32,
  beta: f32,
}

const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) l: u32) {
  let e = (wid.x + wid.y * nwg.x) * WORKGROUP + l;
  let size = p.M * p.N;
  if (e >= size * p.batch) {
    return;
  }
  let z = e / size;
  let rc = e % size;
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    sum += partials[(z * p.splits + s) * size + rc];
  }
  let at = z * p.strideC + rc;
  if (p.beta == 0.0) {
    c[at] = p.alpha * sum;
  } else {
    c[at] = p.alpha * sum + p.beta * c[at];
  }
}
