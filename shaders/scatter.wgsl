// Sparse add: dst[indices[i]] += scale · values[i], one thread per index. The indices are
// unique (uploadIndices checks it), so no two threads touch one element and the result is
// deterministic without atomics. An index past the end is skipped (it cannot pass the upload
// check; the guard only keeps a misuse from writing out of bounds).

struct Params {
  n: u32,
  size: u32,
  scale: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> indices: array<u32>;
@group(0) @binding(2) var<storage, read> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn scatter_add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n) {
    return;
  }
  let t = indices[i];
  if (t < p.size) {
    dst[t] = dst[t] + p.scale * values[i];
  }
}
