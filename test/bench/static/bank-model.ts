// A shared-memory bank model of the matmul and attention inner loops, built from the kernels'
// own tiling parameters and the index expressions of shaders/matmul.wgsl and attention.wgsl
// (mirrored here line for line; change both together).
//
// Model: 32 banks of 4 bytes; one warp (32 lanes, local_invocation_index 0…31) issues each
// shared-memory instruction together; an instruction takes as many passes as the largest
// number of distinct words any one bank must serve (lanes reading the same word share it:
// broadcast), and never fewer than its distinct bytes / 128. The conflict degree of an
// instruction is its passes over that minimum.

const BANKS = 32;
const WARP = 32;

export interface AccessCost {
  passes: number;
  ideal: number;
}

/** Passes for one warp instruction; `words[lane]` lists the 4-byte words the lane touches. */
export function warpPasses(words: readonly (readonly number[])[]): AccessCost {
  const perBank = new Map<number, Set<number>>();
  const distinct = new Set<number>();
  for (const lane of words) {
    for (const w of lane) {
      distinct.add(w);
      const b = w % BANKS;
      let s = perBank.get(b);
      if (!s) perBank.set(b, (s = new Set()));
      s.add(w);
    }
  }
  const ideal = Math.max(1, Math.ceil(distinct.size / BANKS));
  let worst = 0;
  for (const s of perBank.values()) worst = Math.max(worst, s.size);
  return { passes: Math.max(worst, ideal), ideal };
}

const vec4At = (index: number) => [4 * index, 4 * index + 1, 4 * index + 2, 4 * index + 3];

export interface LoopModel {
  /** Shared-memory passes per FMA a thread does (per warp instruction). */
  passesPerFma: number;
  /** Passes over the conflict-free minimum (1 = no bank conflicts). */
  conflictDegree: number;
  detail: Record<string, number>;
}

function add(acc: AccessCost, c: AccessCost, times = 1): void {
  acc.passes += c.passes * times;
  acc.ideal += c.ideal * times;
}

/** shaders/matmul.wgsl: WG×WG threads, 4×4 outputs each, TK-deep slabs. */
export function matmulBankModel(WG: number, TK: number, transA: boolean, transB: boolean): LoopModel {
  const lanes = Math.min(WARP, WG * WG);
  const lane = Array.from({ length: lanes }, (_, l) => ({ l, tx: l % WG, ty: Math.floor(l / WG) }));
  // multiplySlabs, one k: av = As[k·WG + ty], bv = Bs[k·WG + tx]; 16 FMAs.
  const k = 0;
  const readA = warpPasses(lane.map((t) => vec4At(k * WG + t.ty)));
  const readB = warpPasses(lane.map((t) => vec4At(k * WG + t.tx)));
  // storeSlabs: TK/WG quads of A and of B per thread per slab.
  const store: AccessCost = { passes: 0, ideal: 0 };
  for (let i = 0; i < TK / WG; i++) {
    const qs = lane.map((t) => t.l + i * WG * WG);
    if (transA) add(store, warpPasses(qs.map((q) => vec4At(q))));
    else {
      for (let j = 0; j < 4; j++) {
        add(store, warpPasses(qs.map((q) => {
          const m = Math.floor(q / (TK / 4));
          const kk = (q % (TK / 4)) * 4;
          return [((kk + j) * WG + Math.floor(m / 4)) * 4 + (m % 4)];
        })));
      }
    }
    if (transB) {
      for (let j = 0; j < 4; j++) {
        add(store, warpPasses(qs.map((q) => {
          const n = Math.floor(q / (TK / 4));
          const kk = (q % (TK / 4)) * 4;
          return [((kk + j) * WG + Math.floor(n / 4)) * 4 + (n % 4)];
        })));
      }
    } else add(store, warpPasses(qs.map((q) => vec4At(q))));
  }
  const fmasPerSlab = TK * 16;
  const total: AccessCost = { passes: 0, ideal: 0 };
  add(total, readA, TK);
  add(total, readB, TK);
  add(total, store);
  return {
    passesPerFma: total.passes / fmasPerSlab,
    conflictDegree: total.passes / total.ideal,
    detail: {
      'read A passes/k': readA.passes,
      'read B passes/k': readB.passes,
      'store passes/slab': store.passes,
      'store conflict': store.passes / store.ideal,
      'FMAs/slab': fmasPerSlab,
    },
  };
}

/** Variant 2's tile (src/kernels/matmul-plan.ts CoreTile): WX×WY threads, RM×RN outputs each, TK-deep slabs. */
export interface CoreTileShape {
  wx: number;
  wy: number;
  rm: number;
  rn: number;
  tk: number;
}

/**
 * shaders/matmul_core.wgsl: per k, RM/4 vec4 reads of A (As[k·SA + g·WY + ty]) and RN/4 of B
 * (Bs[k·SB + h·WX + tx]) for RM·RN FMAs; per slab each thread stores its quads (rows padded
 * by one vec4: SA = WY·RM/4 + 1 vec4s), 4 scalar stores a quad where the slab is transposed.
 */
export function matmulCoreBankModel(t: CoreTileShape, transA: boolean, transB: boolean): LoopModel {
  const { wx, wy, rm, rn, tk } = t;
  const threads = wx * wy;
  const lanes = Math.min(WARP, threads);
  const lane = Array.from({ length: lanes }, (_, l) => ({ l, tx: l % wx, ty: Math.floor(l / wx) }));
  const rowsA = wy * rm;
  const colsB = wx * rn;
  const SA = rowsA / 4 + 1;
  const SB = colsB / 4 + 1;
  const k = 0;
  const readA: AccessCost = { passes: 0, ideal: 0 };
  for (let g = 0; g < rm / 4; g++) add(readA, warpPasses(lane.map((x) => vec4At(k * SA + g * wy + x.ty))));
  const readB: AccessCost = { passes: 0, ideal: 0 };
  for (let h = 0; h < rn / 4; h++) add(readB, warpPasses(lane.map((x) => vec4At(k * SB + h * wx + x.tx))));
  // storeSlabs: quad q = l + i·threads (lanes past the slab's quads store nothing).
  const store: AccessCost = { passes: 0, ideal: 0 };
  const slab = (rows: number, S: number, transposing: boolean) => {
    const quads = (rows * tk) / 4;
    for (let i = 0; i < Math.ceil(quads / threads); i++) {
      const qs = lane.map((x) => x.l + i * threads);
      const active = (q: number) => q < quads;
      if (!transposing) {
        add(store, warpPasses(qs.map((q) => (active(q) ? vec4At(Math.floor(q / (rows / 4)) * S + (q % (rows / 4))) : []))));
      } else {
        for (let j = 0; j < 4; j++) {
          add(store, warpPasses(qs.map((q) => {
            if (!active(q)) return [];
            const m = Math.floor(q / (tk / 4));
            const kk = (q % (tk / 4)) * 4;
            return [((kk + j) * S + Math.floor(m / 4)) * 4 + (m % 4)];
          })));
        }
      }
    }
  };
  slab(rowsA, SA, !transA);
  slab(colsB, SB, transB);
  const fmasPerSlab = tk * rm * rn;
  const total: AccessCost = { passes: 0, ideal: 0 };
  add(total, readA, tk);
  add(total, readB, tk);
  add(total, store);
  return {
    passesPerFma: total.passes / fmasPerSlab,
    conflictDegree: total.passes / total.ideal,
    detail: {
      'read A passes/k': readA.passes,
      'read B passes/k': readB.passes,
      'store passes/slab': store.passes,
      'store conflict': store.passes / store.ideal,
      'FMAs/slab': fmasPerSlab,
    },
  };
}

/** shaders/attention.wgsl forward: the score loop (q·k) and the P·V loop, for one key tile. */
export function attentionForwardBankModel(BR: number, BC: number, TPR: number, DK4: number): LoopModel {
  const DS = DK4 + 1;
  const DPT4 = Math.ceil(DK4 / TPR);
  const lanes = Math.min(WARP, BR * TPR);
  const lane = Array.from({ length: lanes }, (_, l) => ({ r: Math.floor(l / TPR), tx: l % TPR }));
  const spt = BC / TPR;
  const total: AccessCost = { passes: 0, ideal: 0 };
  let fmas = 0;
  // scores: for s < spt, c < DK4: dot(qs[r·DS + c], ks[j·DS + c]), j = tx + TPR·s (4 FMAs)
  const score: AccessCost = { passes: 0, ideal: 0 };
  for (let s = 0; s < spt; s++) {
    for (let c = 0; c < DK4; c++) {
      add(score, warpPasses(lane.map((t) => vec4At(t.r * DS + c))));
      add(score, warpPasses(lane.map((t) => vec4At((t.tx + TPR * s) * DS + c))));
      fmas += 4;
    }
  }
  add(total, score);
  // P·V: for j < BC: pj = ps[j·BR + r]; for i < DPT4: acc[i] += pj · ks[j·DS + min(tx + TPR·i, DK4 − 1)] (4 FMAs)
  const pv: AccessCost = { passes: 0, ideal: 0 };
  for (let j = 0; j < BC; j++) {
    add(pv, warpPasses(lane.map((t) => [j * BR + t.r])));
    for (let i = 0; i < DPT4; i++) {
      add(pv, warpPasses(lane.map((t) => vec4At(j * DS + Math.min(t.tx + TPR * i, DK4 - 1)))));
      fmas += 4;
    }
  }
  add(total, pv);
  return {
    passesPerFma: total.passes / fmas,
    conflictDegree: total.passes / total.ideal,
    detail: {
      'score passes/FMA': score.passes / (spt * DK4 * 4),
      'score conflict': score.passes / score.ideal,
      'P·V passes/FMA': pv.passes / (BC * DPT4 * 4),
      'P·V conflict': pv.passes / pv.ideal,
    },
  };
}

/**
 * shaders/attention_fa2.wgsl forward (variant 2): thread = query row (lane l owns row l), q
 * and the output in registers; every warp instruction of the score loop reads
 * ks[j·DK4 + c] and of the P·V loop vs[j·DK4 + c], the same vec4 in all lanes: a broadcast.
 */
export function attentionFa2BankModel(BQ: number, BC: number, DK4: number): LoopModel {
  const lanes = Math.min(WARP, BQ);
  const score: AccessCost = { passes: 0, ideal: 0 };
  const pv: AccessCost = { passes: 0, ideal: 0 };
  for (let j = 0; j < BC; j++) {
    for (let c = 0; c < DK4; c++) {
      add(score, warpPasses(Array.from({ length: lanes }, () => vec4At(j * DK4 + c))));
      add(pv, warpPasses(Array.from({ length: lanes }, () => vec4At(j * DK4 + c))));
    }
  }
  const fmas = 2 * BC * DK4 * 4;
  return {
    passesPerFma: (score.passes + pv.passes) / fmas,
    conflictDegree: (score.passes + pv.passes) / (score.ideal + pv.ideal),
    detail: {
      'score passes/FMA': score.passes / (BC * DK4 * 4),
      'score conflict': score.passes / score.ideal,
      'P·V passes/FMA': pv.passes / (BC * DK4 * 4),
      'P·V conflict': pv.passes / pv.ideal,
    },
  };
}
