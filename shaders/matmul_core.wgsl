// Matmul core, variant 2 (variant 1 is matmul.wgsl): the same product and layouts,
// C_z = alpha · op(A_z) · op(B_z) + beta · C_z, with op(A) M×K (A stored K×M when TRANS_A),
// op(B) K×N (B stored N×K when TRANS_B), row-major, batch z at element offset z·stride.
//
// Built for GPUs (see src/kernels/matmul-plan.ts for how tile and split are chosen):
// - WX×WY threads, each holding RM×RN outputs (4 or 8 each) in registers: a (WY·RM)×(WX·RN)
//   tile, up to 128×128 with 8×8 per thread. A thread's rows are RM/4 groups of 4, the groups
//   WY·4 rows apart (its columns likewise), so the inner loop reads RM/4 + RN/4 vec4s per k
//   that neighbouring lanes share or read contiguously: RM·RN FMAs per (RM + RN)/4 reads.
// - Slabs TK = 8 deep, double-buffered in workgroup memory: the next slab's global loads are
//   issued before this slab's arithmetic and stored into the other buffer after it, so one
//   barrier per slab suffices (a buffer is rewritten only after the barrier that ends its reads).
// - Rows of a slab are padded by 4 floats (one vec4). Quads read along k (A not transposed,
//   B transposed: every forward layer and input gradient) are stored transposed, 4 scalar
//   stores a quad; with TK = 8 a warp's lanes hit rows k and k + 4, which the pad puts 16
//   banks apart: no bank conflicts (test/bench/static/bank-model.ts models it).
// - Split-K: with SPLIT the grid's z is batch × splits; split s sums k in [s·kSplit,
//   (s + 1)·kSplit) and writes its raw partial sums (no alpha, no beta) to `c`, which is then
//   a scratch buffer of batch·splits dense M×N slices; matmul_reduce.wgsl adds the slices in
//   split order (deterministic) and applies alpha and beta.
//
// - RMSNorm in the prologue (A_NORM, entry matmul_rmsnorm): C = rmsnorm(A)·g · op(B) with the
//   norm's row scale applied at the end: A's quads are scaled by g on load, the threads that
//   load a row's quads sum its squares as they go, and the epilogue multiplies each output
//   row by rstd = 1/sqrt(Σx²/K + eps). Unsplit, batch 1, A row-major and vec4-aligned.
//
// Storage is viewed as vec4 arrays; scalar access is a[i >> 2][i & 3] (buffers come from the
// pool in multiples of 256 bytes, so every element lies inside the vec4 view).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,
  strideB: u32,
  strideC: u32,
  alpha: f32,
  beta: f32,
  // K per split (a multiple of TK; K itself when not split) and the number of splits.
  kSplit: u32,
  splits: u32,
  eps: f32, // A_NORM only
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Quads of A / B / C may be read (written) with one vec4 access: the host sets these when the
// operand's contiguous dimension and its batch stride are multiples of 4 (for C with SPLIT:
// when N is, the scratch slices being dense).
override A_VEC4: bool = false;
override B_VEC4: bool = false;
override C_VEC4: bool = false;
override SPLIT: bool = false;
// A is stored M×2K with rows [gate | up] and op(A) = silu(gate)·up elementwise: the SwiGLU
// forward as the down projection's A prologue (m is never stored). Not with TRANS_A.
override A_SWIGLU: bool = false;
// op(A) = A·g per column (g: norm_g), and the squares of each row of A summed on load
// (matmul_rmsnorm). Not with TRANS_A, A_SWIGLU or SPLIT; A_VEC4 with K % 4 = 0.
override A_NORM: bool = false;
// Threads along N (x) and M (y); outputs per thread along M (RM) and N (RN), 4 or 8.
override WX: u32 = 16u;
override WY: u32 = 16u;
override RM: u32 = 8u;
override RN: u32 = 8u;
// Slab depth: 8 keeps the transposing stores conflict-free with the one-vec4 pad.
override TK: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4f>;
// The RMSNorm weight g [K] (read only with A_NORM; the host binds B here without it: every
// entry point loads slabs through fetchSlabs, so every one declares it).
@group(0) @binding(4) var<storage, read> norm_g: array<vec4f>;

// Two slabs each, k-major, rows padded by one vec4: As[buf·TK·(WY·RM/4 + 1) + k·(WY·RM/4 + 1) + i]
// holds op(A) rows 4i..4i+3 at depth k (Bs likewise for op(B) columns).
var<workgroup> As: array<vec4f, 2u * TK * (WY * RM / 4u + 1u)>;
var<workgroup> Bs: array<vec4f, 2u * TK * (WX * RN / 4u + 1u)>;

// Accumulators: output row group g, row i, column group h at acc[(4g + i)·RN/4 + h].
var<private> acc: array<vec4f, 16>;
// The next slab's quads, at most 4 per thread for A and for B.
var<private> nextA: array<vec4f, 4>;
var<private> nextB: array<vec4f, 4>;
// A_NORM: Σx² of the row of each A quad this thread loads (the same rows every slab).
var<private> ssq: array<f32, 4>;

fn rowsA() -> u32 { return WY * RM; }
fn colsB() -> u32 { return WX * RN; }
fn strideAs() -> u32 { return WY * RM / 4u + 1u; }
fn strideBs() -> u32 { return WX * RN / 4u + 1u; }
fn threads() -> u32 { return WX * WY; }

// σ(g) from exp(−|g|) (no overflow), as shaders/swiglu.wgsl computes it: the same bits.
fn sigmoid(g: f32) -> f32 {
  let e = exp(-abs(g));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, g >= 0.0);
}

// A quad of op(A)'s storage (rows × cols): with A_SWIGLU, silu(gate)·up of the quads `cols`
// apart in a row of 2·cols; zeros outside.
fn quadA(base: u32, r: u32, col: u32, rows: u32, cols: u32) -> vec4f {
  if (A_SWIGLU) {
    let g = quadStoredA(base, r, col, rows, cols, 2u * cols, 0u);
    let u = quadStoredA(base, r, col, rows, cols, 2u * cols, cols);
    var v = vec4f(0.0);
    for (var j = 0u; j < 4u; j++) {
      v[j] = g[j] * sigmoid(g[j]) * u[j];
    }
    return v;
  }
  return quadStoredA(base, r, col, rows, cols, cols, 0u);
}

// A quad of A as stored (rows of rowLen, row-major): elements (r, shift + col..col+3) for
// col < cols, zeros outside.
fn quadStoredA(base: u32, r: u32, col: u32, rows: u32, cols: u32, rowLen: u32, shift: u32) -> vec4f {
  var v = vec4f(0.0);
  if (r >= rows) {
    return v;
  }
  let e = base + r * rowLen + shift + col;
  if (A_VEC4) {
    if (col < cols) {
      v = a[e >> 2u];
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < cols) {
        let i = e + j;
        v[j] = a[i >> 2u][i & 3u];
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
      v = b[e >> 2u];
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < cols) {
        let i = e + j;
        v[j] = b[i >> 2u][i & 3u];
      }
    }
  }
  return v;
}

// Loads slab k0's quads into registers. Along the contiguous dimension: TRANS_A stores A as
// K×M, so a quad runs along m (rowsA/4 quads per k); otherwise along k (TK/4 per row m).
fn fetchSlabs(l: u32, m0: u32, n0: u32, k0: u32, baseA: u32, baseB: u32) {
  let quadsA = rowsA() * TK / 4u;
  let quadsB = colsB() * TK / 4u;
  for (var i = 0u; i < (quadsA + threads() - 1u) / threads(); i++) {
    let q = l + i * threads();
    if (q < quadsA) {
      if (TRANS_A) {
        nextA[i] = quadA(baseA, k0 + q / (rowsA() / 4u), m0 + (q % (rowsA() / 4u)) * 4u, p.K, p.M);
      } else {
        let k = k0 + (q % (TK / 4u)) * 4u;
        var v = quadA(baseA, m0 + q / (TK / 4u), k, p.M, p.K);
        if (A_NORM) {
          ssq[i] += dot(v, v);
          if (k < p.K) {
            v *= norm_g[k >> 2u];
          }
        }
        nextA[i] = v;
      }
    }
  }
  for (var i = 0u; i < (quadsB + threads() - 1u) / threads(); i++) {
    let q = l + i * threads();
    if (q < quadsB) {
      if (TRANS_B) {
        nextB[i] = quadB(baseB, n0 + q / (TK / 4u), k0 + (q % (TK / 4u)) * 4u, p.N, p.K);
      } else {
        nextB[i] = quadB(baseB, k0 + q / (colsB() / 4u), n0 + (q % (colsB() / 4u)) * 4u, p.K, p.N);
      }
    }
  }
}

// Stores the fetched quads into slab buffer `buf`.
fn storeSlabs(l: u32, buf: u32) {
  let quadsA = rowsA() * TK / 4u;
  let quadsB = colsB() * TK / 4u;
  let offA = buf * TK * strideAs();
  let offB = buf * TK * strideBs();
  for (var i = 0u; i < (quadsA + threads() - 1u) / threads(); i++) {
    let q = l + i * threads();
    if (q < quadsA) {
      if (TRANS_A) {
        As[offA + (q / (rowsA() / 4u)) * strideAs() + q % (rowsA() / 4u)] = nextA[i];
      } else {
        let m = q / (TK / 4u);
        let k = (q % (TK / 4u)) * 4u;
        for (var j = 0u; j < 4u; j++) {
          As[offA + (k + j) * strideAs() + m / 4u][m % 4u] = nextA[i][j];
        }
      }
    }
  }
  for (var i = 0u; i < (quadsB + threads() - 1u) / threads(); i++) {
    let q = l + i * threads();
    if (q < quadsB) {
      if (TRANS_B) {
        let n = q / (TK / 4u);
        let k = (q % (TK / 4u)) * 4u;
        for (var j = 0u; j < 4u; j++) {
          Bs[offB + (k + j) * strideBs() + n / 4u][n % 4u] = nextB[i][j];
        }
      } else {
        Bs[offB + (q / (colsB() / 4u)) * strideBs() + q % (colsB() / 4u)] = nextB[i];
      }
    }
  }
}

fn multiplySlabs(tx: u32, ty: u32, buf: u32) {
  let offA = buf * TK * strideAs();
  let offB = buf * TK * strideBs();
  var av: array<vec4f, 2>;
  var bv: array<vec4f, 2>;
  for (var k = 0u; k < TK; k++) {
    for (var g = 0u; g < RM / 4u; g++) {
      av[g] = As[offA + k * strideAs() + g * WY + ty];
    }
    for (var h = 0u; h < RN / 4u; h++) {
      bv[h] = Bs[offB + k * strideBs() + h * WX + tx];
    }
    for (var g = 0u; g < RM / 4u; g++) {
      for (var i = 0u; i < 4u; i++) {
        for (var h = 0u; h < RN / 4u; h++) {
          let o = (4u * g + i) * (RN / 4u) + h;
          acc[o] = fma(vec4f(av[g][i]), bv[h], acc[o]);
        }
      }
    }
  }
}

// beta == 0 overwrites C without reading it (C may hold NaN).
fn blend(v: vec4f, old: vec4f) -> vec4f {
  if (p.beta == 0.0) {
    return p.alpha * v;
  }
  return p.alpha * v + p.beta * old;
}

// Writes one row quad of outputs: the final C (alpha, beta) or, with SPLIT, raw partial sums.
fn writeQuad(e: u32, col: u32, v: vec4f) {
  if (C_VEC4) {
    if (col < p.N) {
      if (SPLIT) {
        c[e >> 2u] = v;
      } else {
        var old = vec4f(0.0);
        if (p.beta != 0.0) {
          old = c[e >> 2u];
        }
        c[e >> 2u] = blend(v, old);
      }
    }
  } else {
    for (var j = 0u; j < 4u; j++) {
      if (col + j < p.N) {
        let x = e + j;
        if (SPLIT) {
          c[x >> 2u][x & 3u] = v[j];
        } else {
          var old = 0.0;
          if (p.beta != 0.0) {
            old = c[x >> 2u][x & 3u];
          }
          c[x >> 2u][x & 3u] = blend(vec4f(v[j]), vec4f(old)).x;
        }
      }
    }
  }
}

// The product of this workgroup's tile (its split of K) into acc.
fn accumulate(wid: vec3u, lid: vec3u, l: u32) {
  let tx = lid.x;
  let ty = lid.y;
  let m0 = wid.y * rowsA();
  let n0 = wid.x * colsB();
  let z = wid.z / p.splits;
  let split = wid.z % p.splits;
  let baseA = z * p.strideA;
  let baseB = z * p.strideB;
  for (var i = 0u; i < 16u; i++) {
    acc[i] = vec4f(0.0);
  }
  for (var i = 0u; i < 4u; i++) {
    ssq[i] = 0.0;
  }

  let kBegin = split * p.kSplit;
  let kEnd = min(p.K, kBegin + p.kSplit);
  let slabs = (kEnd - kBegin + TK - 1u) / TK;
  fetchSlabs(l, m0, n0, kBegin, baseA, baseB);
  storeSlabs(l, 0u);
  workgroupBarrier();
  for (var s = 0u; s < slabs; s++) {
    let more = s + 1u < slabs;
    if (more) {
      fetchSlabs(l, m0, n0, kBegin + (s + 1u) * TK, baseA, baseB);
    }
    multiplySlabs(tx, ty, s & 1u);
    if (more) {
      storeSlabs(l, (s + 1u) & 1u);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WX, WY)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) l: u32) {
  accumulate(wid, lid, l);
  let tx = lid.x;
  let ty = lid.y;
  let m0 = wid.y * rowsA();
  let n0 = wid.x * colsB();
  let z = wid.z / p.splits;
  // With SPLIT, c is the scratch: slice wid.z (batch z, split s) is a dense M×N matrix.
  var baseC = z * p.strideC;
  if (SPLIT) {
    baseC = wid.z * p.M * p.N;
  }
  for (var g = 0u; g < RM / 4u; g++) {
    for (var i = 0u; i < 4u; i++) {
      let r = m0 + g * WY * 4u + ty * 4u + i;
      if (r < p.M) {
        for (var h = 0u; h < RN / 4u; h++) {
          let col = n0 + h * WX * 4u + tx * 4u;
          writeQuad(baseC + r * p.N + col, col, acc[(4u * g + i) * (RN / 4u) + h]);
        }
      }
    }
  }
}

// matmul_swiglu_backward: the SwiGLU backward as the epilogue of dm = dy·wDown, an [M, N]
// product (N = F) that is never stored. From the gate|up rows of e_gu ([M, 2N]) it writes
// dgate | dup into c ([M, 2N]) and m = silu(gate)·up into e_m ([M, N]), with
// swiglu_packed_backward's arithmetic (shaders/swiglu.wgsl). The host runs it unsplit, batch
// 1, alpha 1, beta 0, N % 4 = 0 (C_VEC4), so each output quad is whole or absent.
@group(0) @binding(5) var<storage, read> e_gu: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> e_m: array<vec4f>;

@compute @workgroup_size(WX, WY)
fn matmul_swiglu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) l: u32) {
  accumulate(wid, lid, l);
  let m0 = wid.y * rowsA();
  let n0 = wid.x * colsB();
  let half = p.N >> 2u; // quads from a row's gate to its up
  for (var g = 0u; g < RM / 4u; g++) {
    for (var i = 0u; i < 4u; i++) {
      let r = m0 + g * WY * 4u + lid.y * 4u + i;
      if (r < p.M) {
        for (var h = 0u; h < RN / 4u; h++) {
          let col = n0 + h * WX * 4u + lid.x * 4u;
          if (col < p.N) {
            let dm = acc[(4u * g + i) * (RN / 4u) + h];
            let q = (r * 2u * p.N + col) >> 2u;
            let gate = e_gu[q];
            let up = e_gu[q + half];
            var dg = vec4f(0.0);
            var du = vec4f(0.0);
            var m = vec4f(0.0);
            for (var j = 0u; j < 4u; j++) {
              let x = gate[j];
              let s = sigmoid(x);
              dg[j] = dm[j] * up[j] * s * (1.0 + x * (1.0 - s));
              du[j] = dm[j] * x * s;
              m[j] = x * s * up[j];
            }
            c[q] = dg;
            c[q + half] = du;
            e_m[(r * p.N + col) >> 2u] = m;
          }
        }
      }
    }
  }
}

// matmul_rmsnorm (A_NORM): C = rmsnorm(A)·g · op(B), rmsnorm(x) = x·rstd, rstd = 1/sqrt(mean(x²)
// + eps) per row of A ([M, K]); also writes what the backward needs, n = x·rstd·g ([M, K],
// each workgroup the columns of its own tile below K: the host runs it with N ≥ K) and rstd
// ([M], the first column of workgroups) — what rmsnorm_forward writes, so the separate
// pass is gone. Unsplit, batch 1.
@group(0) @binding(5) var<storage, read_write> norm_n: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> norm_rstd: array<f32>;

@compute @workgroup_size(WX, WY)
fn matmul_rmsnorm(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) l: u32) {
  accumulate(wid, lid, l); // ends on a barrier: As is free
  // A row's TK/4 loader quads (q = row·TK/4 + j) each summed part of its squares; they meet in As.
  let quadsA = rowsA() * TK / 4u;
  for (var i = 0u; i < (quadsA + threads() - 1u) / threads(); i++) {
    let q = l + i * threads();
    if (q < quadsA) {
      As[q >> 2u][q & 3u] = ssq[i];
    }
  }
  workgroupBarrier();
  let m0 = wid.y * rowsA();
  let n0 = wid.x * colsB();
  for (var g = 0u; g < RM / 4u; g++) {
    for (var i = 0u; i < 4u; i++) {
      let lr = g * WY * 4u + lid.y * 4u + i;
      let r = m0 + lr;
      if (r < p.M) {
        var ss = 0.0;
        for (var j = 0u; j < TK / 4u; j++) {
          let q = lr * (TK / 4u) + j;
          ss += As[q >> 2u][q & 3u];
        }
        let rstd = inverseSqrt(ss / f32(p.K) + p.eps);
        if (wid.x == 0u && lid.x == 0u) {
          norm_rstd[r] = rstd;
        }
        for (var h = 0u; h < RN / 4u; h++) {
          let col = n0 + h * WX * 4u + lid.x * 4u;
          writeQuad(r * p.N + col, col, acc[(4u * g + i) * (RN / 4u) + h] * rstd);
          if (col < p.K) {
            let e = (r * p.K + col) >> 2u;
            norm_n[e] = a[e] * rstd * norm_g[col >> 2u];
          }
        }
      }
    }
  }
}
