// FLOPs and minimum bytes of one recorded dispatch, read from its uniform parameters (the
// kernels' Params layouts, mirrored here) and its bindings; workgroups per SM, waves and a
// roofline bound per GPU class.
import { MAX_SPLITS, MIN_K_PER_SPLIT } from '../../../src/kernels/matmul-plan.ts';
import { matmulBankModel, matmulCoreBankModel } from './bank-model.ts';
import { GPU_CLASSES, residentWorkgroups, type GpuClass } from './gpu-classes.ts';
import type { RecordedDispatch } from './recording-device.ts';
import { workgroupShape, type WorkgroupShape } from './wgsl-shape.ts';

export interface DispatchCost {
  /** `shader.entryPoint`. */
  kernel: string;
  workgroups: number;
  shape: WorkgroupShape;
  /** Modelled FLOPs (matmul and attention); 0 for the memory-bound kernels. */
  flops: number;
  /** Bytes the kernel must move at least: each operand read or written once. */
  bytes: number;
  /** For matmuls: `M×N×K` and the vec4 flags. */
  /** For matmuls: `M×N×K`, the vec4 flags, the tile and its inner loop's modelled shared-memory passes per FMA. */
  matmul?: { M: number; N: number; K: number; batch: number; transA: boolean; transB: boolean; vec4: string; tile: string; bankPassesPerFma: number };
}

const shapeCache = new Map<string, WorkgroupShape>();
const bankCache = new Map<string, number>();

/** The bank model of the dispatch's matmul inner loop (bank-model.ts), once per pipeline. */
function bankPassesPerFma(d: RecordedDispatch): number {
  let v = bankCache.get(d.pipeline);
  if (v === undefined) {
    const c = d.constants;
    const [ta, tb] = [c.TRANS_A === 1, c.TRANS_B === 1];
    v = d.shader === 'matmul_core'
      ? matmulCoreBankModel({ wx: c.WX, wy: c.WY, rm: c.RM, rn: c.RN, tk: c.TK }, ta, tb).passesPerFma
      : matmulBankModel(c.WG, c.TK, ta, tb).passesPerFma;
    bankCache.set(d.pipeline, v);
  }
  return v;
}

function shapeOf(d: RecordedDispatch): WorkgroupShape {
  let s = shapeCache.get(d.pipeline);
  if (!s) shapeCache.set(d.pipeline, (s = workgroupShape(d.code, d.entryPoint, d.constants)));
  return s;
}

function u32(d: RecordedDispatch, field: number): number {
  if (!d.uniform) throw new Error(`${d.pipeline}: no uniform contents recorded`);
  return d.uniform.getUint32(4 * field, true);
}

function f32(d: RecordedDispatch, field: number): number {
  if (!d.uniform) throw new Error(`${d.pipeline}: no uniform contents recorded`);
  return d.uniform.getFloat32(4 * field, true);
}

/** Storage bindings' bytes: every buffer the kernel binds, touched once. */
/** Bytes of the storage bindings; a range bound twice (a stand-in for a binding the path never reads) counts once. */
function storageBytes(d: RecordedDispatch): number {
  const ranges = new Map<string, number>();
  for (const b of d.bindings) if (!(b.usage & 0x40)) ranges.set(`${b.bufferId}:${b.offset}:${b.size}`, b.size);
  return [...ranges.values()].reduce((n, size) => n + size, 0);
}

export function dispatchCost(d: RecordedDispatch): DispatchCost {
  const [x, y, z] = d.workgroups;
  const base = { kernel: `${d.shader}.${d.entryPoint}`, workgroups: x * y * z, shape: shapeOf(d) };
  if (d.shader === 'matmul_core') {
    // Params: M, N, K, strideA, strideB, strideC, alpha, beta, kSplit, splits; workgroups z =
    // batch × splits. With splits > 1 it writes batch·splits partial M×N slices (read back by
    // matmul_reduce, a memory-bound dispatch of its own).
    const [M, N, K, splits] = [u32(d, 0), u32(d, 1), u32(d, 2), u32(d, 9)];
    const batch = z / splits;
    const beta = f32(d, 7);
    const c = d.constants;
    const vec4 = `${c.A_VEC4 ? 'A' : '-'}${c.B_VEC4 ? 'B' : '-'}${c.C_VEC4 ? 'C' : '-'}`;
    const out = splits > 1 ? splits * M * N : M * N * (beta !== 0 ? 2 : 1);
    // matmul_rmsnorm also writes n [M, K] and rstd [M] for the backward (and reads g [K]).
    const norm = d.entryPoint === 'matmul_rmsnorm' ? M * K + M + K : 0;
    return {
      ...base,
      flops: 2 * M * N * K * batch,
      bytes: 4 * batch * (M * K + K * N + out + norm),
      matmul: {
        M, N, K, batch, transA: c.TRANS_A === 1, transB: c.TRANS_B === 1, vec4,
        tile: `v2 ${c.WY * c.RM}×${c.WX * c.RN}×${c.TK}${splits > 1 ? ` split ${splits}` : ''}`,
        bankPassesPerFma: bankPassesPerFma(d),
      },
    };
  }
  if (d.shader === 'matmul' || d.shader === 'matmul_f16') {
    // Params: M, N, K, strideA, strideB, strideC, alpha, beta; batch = workgroups z.
    const [M, N, K] = [u32(d, 0), u32(d, 1), u32(d, 2)];
    const beta = f32(d, 7);
    const el = d.shader === 'matmul_f16' ? 2 : 4;
    const c = d.constants;
    const vec4 = `${c.A_VEC4 ? 'A' : '-'}${c.B_VEC4 ? 'B' : '-'}${c.C_VEC4 ? 'C' : '-'}`;
    return {
      ...base,
      flops: 2 * M * N * K * z,
      bytes: el * z * (M * K + K * N + M * N * (beta !== 0 ? 2 : 1)),
      matmul: { M, N, K, batch: z, transA: c.TRANS_A === 1, transB: c.TRANS_B === 1, vec4, tile: `v1 ${4 * c.WG}×${4 * c.WG}×${c.TK}`, bankPassesPerFma: bankPassesPerFma(d) },
    };
  }
  if ((d.shader === 'attention' || d.shader === 'attention_fa2') && d.entryPoint !== 'rowdot') {
    // Both variants. Params: B, T, H, HKV, D, … Causal: B·H·T(T+1)/2 scores, each a D-long dot product (2D
    // FLOPs) per matrix product: forward S and P·V (2), dq S, dP, dS·K (3), dkdv S, dP, Pᵀ·dO, dSᵀ·Q (4).
    const [B, T, H, , D] = [u32(d, 0), u32(d, 1), u32(d, 2), u32(d, 3), u32(d, 4)];
    const products = d.entryPoint === 'forward' ? 2 : d.entryPoint === 'bwd_dq' ? 3 : 4;
    return { ...base, flops: products * B * H * T * (T + 1) * D, bytes: storageBytes(d) };
  }
  return { ...base, flops: 0, bytes: storageBytes(d) };
}

/**
 * The most workgroups any matmul plan may give M×N×K (× batch): 32×32 tiles (the smallest
 * either variant has) times the most K splits variant 2 allows (each split ≥ MIN_K_PER_SPLIT
 * deep, at most MAX_SPLITS). A shape whose finest grid is under a bar cannot meet it.
 */
export function finestMatmulGrid(M: number, N: number, K: number, batch: number): number {
  const splits = Math.max(1, Math.min(MAX_SPLITS, Math.floor(K / MIN_K_PER_SPLIT)));
  return Math.ceil(M / 32) * Math.ceil(N / 32) * batch * splits;
}

export interface Occupancy {
  residentPerSm: number;
  /** Workgroups per SM (the dispatch's workgroups over the SM count). */
  perSm: number;
  /** Full waves: workgroups over (SMs × resident workgroups per SM). */
  waves: number;
}

export function occupancy(g: GpuClass, c: DispatchCost): Occupancy {
  const residentPerSm = residentWorkgroups(g, c.shape.threads, c.shape.sharedBytes);
  return { residentPerSm, perSm: c.workgroups / g.sms, waves: c.workgroups / (g.sms * Math.max(1, residentPerSm)) };
}

/** The roofline's lower bound on time, seconds: the slower of compute at peak and memory at full bandwidth. */
export function rooflineSeconds(g: GpuClass, flops: number, bytes: number): number {
  return Math.max(flops / g.fp32Flops, bytes / g.bytesPerSecond);
}

export { GPU_CLASSES };
