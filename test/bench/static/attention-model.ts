// `bench static`'s model of the attention kernels, both variants side by side for a preset's
// step shape: threads and workgroup memory per workgroup, barriers per tile, the shared-memory
// passes per FMA of the inner loops (bank-model.ts's warp model, fed the kernels' own index
// expressions), an estimate of registers per thread, and from those the resident workgroups
// and waves on a 128-SM GPU (RTX 4090). Variant 1 is shaders/attention.wgsl with the tiles
// attentionTiles picks; variant 2 is shaders/attention_fa2.wgsl with fa2Tiles' shapes.
import type { Gpu } from '../../../src/gpu/gpu.ts';
import { attentionTiles, tileBytes, type AttentionDims } from '../../../src/kernels/attention.ts';
import { fa2Threads, fa2TileBytes, fa2Tiles } from '../../../src/kernels/attention-fa2.ts';
import { attentionForwardBankModel, warpPasses } from './bank-model.ts';
import { GPU_CLASSES, residentWorkgroups } from './gpu-classes.ts';

/**
 * NVIDIA's register file: 64 Ki 32-bit registers per SM, at most 255 per thread, allocated
 * per warp in units of 8 per thread (Ampere / Ada / Hopper occupancy tables).
 */
const REGISTERS_PER_SM = 65536;
const MAX_REGISTERS = 255;
/** Scalars beside the row arrays (indices, running max and sum, loop counters, addresses): an assumption. */
const SCALAR_REGISTERS = 24;
const WARP = 32;
const GPU_128 = GPU_CLASSES.find((g) => g.name === 'RTX 4090')!;

export interface AttentionKernelModel {
  variant: 1 | 2;
  kernel: 'forward' | 'bwd_dq' | 'bwd_dkdv';
  /** Rows per workgroup × rows per tile (v1: BR × BC; v2: owned rows × tile rows). */
  tile: string;
  threads: number;
  sharedBytes: number;
  /** Barriers per tile of the loop (each tile is BC keys, or BQ queries in dkdv). */
  barriersPerTile: number;
  /** Barriers per 1,024 keys (or queries) a workgroup walks. */
  barriersPer1kRows: number;
  passesPerFma: number;
  /** Estimated 32-bit registers per thread: the row arrays plus SCALAR_REGISTERS; over 255 spills. */
  registers: number;
  /** Resident workgroups per SM on the 128-SM class by threads, workgroup memory and registers. */
  residentPerSm: number;
  workgroups: number;
  /** Workgroups over (128 SMs × resident). */
  waves128: number;
  /** Threads in flight per SM in the first wave: min(resident, workgroups / 128) × threads. */
  threadsPerSm128: number;
}

/** Passes per FMA of a loop whose every warp instruction reads one vec4 at the same address in all lanes (variant 2's broadcast tiles). */
function broadcastPassesPerFma(): number {
  const word = [0, 1, 2, 3];
  return warpPasses(Array.from({ length: WARP }, () => word)).passes / 4; // one vec4 read, 4 FMAs
}

function residency(threads: number, sharedBytes: number, registers: number): number {
  const warps = Math.ceil(threads / WARP);
  const perWarp = Math.ceil(Math.min(registers, MAX_REGISTERS) / 8) * 8 * WARP;
  const byRegisters = Math.floor(REGISTERS_PER_SM / (perWarp * warps));
  return Math.min(residentWorkgroups(GPU_128, threads, sharedBytes), byRegisters);
}

function row(m: Omit<AttentionKernelModel, 'residentPerSm' | 'waves128' | 'barriersPer1kRows' | 'threadsPerSm128'>, tileRows: number): AttentionKernelModel {
  const residentPerSm = residency(m.threads, m.sharedBytes, m.registers);
  return {
    ...m,
    barriersPer1kRows: (m.barriersPerTile * 1024) / tileRows,
    residentPerSm,
    waves128: m.workgroups / (GPU_128.sms * Math.max(1, residentPerSm)),
    threadsPerSm128: Math.min(residentPerSm, m.workgroups / GPU_128.sms) * m.threads,
  };
}

export function attentionModels(gpu: Gpu, dims: AttentionDims): AttentionKernelModel[] {
  const { B, T, H, Hkv, D } = dims;
  const dk4 = Math.ceil(D / 4);
  const out: AttentionKernelModel[] = [];
  const v1 = attentionTiles(gpu, D);
  const dpt = 4 * Math.ceil(dk4 / v1.forward.TPR); // output floats per thread
  // Variant 1: forward has 4 barriers per key tile, bwd_dq 4, bwd_dkdv 2 per query tile.
  // Its backward inner loops are modelled as the forward's (same tile reads, more of them).
  const f1 = v1.forward;
  const fwdBank = attentionForwardBankModel(f1.BR, f1.BC, f1.TPR, dk4).passesPerFma;
  out.push(row({
    variant: 1, kernel: 'forward', tile: `${f1.BR}×${f1.BC} TPR ${f1.TPR}`, threads: f1.BR * f1.TPR, sharedBytes: tileBytes('forward', D, f1),
    barriersPerTile: 4, passesPerFma: fwdBank, registers: dpt + f1.BC / f1.TPR + SCALAR_REGISTERS, workgroups: B * H * Math.ceil(T / f1.BR),
  }, f1.BC));
  const q1 = v1.dq;
  out.push(row({
    variant: 1, kernel: 'bwd_dq', tile: `${q1.BR}×${q1.BC} TPR ${q1.TPR}`, threads: q1.BR * q1.TPR, sharedBytes: tileBytes('dq', D, q1),
    barriersPerTile: 4, passesPerFma: attentionForwardBankModel(q1.BR, q1.BC, q1.TPR, dk4).passesPerFma,
    registers: dpt + q1.BC / q1.TPR + SCALAR_REGISTERS, workgroups: B * H * Math.ceil(T / q1.BR),
  }, q1.BC));
  const k1 = v1.dkdv;
  out.push(row({
    variant: 1, kernel: 'bwd_dkdv', tile: `${k1.BC}×${k1.BR} TPR ${k1.TPR}`, threads: k1.BC * k1.TPR, sharedBytes: tileBytes('dkdv', D, k1),
    barriersPerTile: 2, passesPerFma: attentionForwardBankModel(k1.BC, k1.BR, k1.TPR, dk4).passesPerFma,
    registers: 2 * dpt + SCALAR_REGISTERS, workgroups: B * Hkv * Math.ceil(T / k1.BC),
  }, k1.BR));
  // Variant 2: two barriers per tile in every kernel (a key split adds one at the end); every
  // inner-loop read is a broadcast. A split's threads each hold the row's registers.
  const v2 = fa2Tiles(gpu, dims);
  const bcast = broadcastPassesPerFma();
  const f2 = v2.forward;
  out.push(row({
    variant: 2, kernel: 'forward', tile: `${f2.rows}×${f2.tile}${f2.split ? ` keys ÷${f2.split}` : ''}`, threads: fa2Threads('forward', f2), sharedBytes: fa2TileBytes('forward', D, f2),
    barriersPerTile: 2, passesPerFma: bcast, registers: 2 * D + f2.tile + SCALAR_REGISTERS, workgroups: B * H * Math.ceil(T / f2.rows),
  }, f2.tile));
  const q2 = v2.dq;
  out.push(row({
    variant: 2, kernel: 'bwd_dq', tile: `${q2.rows}×${q2.tile}${q2.split ? ` keys ÷${q2.split}` : ''}`, threads: fa2Threads('dq', q2), sharedBytes: fa2TileBytes('dq', D, q2),
    barriersPerTile: 2, passesPerFma: bcast, registers: 3 * D + SCALAR_REGISTERS, workgroups: B * H * Math.ceil(T / q2.rows),
  }, q2.tile));
  const k2 = v2.dkdv;
  out.push(row({
    variant: 2, kernel: 'bwd_dkdv', tile: `${k2.rows}×${k2.tile} (2 threads/key)${k2.split ? ` queries ÷${k2.split}` : ''}`, threads: fa2Threads('dkdv', k2), sharedBytes: fa2TileBytes('dkdv', D, k2),
    barriersPerTile: 2, passesPerFma: bcast, registers: 3 * D + SCALAR_REGISTERS, workgroups: B * Hkv * Math.ceil(T / k2.rows) * (k2.split ?? 1),
  }, k2.tile));
  return out;
}
