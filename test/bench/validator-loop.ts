// `npm run bench -- validator-loop [--model tiny] [--updates 4,16,64] [--evaluate 4] [--inner-steps 4] [--seq 32] [--software]`:
// the coordinator's longest event-loop stall while the validator scores one round, with the
// validator on the coordinator's thread (as before issue 17) and in its worker thread
// (src/coordinator/validator-thread.ts). The stall is what a heartbeat, a join or an HTTP
// request would wait; perf_hooks' monitorEventLoopDelay samples it every 10 ms.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { preset } from '../../src/model/config.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { parseRunConfig, type RunConfig } from '../../src/protocol/run-config.ts';
import { splitShard } from '../../src/train/sampler.ts';
import { samplingOptions, type SamplingOptions } from '../../src/coordinator/scoring.ts';
import { Validator, type ClosedRound, type ValidatorEngine } from '../../src/coordinator/validator.ts';
import { ValidatorThread } from '../../src/coordinator/validator-thread.ts';
import { modelUpdate } from '../coordinator/helpers.ts';
import { rng } from '../helpers/rng.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const VALID_FRACTION = 0.01;

function closedRound(config: RunConfig, updates: number): ClosedRound {
  const members = Array.from({ length: updates }, (_, i) => `5Member${String(i).padStart(3, '0')}`);
  return {
    round: 0,
    members,
    included: members.map((sender, i) => ({ sender, payload: modelUpdate(config, 0, i + 1), deliveredAt: 1000 + i })),
    others: [],
    missing: [],
    invalid: {},
    reportedHashes: Object.fromEntries(members.map((m) => [m, ''])),
  };
}

async function openEngine(mode: 'this thread' | 'worker thread', config: RunConfig, tokens: Uint16Array, sampling: SamplingOptions, software: boolean): Promise<{ engine: ValidatorEngine; close: () => Promise<void> }> {
  if (mode === 'worker thread') {
    const engine = await ValidatorThread.start({ config, tokens, validFraction: VALID_FRACTION, sampling, software, log: () => {} });
    return { engine, close: () => engine.destroy() };
  }
  const gpu = await openNodeGpu({ adapter: software ? 'software' : 'auto' });
  const { train, valid } = splitShard(tokens, { validFraction: VALID_FRACTION });
  const engine = new Validator(config, gpu, train, valid, () => {}, sampling);
  return {
    engine,
    close: async () => {
      await engine.destroy();
      gpu.destroy();
    },
  };
}

export async function runValidatorLoopBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string', default: 'tiny' }, updates: { type: 'string', default: '4,16,64' }, evaluate: { type: 'string', default: '4' }, 'inner-steps': { type: 'string', default: '4' }, seq: { type: 'string', default: '32' }, software: { type: 'boolean' } } });
  // innerSteps sets how many batches each evaluation runs (at most EVAL_BATCHES).
  const config = parseRunConfig({ run: 'validator-loop', model: values.model, innerSteps: Number(values['inner-steps']), batch: 1, seq: Number(values.seq) });
  const evaluate = Number(values.evaluate);
  const counts = values.updates!.split(',').map(Number);
  const sampling = samplingOptions({ scoreAllUpTo: evaluate, sampleSize: evaluate, key: new Uint8Array(32).fill(5) });
  const u = rng(7);
  const tokens = Uint16Array.from({ length: 200_000 }, () => Math.floor(u() * preset(config.model).vocabSize));
  const rows: BenchRow[] = [];
  for (const mode of ['this thread', 'worker thread'] as const) {
    const { engine, close } = await openEngine(mode, config, tokens, sampling, values.software === true);
    try {
      await engine.warmUp();
      for (const n of counts) {
        const round = closedRound(config, n);
        await engine.loadStart(null);
        const h = monitorEventLoopDelay({ resolution: 10 });
        h.enable();
        const started = performance.now();
        const e = await engine.evaluate(round, evaluate);
        const scoreMs = performance.now() - started;
        h.disable();
        rows.push({ validator: mode, model: config.model, updates: n, evaluated: e.timing.evaluated, 'score ms': scoreMs, 'per update ms': e.timing.perUpdateMs, 'fixed ms': e.timing.fixedMs, 'longest stall ms': h.max / 1e6, 'p99 stall ms': h.percentile(99) / 1e6 });
        console.log(JSON.stringify(rows[rows.length - 1]));
      }
    } finally {
      await close();
    }
  }
  printTable(`validator: the coordinator's event loop while one round is scored (${config.model}, B×T ${config.batch}×${config.seq}, H ${config.innerSteps}, ${evaluate} evaluated)`, rows);
  console.log(`results: ${writeResults(`validator-loop-${config.model}`, { date: new Date().toISOString(), model: config.model, seq: config.seq, innerSteps: config.innerSteps, evaluate, rows })}`);
  return 0;
}
