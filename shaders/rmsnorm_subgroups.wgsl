// RMSNorm forward with subgroup sums (issue 20): the same y and rstd as rmsnorm.wgsl's
// rmsnorm_forward, for devices granted the `subgroups` feature. A separate module because
// the `enable` directive fails to compile on a device without the feature.
//
// rmsnorm_forward_sg    one row per workgroup: threads stride over C summing x², then
//                       subgroupAdd per subgroup (any subgroup size), the subgroup totals
//                       through workgroup memory, and thread 0 adds them in subgroup order.
//
// Combining subgroups by index lid / subgroup_size assumes each subgroup holds consecutive
// local invocation indices, aligned to its size (what 1-D workgroups get in practice, but
// WGSL does not promise it). Every workgroup checks that with subgroupMin; if any subgroup
// breaks it, thread 0 sums the per-thread values in lid order instead, so the answer is
// right on any layout. Repeatable on one device; subgroupAdd's order is the hardware's.

enable subgroups;

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  flags: u32,
  rowBlocks: u32,
  colBlocks: u32,
  count: u32,
  dwStride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_rstd: array<f32>;

const WG: u32 = 256u;
// WebGPU subgroup sizes are powers of two from 4 to 128, so at most WG / 4 subgroups.
const MAX_SUBGROUPS: u32 = WG / 4u;

// Tests set this to run the lid-order fallback on a device whose subgroups are blocks.
override LID_ORDER: bool = false;

var<workgroup> per_thread: array<f32, WG>; // the fallback when subgroups are not blocks
var<workgroup> per_subgroup: array<f32, MAX_SUBGROUPS>;
var<workgroup> scattered: atomic<u32>;
var<workgroup> row_total: f32;

fn linear_wg(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn rmsnorm_forward_sg(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32,
                      @builtin(subgroup_size) sg_size: u32,
                      @builtin(subgroup_invocation_id) sg_lane: u32) {
  let row = linear_wg(wid, nwg);
  if (row >= p.N) {
    return; // uniform: the whole workgroup leaves (grid folding adds spare workgroups)
  }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = f_x[base + c];
    ss += v * v;
  }
  if (lid == 0u) {
    atomicStore(&scattered, 0u);
  }
  workgroupBarrier();
  per_thread[lid] = ss;
  let sg_total = subgroupAdd(ss);
  let first = lid - sg_lane;
  if (subgroupMin(lid) != first || first % sg_size != 0u) {
    atomicOr(&scattered, 1u);
  }
  if (sg_lane == 0u) {
    per_subgroup[first / sg_size] = sg_total;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    if (atomicLoad(&scattered) == 0u && !LID_ORDER) {
      for (var k = 0u; k < WG / sg_size; k++) {
        total += per_subgroup[k];
      }
    } else {
      for (var k = 0u; k < WG; k++) {
        total += per_thread[k];
      }
    }
    row_total = total;
  }
  workgroupBarrier();
  let r = inverseSqrt(row_total / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    f_y[base + c] = f_x[base + c] * r * f_w[c];
  }
  if (lid == 0u) {
    f_rstd[row] = r;
  }
}
