// `npm run bench -- compile [--batch 4] [--seq 32] [--only SHADER] [--software]`: what each kernel of a
// tiny round (ModelReplica's trace: forward, backward, AdamW, the outer step) costs to
// compile, one pipeline at a time in one process, the way every training process pays it
// before its first round (Gpu.precompile). CPU seconds of the process (Dawn compiles on
// threads of its own) as well as wall seconds: on a shared machine the CPU seconds move
// less with the load. On a software adapter (SwiftShader) this is most of a CI process
// test's start-up.
import { parseArgs } from 'node:util';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { ModelReplica } from '../../src/round/replica.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

export async function runCompileBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      batch: { type: 'string', default: '4' },
      seq: { type: 'string', default: '32' },
      software: { type: 'boolean', default: false },
      // Compile only this shader's pipelines (e.g. attention_fa2): shorter runs to alternate.
      only: { type: 'string' },
    },
  });
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  const config = parseRunConfig({ run: 'compile-bench', innerSteps: 5, batch: Number(values.batch), seq: Number(values.seq), plannedRounds: 3 });
  const tokens = Int32Array.from({ length: 65536 }, (_, i) => (i * 7919) % 256);
  const replica = new ModelReplica(gpu, config, tokens, 'compile-bench');
  // The round's trace without compiling (what warmUp hands Gpu.precompile), then one pipeline at a time.
  const traced = replica as unknown as { traceRound(train: boolean): void };
  const requests = gpu.pipelines.record(() => traced.traceRound(true)).filter((r) => !values.only || r.shader.name === values.only);
  const rows: BenchRow[] = [];
  let [wall, cpu] = [0, 0];
  for (const r of requests) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await gpu.pipelines.compile([r]);
    const c = process.cpuUsage(c0);
    const w = (performance.now() - t0) / 1000;
    const s = (c.user + c.system) / 1e6;
    wall += w;
    cpu += s;
    const constants = Object.entries(r.constants ?? {}).map(([k, v]) => `${k}=${v}`).join(' ');
    rows.push({ kernel: `${r.shader.name}.${r.entryPoint}`, constants, 'cpu s': +s.toFixed(2), 'wall s': +w.toFixed(2) });
  }
  rows.sort((a, b) => (b['cpu s'] as number) - (a['cpu s'] as number));
  rows.push({ kernel: `all ${requests.length}`, constants: '', 'cpu s': +cpu.toFixed(2), 'wall s': +wall.toFixed(2) });
  const adapter = gpu.info.isSoftware ? 'software adapter' : 'hardware adapter';
  printTable(`compile, one pipeline at a time: a tiny round (${values.batch}×${values.seq}), ${adapter}`, rows);
  console.log(`wrote ${writeResults(values.only ? `compile-${values.only}` : 'compile', { batch: values.batch, seq: values.seq, adapter: gpu.info, rows })}`);
  gpu.destroy();
  return 0;
}
