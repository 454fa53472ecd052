// Batched GEMM: for each batch index z, C_z = alpha · op(A_z) · op(B_z) + beta · C_z.
// op(A) is M×K (A stored K×M when TRANS_A), op(B) is K×N (B stored N×K when TRANS_B), C is
// M×N; all row-major, batch z at element offset z·stride (a stride of 0 broadcasts).
//
// Each workgroup computes one (4·WG)×(4·WG) tile of C with WG×WG threads, each thread a 4×4
// block held in registers. The K loop walks TK-deep slabs: every thread fetches its share of
// the A and B slabs as quads of 4 elements contiguous in memory (one vec4 load when that
// operand's inner dimension and stride are multiples of 4, else 4 bounds-checked scalar
// loads), stores them into workgroup memory k-major, and the next slab's global loads are
// issued before this slab's arithmetic so their latency is hidden. The inner product reads
// one vec4 of A and one of B per k and does 16 FMAs.
//
// All storage is viewed as vec4 arrays; scalar access is a[i >> 2][i & 3]. Buffers come from
// the pool in multiples of 256 bytes, so every element lies inside the vec4 view.
//
// The f16 variant (src/kernels/matmul.ts) is this file with `enable f16;` and S = f16:
// storage in f16, slabs and accumulators in f32.

alias S = f32;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  alpha: f32,
  beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Quads of A / B / C may be read (written) with one vec4 access: the host sets these when
// the operand's contiguous dimension and its batch stride are multiples of 4.
override A_VEC4: bool = false;
override B_VEC4: bool = false;
override C_VEC4: bool = false;
// Threads per side; the C tile is (4·WG)×(4·WG).
override WG: u32 = 16u;
// Depth of a K slab; a multiple of 4 and of WG, at most 4·WG.
override TK: u32 = 16u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<S>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<S>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<S>>;

// Slabs, k-major: As[k·WG + i] holds op(A) rows 4i..4i+3 at depth k; Bs[k·WG + j] holds op(B)
// columns 4j..4j+3 at depth k.
var<workgroup> As: array<vec4f, TK * WG>;
var<workgroup> Bs: array<vec4f, TK * WG>;

// Per thread: the 4×4 accumulator (row i in acc[i]) and the next slab's quads (TK/WG each).
var<private> acc: array<vec4f, 4>;
var<private> nextA: array<vec4f, 4>;
var<private> nextB: array<vec4f, 4>;

// A quad of A as stored (rows × cols, row-major): elements (r, col..col+3), zeros outside.
fn quadA(base: u32, r: u32, col: u32, rows: u32, cols: u32) -> vec4f {
  var v = vec4f(0.0);
  if (r >= rows) {
    return v;
  }
  let e = base + r * cols + col;
  if (A_VEC4) {
    if (col < cols) {
      v = vec4f(a[e >> 2u]);
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < cols) {
        let i = e + j;
        v[j] = f32(a[i >> 2u][i & 3u]);
      }
    }
  }
  return v;
}

fn quadB(base: u32, r: u32, col: u32, rows: u32, cols: u32) -> vec4f {
  var v = vec4f(0.0);
  if (r >= rows) {
    return v;
  }
  let e = base + r * cols + col;
  if (B_VEC4) {
    if (col < cols) {
      v = vec4f(b[e >> 2u]);
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < cols) {
        let i = e + j;
        v[j] = f32(b[i >> 2u][i & 3u]);
      }
    }
  }
  return v;
}

// Quad q of a slab. Along the contiguous dimension: TRANS_A stores A as K×M, so a quad runs
// along m (WG quads per k); otherwise along k (TK/4 quads per row m). Same for B with n.
fn fetchSlabs(l: u32, m0: u32, n0: u32, k0: u32, baseA: u32, baseB: u32) {
  for (var i = 0u; i < TK / WG; i++) {
    let q = l + i * WG * WG;
    if (TRANS_A) {
      nextA[i] = quadA(baseA, k0 + q / WG, m0 + (q % WG) * 4u, p.K, p.M);
    } else {
      nextA[i] = quadA(baseA, m0 + q / (TK / 4u), k0 + (q % (TK / 4u)) * 4u, p.M, p.K);
    }
    if (TRANS_B) {
      nextB[i] = quadB(baseB, n0 + q / (TK / 4u), k0 + (q % (TK / 4u)) * 4u, p.N, p.K);
    } else {
      nextB[i] = quadB(baseB, k0 + q / WG, n0 + (q % WG) * 4u, p.K, p.N);
    }
  }
}

fn storeSlabs(l: u32) {
  for (var i = 0u; i < TK / WG; i++) {
    let q = l + i * WG * WG;
    if (TRANS_A) {
      As[q] = nextA[i];  // k = q / WG, row quad q % WG
    } else {
      let m = q / (TK / 4u);
      let k = (q % (TK / 4u)) * 4u;
      for (var j = 0u; j < 4u; j++) {
        As[(k + j) * WG + m / 4u][m % 4u] = nextA[i][j];
      }
    }
    if (TRANS_B) {
      let n = q / (TK / 4u);
      let k = (q % (TK / 4u)) * 4u;
      for (var j = 0u; j < 4u; j++) {
        Bs[(k + j) * WG + n / 4u][n % 4u] = nextB[i][j];
      }
    } else {
      Bs[q] = nextB[i];
    }
  }
}

fn multiplySlabs(tx: u32, ty: u32) {
  for (var k = 0u; k < TK; k++) {
    let av = As[k * WG + ty];
    let bv = Bs[k * WG + tx];
    acc[0] = fma(vec4f(av.x), bv, acc[0]);
    acc[1] = fma(vec4f(av.y), bv, acc[1]);
    acc[2] = fma(vec4f(av.z), bv, acc[2]);
    acc[3] = fma(vec4f(av.w), bv, acc[3]);
  }
}

// beta == 0 overwrites C without reading it (C may hold NaN).
fn blend(v: vec4f, old: vec4f) -> vec4f {
  if (p.beta == 0.0) {
    return p.alpha * v;
  }
  return p.alpha * v + p.beta * old;
}

@compute @workgroup_size(WG, WG)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) l: u32) {
  let tx = lid.x;
  let ty = lid.y;
  let m0 = wid.y * 4u * WG;
  let n0 = wid.x * 4u * WG;
  let baseA = wid.z * p.strideA;
  let baseB = wid.z * p.strideB;
  let baseC = wid.z * p.strideC;
  for (var i = 0u; i < 4u; i++) {
    acc[i] = vec4f(0.0);
  }

  let slabs = (p.K + TK - 1u) / TK;
  fetchSlabs(l, m0, n0, 0u, baseA, baseB);
  for (var s = 0u; s < slabs; s++) {
    workgroupBarrier();
    storeSlabs(l);
    workgroupBarrier();
    if (s + 1u < slabs) {
      fetchSlabs(l, m0, n0, (s + 1u) * TK, baseA, baseB);
    }
    multiplySlabs(tx, ty);
  }

  let col = n0 + tx * 4u;
  for (var i = 0u; i < 4u; i++) {
    let r = m0 + ty * 4u + i;
    if (r < p.M) {
      let e = baseC + r * p.N + col;
      if (C_VEC4) {
        if (col < p.N) {
          var old = vec4f(0.0);
          if (p.beta != 0.0) {
            old = vec4f(c[e >> 2u]);
          }
          c[e >> 2u] = vec4<S>(blend(acc[i], old));
        }
      } else {
        for (var j = 0u; j < 4u; j++) {
          if (col + j < p.N) {
            let x = e + j;
            var old = 0.0;
            if (p.beta != 0.0) {
              old = f32(c[x >> 2u][x & 3u]);
            }
            c[x >> 2u][x & 3u] = S(blend(vec4f(acc[i][j]), vec4f(old)).x);
          }
        }
      }
    }
  }
}
