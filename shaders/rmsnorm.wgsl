// RMSNorm over rows of [N, C]: y = x · rstd · w, rstd = 1 / sqrt(mean(x²) + eps).
//
// rmsnorm_forward       TPR threads per row, WG/TPR rows per workgroup; threads stride over
//                       C, then a shared-memory tree sum within the row's segment.
// rmsnorm_backward      dx and dweight stage 1 in one pass: workgroup = one block of ROWS
//                       rows. First each row's Σ dy·w·x (WG/TPR rows at a time, TPR threads a
//                       row, the same tree as the forward), kept in shared memory; then one
//                       thread per column walks the block's rows in order, writing dx and
//                       summing dy·x·rstd into partial[rowBlock, C] (coalesced).
// rmsnorm_dw_reduce     dweight, stage 2: one thread per column sums the row blocks in order;
//                       p.count norms at once (partials [count, rowBlocks, C], dweight n at
//                       element n·dwStride), so a slice reduces all its norms in one dispatch.
// No atomics anywhere: every sum has a fixed order for given (N, C), so results are
// bit-for-bit repeatable.

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  // bit 0: accumulate into dx; bit 1: accumulate into dweight.
  flags: u32,
  rowBlocks: u32,
  colBlocks: u32,
  count: u32,
  dwStride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// rmsnorm_forward
@group(0) @binding(1) var<storage, read> f_x: array<f32>;
@group(0) @binding(2) var<storage, read> f_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_rstd: array<f32>;

// rmsnorm_backward
@group(0) @binding(1) var<storage, read> b_x: array<f32>;
@group(0) @binding(2) var<storage, read> b_w: array<f32>;
@group(0) @binding(3) var<storage, read> b_rstd: array<f32>;
@group(0) @binding(4) var<storage, read> b_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_partial: array<f32>;

// rmsnorm_dw_reduce
@group(0) @binding(1) var<storage, read> r_partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> r_dw: array<f32>;

const WG: u32 = 256u;
// Rows summed by one workgroup of rmsnorm_dw_partial (keep in step with rmsnorm.ts).
const ROWS: u32 = 32u;

var<workgroup> red: array<f32, WG>;
// rmsnorm_backward: r³/C · Σ dy·w·x of each row of the block.
var<workgroup> row_k: array<f32, ROWS>;

// Threads per row in rmsnorm_forward / rmsnorm_backward_dx: a power of two ≤ WG chosen on
// the host from C (about 8 columns per thread), so a workgroup holds WG / TPR rows and
// narrow rows do not leave most of the workgroup idle.
override TPR: u32 = 256u;

// Sum of `v` over the TPR threads of this thread's row segment: the same fixed tree every
// time. Every thread of the workgroup must call it (it has barriers).
fn row_sum(lid: u32, v: f32) -> f32 {
  let lane = lid % TPR;
  red[lid] = v;
  workgroupBarrier();
  for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[lid - lane];
  workgroupBarrier();
  return total;
}

fn linear_wg(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let row = linear_wg(wid, nwg) * (WG / TPR) + lid / TPR;
  let lane = lid % TPR;
  let live = row < p.N; // rows past N still take part in the barriers
  let base = row * p.C;
  var ss = 0.0;
  if (live) {
    for (var c = lane; c < p.C; c += TPR) {
      let v = f_x[base + c];
      ss += v * v;
    }
  }
  let total = row_sum(lid, ss);
  if (!live) {
    return;
  }
  let r = inverseSqrt(total / f32(p.C) + p.eps);
  for (var c = lane; c < p.C; c += TPR) {
    f_y[base + c] = f_x[base + c] * r * f_w[c];
  }
  if (lane == 0u) {
    f_rstd[row] = r;
  }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let rb = linear_wg(wid, nwg);
  if (rb >= p.rowBlocks) {
    return; // uniform: the whole workgroup leaves
  }
  let r0 = rb * ROWS;
  let r1 = min(p.N, r0 + ROWS);
  let lane = lid % TPR;
  // pass 1: each row's Σ dy·w·x, WG / TPR rows at a time
  for (var g = 0u; g < ROWS; g += WG / TPR) {
    let row = r0 + g + lid / TPR;
    let live = row < r1; // rows past the block still take part in the barriers
    let base = row * p.C;
    var dot = 0.0;
    if (live) {
      for (var c = lane; c < p.C; c += TPR) {
        dot += b_dy[base + c] * b_w[c] * b_x[base + c];
      }
    }
    let total = row_sum(lid, dot);
    if (live && lane == 0u) {
      let r = b_rstd[row];
      row_k[g + lid / TPR] = r * r * r * total / f32(p.C);
    }
  }
  workgroupBarrier();
  // pass 2: one thread per column, the block's rows in order
  let acc = (p.flags & 1u) != 0u;
  for (var c = lid; c < p.C; c += WG) {
    let wc = b_w[c];
    var s = 0.0;
    for (var n = r0; n < r1; n++) {
      let i = n * p.C + c;
      let r = b_rstd[n];
      let dy = b_dy[i];
      let x = b_x[i];
      // dx = r·w·dy − x · r³/C · Σ dy·w·x
      let g = r * wc * dy - row_k[n - r0] * x;
      if (acc) {
        b_dx[i] = b_dx[i] + g;
      } else {
        b_dx[i] = g;
      }
      s += dy * x * r;
    }
    b_partial[rb * p.C + c] = s;
  }
}

@compute @workgroup_size(WG)
fn rmsnorm_dw_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = linear_wg(wid, nwg) * WG + lid;
  if (i >= p.count * p.C) {
    return;
  }
  let norm = i / p.C;
  let c = i % p.C;
  let base = norm * p.rowBlocks * p.C;
  var s = 0.0;
  for (var b = 0u; b < p.rowBlocks; b++) {
    s += r_partial[base + b * p.C + c];
  }
  let o = norm * p.dwStride + c;
  if ((p.flags & 2u) != 0u) {
    r_dw[o] = r_dw[o] + s;
  } else {
    r_dw[o] = s;
  }
}
