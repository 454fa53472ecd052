// Stand-alone entry for ../shared/tools/gpu-pack: bundles the kernel benchmark for a bare GPU machine.
import { runKernelsBench } from './kernels.ts';

process.exitCode = await runKernelsBench(process.argv.slice(2));
process.exit();
