// `npm run bench -- NAME [options]` and `tessera bench NAME`: one entry for every benchmark.
import { runKernelsBench } from './kernels.ts';
import { runTrainBench } from './train.ts';
import { runSparselocoBench } from './sparseloco.ts';
import { runNetBench } from './net.ts';
import { runPipelineBench } from './pipeline.ts';
import { runHonestShareBench } from './honest-share.ts';
import { runCopyCheckBench } from './copy-check.ts';
import { runValidatorLoopBench } from './validator-loop.ts';
import { runSimulateBench } from './simulate.ts';
import { runSurfaceBench } from './surface.ts';
import { runSurfaceHttpBench } from './surface-http.ts';
import { runStaticBench } from './static.ts';
import { runAdversaryBench } from './adversary.ts';
import { runCheckpointSyncBench } from './checkpoint-sync.ts';
import { runS3StoreBench } from './s3-store.ts';
import { runTurnBench } from './turn.ts';
import { runVerdictsBench } from './verdicts.ts';
import { runNormDriftBench } from './norm-drift.ts';
import { runMatmulCoreBench } from './matmul-core.ts';
import { runAttentionFa2Bench } from './attention-fa2.ts';
import { runCompileBench } from './compile.ts';
import { runAttentionRopeBench } from './attention-rope.ts';

const BENCHMARKS: Record<string, (argv: string[]) => Promise<number>> = {
  kernels: runKernelsBench,
  train: runTrainBench,
  sparseloco: runSparselocoBench,
  net: runNetBench,
  pipeline: runPipelineBench,
  'honest-share': runHonestShareBench,
  'copy-check': runCopyCheckBench,
  'validator-loop': runValidatorLoopBench,
  simulate: runSimulateBench,
  surface: runSurfaceBench,
  'surface-http': runSurfaceHttpBench,
  static: runStaticBench,
  adversary: runAdversaryBench,
  'checkpoint-sync': runCheckpointSyncBench,
  's3-store': runS3StoreBench,
  turn: runTurnBench,
  verdicts: runVerdictsBench,
  'norm-drift': runNormDriftBench,
  'matmul-core': runMatmulCoreBench,
  'attention-fa2': runAttentionFa2Bench,
  compile: runCompileBench,
  'attention-rope': runAttentionRopeBench,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const run = name ? BENCHMARKS[name] : undefined;
  if (!run) {
    console.error(`usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}> [options]`);
    return 2;
  }
  return run(rest);
}
