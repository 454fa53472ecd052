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

// reduce_segments: the reductions of several split-K matmuls in one dispatch (their partial
// slices in one scratch buffer, their C in one buffer). Segment i is three vec4s of `segs`:
//   [partials offset, C offset, M·N, first workgroup], [batch, splits, strideC, 0],
//   [alpha, beta, 0, 0] (f32 bits). Each element's sum is reduce's: the same order, the same bits.
struct SegmentParams {
  count: u32,
  workgroups: u32,
}

@group(0) @binding(0) var<uniform> q: SegmentParams;
@group(0) @binding(1) var<storage, read> segs: array<vec4u>;
@group(0) @binding(2) var<storage, read> s_partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> s_c: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn reduce_segments(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) l: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= q.workgroups) {
    return;
  }
  // the segment whose workgroups include g (segments are few: a linear walk)
  var i = 0u;
  loop {
    if (i + 1u >= q.count || segs[3u * (i + 1u)].w > g) {
      break;
    }
    i++;
  }
  let a = segs[3u * i];
  let b = segs[3u * i + 1u];
  let f = bitcast<vec4f>(segs[3u * i + 2u]);
  let size = a.z;
  let e = (g - a.w) * WORKGROUP + l;
  if (e >= size * b.x) {
    return;
  }
  let z = e / size;
  let rc = e % size;
  var sum = 0.0;
  for (var s = 0u; s < b.y; s++) {
    sum += s_partials[a.x + (z * b.y + s) * size + rc];
  }
  let at = a.y + z * b.z + rc;
  if (f.y == 0.0) {
    s_c[at] = f.x * sum;
  } else {
    s_c[at] = f.x * sum + f.y * s_c[at];
  }
}
