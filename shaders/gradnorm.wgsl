// Global gradient norm over several tensors, deterministic (no atomics):
// gn_partial   for one tensor: workgroup w sums the squares of elements
//              [w·CHUNK, (w+1)·CHUNK) (each thread ITEMS of them, stride WG, so reads
//              coalesce), tree-reduces in shared memory, and writes partials[offset + w].
//              Called once per tensor, each with its own offset into one scratch buffer.
// gn_final     one workgroup sums all partials (strided, then the same tree) and writes
//              out = [norm, min(1, maxNorm / (norm + 1e-6))].

struct Params {
  n: u32,
  offset: u32,
  count: u32,
  maxNorm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

// gn_partial
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

// gn_final
@group(0) @binding(1) var<storage, read> f_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
// Elements per thread in gn_partial (keep CHUNK = WG·ITEMS in step with gradnorm.ts).
const ITEMS: u32 = 16u;
const CHUNK: u32 = WG * ITEMS;

var<workgroup> red: array<f32, WG>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn gn_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  if (w * CHUNK >= p.n) {
    return;
  }
  let start = w * CHUNK;
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = start + k * WG + lid;
    if (i < p.n) {
      let x = g[i];
      s += x * x;
    }
  }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) {
    partials[p.offset + w] = total;
  }
}

@compute @workgroup_size(WG)
fn gn_final(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.count; i += WG) {
    s += f_partials[i];
  }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) {
    let norm = sqrt(total);
    out[0] = norm;
    out[1] = min(1.0, p.maxNorm / (norm + 1e-6));
  }
}
