// Opens the GPU, runs a kernel, reads the result, destroys the GPU — and does not call
// process.exit. The test that runs it checks the process ends by itself.
import { openNodeGpu } from '../../src/node/dawn.ts';
import { fill } from '../../src/kernels/elementwise.ts';

const gpu = await openNodeGpu();
const t = gpu.tensor([8]);
fill(gpu, t, 3);
const out = await gpu.readF32(t);
gpu.destroy();
console.log(`read ${out[7]}`);
