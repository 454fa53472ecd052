// AdamW, one thread per parameter, decoupled weight decay:
//   g ← grad · clipScale         (clipScale = clip[1] from gradnorm, or 1)
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
//   θ ← θ − lr·(wd·θ + m̂ / (sqrt(v̂) + eps)),  m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t)
// The bias corrections come from the CPU (float64) as their reciprocals.
// adamw_clip reads the clip scale from a GPU buffer, so clipping needs no read-back.

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  wd: f32,
  rbc1: f32, // 1 / (1 − β1^t)
  rbc2: f32, // 1 / (1 − β2^t)
  // Elements [0, decayEnd) take weight decay, the rest none: one dispatch updates a span of
  // decayed tensors followed by undecayed ones (norms, embeddings).
  decayEnd: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
// adamw_clip only: [globalNorm, scale]
@group(0) @binding(5) var<storage, read> clip: array<f32>;

const WG: u32 = 256u;

fn update(i: u32, scale: f32) {
  let g = grad[i] * scale;
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let mhat = mi * p.rbc1;
  let vhat = vi * p.rbc2;
  let theta = param[i];
  let wd = select(0.0, p.wd, i < p.decayEnd);
  param[i] = theta - p.lr * (wd * theta + mhat / (sqrt(vhat) + p.eps));
}

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    update(i, 1.0);
  }
}

@compute @workgroup_size(WG)
fn adamw_clip(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n) {
    update(i, clip[1]);
  }
}
