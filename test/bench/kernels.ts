// `npm run bench -- kernels`: matmul against tfjs-backend-webgpu, and flash attention against
// a naive attention that materialises the scores, on the same adapter in the same process.
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { benchAttention } from './attention.ts';
import { benchMatmul } from './matmul.ts';
import { printTable, writeResults } from './table.ts';

const list = (s: string | undefined) => s?.split(',').map(Number).filter((n) => n > 0);

export async function runKernelsBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string' },
      ts: { type: 'string' },
      reps: { type: 'string' },
      quick: { type: 'boolean' },
      software: { type: 'boolean' },
    },
  });
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  try {
    const software = gpu.info.isSoftware;
    const sizes = list(values.sizes) ?? (values.quick ? [128, 256] : software ? [256, 512, 1024] : [256, 512, 1024, 2048, 4096]);
    const Ts = list(values.ts) ?? (values.quick ? [64, 128] : [128, 512, 1024]);
    const reps = Number(values.reps ?? (software ? 3 : 20));
    console.log(`adapter: ${adapterName(gpu.info)}`);
    if (software) console.log('software adapter: these are CPU numbers, not GPU numbers.');

    const matmul = await benchMatmul(gpu, { sizes, reps });
    printTable('matmul, f32 (ours vs tfjs-backend-webgpu tf.matMul, same device)', matmul);
    const attention = await benchAttention(gpu, { Ts, reps });
    printTable('causal attention (flash vs naive materialised scores)', attention);

    const where = writeResults('kernels', {
      date: new Date().toISOString(),
      adapter: adapterName(gpu.info),
      info: gpu.info,
      software,
      reps,
      matmul,
      attention,
    });
    console.log(`\nwrote ${where}`);
    return 0;
  } finally {
    gpu.destroy();
  }
}
