// Softmax cross-entropy over logits [N, V] with i32 targets [N] (−1, or any id outside
// [0, V), is ignored: loss 0, gradient 0, not counted in the mean).
//
// ce_forward    TPR threads per row (WG / TPR rows per workgroup). Each thread keeps an online (max, sum of exp) over its
//               strided share of V, in one read of the row; the pairs are merged by a
//               shared-memory tree. loss = max + log(sum) − logit[target].
// ce_mean       one workgroup: Σ loss and the count of valid rows (strided, then tree),
//               lossMean[0] = Σ / count (0 when no row is valid). Fixed order: deterministic.
// ce_backward   the same row layout and (max, sum) pass, then
//               dlogits = (softmax − onehot(target)) · scale.
// ce_backward_inplace  the same, overwriting the logits with their gradient (saves an N×V
//               buffer): each element is read and then written by the same thread, after the
//               barrier that ends the first pass.
// ce_chunk      the fused head's row chunk: logits [rows, stride] (stride ≥ V: the padded
//               vocabulary, columns ≥ V masked out of the softmax) for rows rowOffset … of
//               the targets and losses; writes the losses and, when c.grad = 1, overwrites the
//               chunk with its gradient (0 in the padding columns), as ce_backward_inplace.

struct Params {
  N: u32,
  V: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ce_forward
@group(0) @binding(1) var<storage, read> f_logits: array<f32>;
@group(0) @binding(2) var<storage, read> f_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> f_losses: array<f32>;

// ce_mean
@group(0) @binding(1) var<storage, read> m_losses: array<f32>;
@group(0) @binding(2) var<storage, read> m_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> m_mean: array<f32>;

// ce_backward
@group(0) @binding(1) var<storage, read> b_logits: array<f32>;
@group(0) @binding(2) var<storage, read> b_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> b_dlogits: array<f32>;

// ce_backward_inplace
@group(0) @binding(1) var<storage, read_write> i_logits: array<f32>;
@group(0) @binding(2) var<storage, read> i_targets: array<i32>;

const WG: u32 = 256u;
const NEG_MAX: f32 = -0x1.fffffep+127f; // lowest finite f32

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;
var<workgroup> red_n: array<u32, WG>;

struct MaxSum {
  m: f32,
  s: f32,
}

fn add_value(a: MaxSum, x: f32) -> MaxSum {
  if (x > a.m) {
    return MaxSum(x, a.s * exp(a.m - x) + 1.0);
  }
  return MaxSum(a.m, a.s + exp(x - a.m));
}

// Threads per row in the row kernels: a power of two ≤ WG chosen on the host from V (about
// 8 logits per thread), so a workgroup holds WG / TPR rows and small vocabularies do not
// leave most threads idle through every barrier.
override TPR: u32 = 256u;

// Merges the (max, sum) of the TPR threads of this thread's row with a fixed tree; every
// thread of the row gets the result. Every thread of the workgroup must call it (barriers).
fn row_max_sum(lid: u32, a: MaxSum) -> MaxSum {
  let lane = lid % TPR;
  red_m[lid] = a.m;
  red_s[lid] = a.s;
  workgroupBarrier();
  for (var k = TPR / 2u; k > 0u; k = k >> 1u) {
    if (lane < k) {
      let m1 = red_m[lid];
      let m2 = red_m[lid + k];
      let m = max(m1, m2);
      red_s[lid] = red_s[lid] * exp(m1 - m) + red_s[lid + k] * exp(m2 - m);
      red_m[lid] = m;
    }
    workgroupBarrier();
  }
  let r = MaxSum(red_m[lid - lane], red_s[lid - lane]);
  workgroupBarrier();
  return r;
}

fn linear_wg(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

fn valid(t: i32) -> bool {
  return t >= 0 && u32(t) < p.V;
}

@compute @workgroup_size(WG)
fn ce_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let row = linear_wg(wid, nwg) * (WG / TPR) + lid / TPR;
  let lane = lid % TPR;
  let live = row < p.N; // rows past N still take part in the barriers
  let base = row * p.V;
  var a = MaxSum(NEG_MAX, 0.0);
  if (live) {
    for (var v = lane; v < p.V; v += TPR) {
      a = add_value(a, f_logits[base + v]);
    }
  }
  let r = row_max_sum(lid, a);
  if (!live) {
    return;
  }
  if (lane == 0u) {
    let t = f_targets[row];
    if (valid(t)) {
      f_losses[row] = r.m + log(r.s) - f_logits[base + u32(t)];
    } else {
      f_losses[row] = 0.0;
    }
  }
}

@compute @workgroup_size(WG)
fn ce_mean(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var n = 0u;
  for (var i = lid; i < p.N; i += WG) {
    if (valid(m_targets[i])) {
      s += m_losses[i];
      n += 1u;
    }
  }
  red_s[lid] = s;
  red_n[lid] = n;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      red_s[lid] = red_s[lid] + red_s[lid + k];
      red_n[lid] = red_n[lid] + red_n[lid + k];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    m_mean[0] = select(0.0, red_s[0] / f32(red_n[0]), red_n[0] > 0u);
  }
}

@compute @workgroup_size(WG)
fn ce_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let row = linear_wg(wid, nwg) * (WG / TPR) + lid / TPR;
  let lane = lid % TPR;
  let live = row < p.N; // rows past N still take part in the barriers
  let base = row * p.V;
  var a = MaxSum(NEG_MAX, 0.0);
  if (live) {
    for (var v = lane; v < p.V; v += TPR) {
      a = add_value(a, b_logits[base + v]);
    }
  }
  let r = row_max_sum(lid, a);
  if (!live) {
    return;
  }
  let t = b_targets[row];
  let ok = valid(t);
  let k = p.scale / r.s;
  for (var v = lane; v < p.V; v += TPR) {
    var g = 0.0;
    if (ok) {
      g = exp(b_logits[base + v] - r.m) * k - select(0.0, p.scale, u32(t) == v);
    }
    b_dlogits[base + v] = g;
  }
}

@compute @workgroup_size(WG)
fn ce_backward_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) lid: u32) {
  let row = linear_wg(wid, nwg) * (WG / TPR) + lid / TPR;
  let lane = lid % TPR;
  let live = row < p.N; // rows past N still take part in the barriers
  let base = row * p.V;
  var a = MaxSum(NEG_MAX, 0.0);
  if (live) {
    for (var v = lane; v < p.V; v += TPR) {
      a = add_value(a, i_logits[base + v]);
    }
  }
  let r = row_max_sum(lid, a);
  if (!live) {
    return;
  }
  let t = i_targets[row];
  let ok = valid(t);
  let k = p.scale / r.s;
  for (var v = lane; v < p.V; v += TPR) {
    var g = 0.0;
    if (ok) {
      g = exp(i_logits[base + v] - r.m) * k - select(0.0, p.scale, u32(t) == v);
    }
    i_logits[base + v] = g;
  }
}

struct ChunkParams {
  rows: u32,
  V: u32,
  stride: u32,
  rowOffset: u32,
  grad: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> c: ChunkParams;
@group(0) @binding(1) var<storage, read_write> c_logits: array<f32>;
@group(0) @binding(2) var<storage, read> c_targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> c_losses: array<f32>;

@compute @workgroup_size(WG)
fn ce_chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let row = linear_wg(wid, nwg) * (WG / TPR) + lid / TPR;
  let lane = lid % TPR;
  let live = row < c.rows; // rows past the chunk still take part in the barriers
  let base = row * c.stride;
  var a = MaxSum(NEG_MAX, 0.0);
  var t = -1;
  var target_logit = 0.0;
  if (live) {
    for (var v = lane; v < c.V; v += TPR) {
      a = add_value(a, c_logits[base + v]);
    }
    t = c_targets[c.rowOffset + row];
    if (lane == 0u && t >= 0 && u32(t) < c.V) {
      target_logit = c_logits[base + u32(t)]; // read before the barriers in row_max_sum end the reads
    }
  }
  let r = row_max_sum(lid, a);
  if (!live) {
    return;
  }
  let ok = t >= 0 && u32(t) < c.V;
  if (lane == 0u) {
    c_losses[c.rowOffset + row] = select(0.0, r.m + log(r.s) - target_logit, ok);
  }
  if (c.grad == 0u) {
    return;
  }
  let k = c.scale / r.s;
  for (var v = lane; v < c.stride; v += TPR) {
    var g = 0.0;
    if (ok && v < c.V) {
      g = exp(c_logits[base + v] - r.m) * k - select(0.0, c.scale, u32(t) == v);
    }
    c_logits[base + v] = g;
  }
}
