// Token embedding: out[n, :] = table[tokens[n], :] over out [N, C], table [V, C].
//
// The backward is a scatter-add with repeated tokens and WGSL has no float atomics, so the
// CPU (which has the token ids from the data loader) counting-sorts positions by token and
// uploads one i32 index buffer laid out as
//   [ order (N positions, grouped by token, ascending position within a token)
//   | rowStart (distinct + 1 offsets into order)
//   | rowToken (distinct token ids) ]
// embedding_backward runs one workgroup per distinct token; its threads stride over C and
// each sums that token's gradient rows in `order` order. Each dtable element is written by
// exactly one thread, in a fixed order: no lost updates, the same bits every run.
// embedding_zero clears dtable first unless the caller accumulates.

struct Params {
  N: u32,
  V: u32,
  C: u32,
  distinct: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// embedding_forward
@group(0) @binding(1) var<storage, read> f_tokens: array<i32>;
@group(0) @binding(2) var<storage, read> f_table: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_out: array<f32>;

// embedding_zero
@group(0) @binding(1) var<storage, read_write> z_dtable: array<f32>;

// embedding_backward
@group(0) @binding(1) var<storage, read> b_index: array<i32>;
@group(0) @binding(2) var<storage, read> b_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dtable: array<f32>;

const WG: u32 = 256u;

fn linear_wg(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn embedding_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = linear_wg(wid, nwg) * WG + lid;
  if (i >= p.N * p.C) {
    return;
  }
  let n = i / p.C;
  let c = i % p.C;
  let tok = f_tokens[n];
  // Ids are validated on upload (uploadTokens); an id out of range still reads nothing.
  if (tok < 0 || u32(tok) >= p.V) {
    f_out[i] = 0.0;
  } else {
    f_out[i] = f_table[u32(tok) * p.C + c];
  }
}

@compute @workgroup_size(WG)
fn embedding_zero(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linear_wg(wid, nwg) * WG + lid;
  if (i < p.V * p.C) {
    z_dtable[i] = 0.0;
  }
}

@compute @workgroup_size(WG)
fn embedding_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let k = linear_wg(wid, nwg);
  if (k >= p.distinct) {
    return;
  }
  let starts = p.N;
  let tokens = p.N + p.distinct + 1u;
  let s0 = u32(b_index[starts + k]);
  let s1 = u32(b_index[starts + k + 1u]);
  let row = u32(b_index[tokens + k]) * p.C;
  for (var c = lid; c < p.C; c += WG) {
    var acc = 0.0;
    for (var j = s0; j < s1; j++) {
      acc += b_dout[u32(b_index[j]) * p.C + c];
    }
    if (p.accumulate != 0u) {
      b_dtable[row + c] = b_dtable[row + c] + acc;
    } else {
      b_dtable[row + c] = acc;
    }
  }
}
