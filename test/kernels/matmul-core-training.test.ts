// The training path on variant 2: a one-layer model whose weight gradients sum over 256
// tokens, on this device presented as a discrete GPU (so matmul picks variant 2 and splits K
// to fill 256 workgroups), against the float64 reference model: loss and every gradient.
import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, initParameters, parameterLayout } from '../../src/model/config.ts';
import { referenceBackward } from '../../src/model/reference.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { matmulCorePlan, matmulVariant } from '../../src/kernels/matmul.ts';
import { expectClose, randInts, testGpu } from '../helpers/gpu.ts';

const cfg: ModelConfig = {
  vocabSize: 37, dim: 32, layers: 1, heads: 4, kvHeads: 2, mlpHidden: 48, seqLen: 128,
  ropeBase: 10000, normEps: 1e-5, tiedEmbeddings: false, initStd: 0.2,
};
const B = 2;
const T = 128;
const BOUND = 1e-4;

describe('training path on matmul variant 2', () => {
  it('a discrete-class adapter runs the model on variant 2 with split-K; loss and gradients match the reference', async () => {
    const shared = await testGpu();
    // The same device, described as a discrete GPU: the plan then targets 256 workgroups.
    // (Not destroyed here: the device belongs to the file's shared Gpu.)
    const gpu = new Gpu(shared.device, shared.adapter, { ...shared.info, vendor: 'test-discrete', isSoftware: false }, shared.features);
    expect(matmulVariant(gpu, {})).toBe(2);
    // The weight gradients (dim × dim over B·T = 256 tokens) are split along K.
    expect(matmulCorePlan(gpu, cfg.dim, cfg.dim, B * T).splits).toBeGreaterThan(1);

    const p = initParameters(cfg, parameterLayout(cfg), 5);
    const tokens = randInts(B * T, cfg.vocabSize, 61);
    const targets = randInts(B * T, cfg.vocabSize, 62);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.setParameters(p);
    // Split-K reductions: every weight gradient's in one dispatch (the slice's SplitKGroup).
    const reduces = { single: 0, grouped: 0 };
    // RMSNorm in the projections' prologue (the final norm stays a pass: the head reads n), RoPE in attention.
    const fused = { normPrologue: 0, normPass: 0, rope: 0 };
    let normSubgroups = 0;
    // Attention's backward: T = 128 gives 16 dK/dV key blocks, so their queries split and bwd_dkdv runs before bwd_dq.
    const attentionBackward: string[] = [];
    const dispatch = gpu.dispatch.bind(gpu);
    gpu.dispatch = (pipeline, params, buffers, workgroups) => {
      if (pipeline.label.startsWith('matmul_reduce|reduce_segments')) reduces.grouped++;
      else if (pipeline.label.startsWith('matmul_reduce|reduce|')) reduces.single++;
      if (pipeline.label.startsWith('matmul_core|matmul_rmsnorm|')) fused.normPrologue++;
      // The final norm's pass: the subgroup kernel where the device has subgroups (a hardware adapter's choice).
      if (pipeline.label.startsWith('rmsnorm|rmsnorm_forward|') || pipeline.label.startsWith('rmsnorm_subgroups|rmsnorm_forward_sg|')) fused.normPass++;
      if (pipeline.label.startsWith('rmsnorm_subgroups|')) normSubgroups++;
      if (pipeline.label.startsWith('rope|')) fused.rope++;
      if (pipeline.label.startsWith('attention_fa2|bwd_')) attentionBackward.push(pipeline.label.split('|')[1]);
      dispatch(pipeline, params, buffers, workgroups);
    };
    try {
      slice.forward({ tokens, targets });
      slice.backward();
    } finally {
      gpu.dispatch = dispatch;
    }
    console.log(`split-K reductions: ${reduces.grouped} grouped, ${reduces.single} single`);
    expect(reduces.grouped).toBeGreaterThan(0);
    expect(fused).toEqual({ normPrologue: 2 * cfg.layers, normPass: 1, rope: 0 });
    expect(normSubgroups).toBe(gpu.features.subgroups ? 1 : 0);
    expect(attentionBackward).toEqual(['bwd_dkdv', 'bwd_dq']);
    const loss = (await gpu.readF32(slice.loss!))[0];
    const ref = referenceBackward(cfg, p, tokens, targets, B, T);
    expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(BOUND);
    const grads = await slice.readGradients();
    for (const [name, r] of ref.grads) expectClose(`variant 2: ${name}`, grads.get(name)!, r, BOUND);
    slice.destroy();
  });
});
