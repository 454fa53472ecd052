// Float64 CPU reference of each layer type the model uses: one forward/backward pair per
// layer, each with its shape legend, written llm.c-style for clarity, not speed. reference.ts
// composes them into a block and a model slice; test/model/reference.test.ts checks the whole
// against finite differences.
//
// Legend (src/kernels/README.md): B batch, T time, C channels, V vocab, F MLP width, H heads,
// Hkv kv heads, D = C/H head size, N = B·T rows. Activations are [N, C] row-major; linear
// weights are [out, in] and y = x·Wᵀ; q is [B, T, H, D], k and v are [B, T, Hkv, D].

// ---- matmul: out[n, o] (+)= Σ_i x[n, i] · w[o, i]   (y = x·Wᵀ, W [out, in]) ----

/** y [N, O] = x [N, I] · wᵀ, w [O, I]. */
export function linearForward(x: Float64Array, w: ArrayLike<number>, N: number, I: number, O: number): Float64Array {
  const y = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let i = 0; i < I; i++) s += x[n * I + i] * w[o * I + i];
      y[n * O + o] = s;
    }
  }
  return y;
}

/** dw [O, I] += dyᵀ·x; returns dx [N, I] = dy·w. */
export function linearBackward(
  dy: Float64Array, x: Float64Array, w: ArrayLike<number>, dw: Float64Array, N: number, I: number, O: number,
): Float64Array {
  const dx = new Float64Array(N * I);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = dy[n * O + o];
      if (g === 0) continue;
      for (let i = 0; i < I; i++) {
        dw[o * I + i] += g * x[n * I + i];
        dx[n * I + i] += g * w[o * I + i];
      }
    }
  }
  return dx;
}

// ---- RMSNorm: y [N, C] = x · rstd · w, rstd [N] = 1/sqrt(mean_c(x²) + eps) ----

export function rmsnormForward(x: Float64Array, w: ArrayLike<number>, N: number, C: number, eps: number) {
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * w[c];
  }
  return { y, rstd };
}

/** dw [C] += Σ_n dy·x·rstd; returns dx = rstd·w·dy − x·rstd³/C·Σ_c dy·w·x. */
export function rmsnormBackward(
  dy: Float64Array, x: Float64Array, rstd: Float64Array, w: ArrayLike<number>, dw: Float64Array, N: number, C: number,
): Float64Array {
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[n * C + c] * w[c] * x[n * C + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = r * w[c] * dy[i] - x[i] * k;
      dw[c] += dy[i] * x[i] * r;
    }
  }
  return dx;
}

// ---- RoPE on [B, T, nh, D]: rotate-half pairs (d, d + D/2) by angle t·θ_d, θ_d = base^(−2d/D) ----
//   y[d] = x[d]·cos − x[d+D/2]·sin,  y[d+D/2] = x[d+D/2]·cos + x[d]·sin
// The backward is the rotation by −angle (sign = −1).

export function rope(x: Float64Array, B: number, T: number, nh: number, D: number, base: number, sign: 1 | -1): Float64Array {
  const y = new Float64Array(x.length);
  const half = D / 2;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nh; h++) {
        const o = ((b * T + t) * nh + h) * D;
        for (let d = 0; d < half; d++) {
          const angle = t * Math.pow(base, (-2 * d) / D);
          const c = Math.cos(angle);
          const s = sign * Math.sin(angle);
          const x0 = x[o + d];
          const x1 = x[o + d + half];
          y[o + d] = x0 * c - x1 * s;
          y[o + d + half] = x1 * c + x0 * s;
        }
      }
    }
  }
  return y;
}

// ---- causal grouped-query attention ----
// q [B, T, H, D], k, v [B, T, Hkv, D] → out [B, T, H, D]; probabilities att [B, H, T, T]
// (row t holds softmax over t2 ≤ t of q_t·k_t2 / sqrt(D), zeros above the diagonal).
// Query head h reads kv head floor(h / (H/Hkv)).

export interface AttnDims { B: number; T: number; H: number; Hkv: number; D: number }

export function attentionForward(q: Float64Array, k: Float64Array, v: Float64Array, dims: AttnDims) {
  const { B, T, H, Hkv, D } = dims;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(B * T * H * D);
  const att = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const row = ((b * H + h) * T + t) * T;
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const ko = ((b * T + t2) * Hkv + g) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
          s *= scale;
          att[row + t2] = s;
          if (s > max) max = s;
        }
        let sum = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const e = Math.exp(att[row + t2] - max);
          att[row + t2] = e;
          sum += e;
        }
        for (let t2 = 0; t2 <= t; t2++) {
          const p = att[row + t2] / sum;
          att[row + t2] = p;
          const vo = ((b * T + t2) * Hkv + g) * D;
          for (let d = 0; d < D; d++) out[qo + d] += p * v[vo + d];
        }
      }
    }
  }
  return { out, att };
}

/** Returns dq [B, T, H, D], dk and dv [B, T, Hkv, D] (kv gradients summed over each group). */
export function attentionBackward(
  dout: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, att: Float64Array, dims: AttnDims,
) {
  const { B, T, H, Hkv, D } = dims;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const row = ((b * H + h) * T + t) * T;
        // out_t = Σ p_t2 v_t2  →  dp_t2 = dout_t·v_t2,  dv_t2 += p_t2·dout_t
        let pdp = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const vo = ((b * T + t2) * Hkv + g) * D;
          const p = att[row + t2];
          let s = 0;
          for (let d = 0; d < D; d++) {
            s += dout[qo + d] * v[vo + d];
            dv[vo + d] += p * dout[qo + d];
          }
          dp[t2] = s;
          pdp += p * s;
        }
        // softmax: ds_t2 = p_t2 (dp_t2 − Σ p·dp);  s_t2 = scale·q_t·k_t2
        for (let t2 = 0; t2 <= t; t2++) {
          const ds = att[row + t2] * (dp[t2] - pdp) * scale;
          const ko = ((b * T + t2) * Hkv + g) * D;
          for (let d = 0; d < D; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

// ---- SwiGLU: h [N, F] = silu(g) ∘ u, silu(g) = g·σ(g) ----

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function swigluForward(g: Float64Array, u: Float64Array): Float64Array {
  const h = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) h[i] = g[i] * sigmoid(g[i]) * u[i];
  return h;
}

/** dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g). */
export function swigluBackward(dh: Float64Array, g: Float64Array, u: Float64Array) {
  const dg = new Float64Array(g.length);
  const du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigmoid(g[i]);
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
  return { dg, du };
}

// ---- softmax cross-entropy over logits [N, V], targets [N] (−1 ignored), mean over valid ----

export function crossEntropyForward(logits: Float64Array, targets: Int32Array, N: number, V: number) {
  const probs = new Float64Array(N * V);
  let count = 0;
  let total = 0;
  for (let n = 0; n < N; n++) {
    let max = -Infinity;
    for (let c = 0; c < V; c++) max = Math.max(max, logits[n * V + c]);
    let sum = 0;
    for (let c = 0; c < V; c++) sum += (probs[n * V + c] = Math.exp(logits[n * V + c] - max));
    for (let c = 0; c < V; c++) probs[n * V + c] /= sum;
    const y = targets[n];
    if (y === -1) continue;
    count++;
    total += max + Math.log(sum) - logits[n * V + y];
  }
  return { loss: count > 0 ? total / count : 0, probs, count };
}

/** dlogits = (probs − onehot(target)) / count on valid rows, 0 on ignored rows. */
export function crossEntropyBackward(probs: Float64Array, targets: Int32Array, count: number, N: number, V: number): Float64Array {
  const dlogits = new Float64Array(N * V);
  if (count === 0) return dlogits;
  for (let n = 0; n < N; n++) {
    const y = targets[n];
    if (y === -1) continue;
    for (let c = 0; c < V; c++) dlogits[n * V + c] = probs[n * V + c] / count;
    dlogits[n * V + y] -= 1 / count;
  }
  return dlogits;
}
