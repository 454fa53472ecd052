// `tessera train`: one contributor trains the whole model alone on the default corpus — the
// inner loop of a round, without the network. Prints step, loss, tokens/s and memory;
// checkpoints so that --resume continues the same loss curve.
import { join } from 'node:path';
import { adapterName, fmtBytes } from '../gpu/index.ts';
import { PRESETS, parameterCount, preset, type ModelConfig, type PresetName } from '../model/config.ts';
import { LayerSlice } from '../model/slice.ts';
import type { Checkpoint } from '../train/checkpoint.ts';
import { AdamW, DEFAULT_ADAMW } from '../train/optimizer.ts';
import { evalBatches, sampleBatch, splitShard } from '../train/sampler.ts';
import { unigramEntropy } from '../train/stats.ts';
import { LocalTrainer, type StepResult } from '../train/trainer.ts';
import { parseCommandArgs } from './args.ts';
import { FileCheckpointStore } from '../node/checkpoint-files.ts';
import { loadOrBuildShard } from '../node/corpus.ts';
import { openNodeGpu } from '../node/dawn.ts';
import { runReplicas } from './replicas-command.ts';
import type { OuterMethod } from '../sparseloco/outer.ts';

const OUTER_METHODS: readonly OuterMethod[] = ['sparseloco', 'diloco', 'none'];

export const TRAIN_USAGE = `usage:
  tessera train --model tiny|small|base|1b [--steps N] [--resume] [--json]
                [--batch B] [--seq T] [--accum K] [--lr PEAK] [--warmup W] [--seed S]
                [--data shard.bin] [--checkpoint-dir DIR] [--checkpoint-every N]
                [--eval-batches N] [--software]
  tessera train --model tiny --replicas R --inner-steps H --outer sparseloco|diloco|none [--rounds N]
  Trains the whole model on this machine's GPU on the default corpus (built on first use).
  With --replicas, R replicas train H steps per round on their own data and then sync with
  the outer method (none: one replica that sees all R replicas' data); prints each round's
  loss and the bytes each replica would send.
  Checkpoints go to .tessera/checkpoints/<model>/ every --checkpoint-every steps and at the
  end; Ctrl-C saves one and stops. --resume continues from the last valid checkpoint.`;

/** A mistake in the command's arguments: the CLI prints it with the usage and exits 2. */
export class TrainUsageError extends Error {
  override name = 'TrainUsageError';
}

/** Per-preset defaults, sized so each step is a reasonable amount of work for its model. */
const DEFAULTS: Record<PresetName, { batch: number; seq: number; lr: number; warmup: number }> = {
  tiny: { batch: 8, seq: 64, lr: 3e-3, warmup: 10 },
  small: { batch: 8, seq: 256, lr: 1e-3, warmup: 100 },
  base: { batch: 8, seq: 512, lr: 6e-4, warmup: 200 },
  '1b': { batch: 4, seq: 1024, lr: 3e-4, warmup: 500 },
};

/** What must match between a checkpoint and the run resuming it. */
interface RunSettings {
  model: string;
  batch: number;
  seq: number;
  accum: number;
  seed: number;
  lr: number;
  warmup: number;
  steps: number;
}

export async function trainCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      model: { type: 'string', default: 'tiny' },
      steps: { type: 'string', default: '200' },
      batch: { type: 'string' },
      seq: { type: 'string' },
      accum: { type: 'string', default: '1' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string', default: '1' },
      data: { type: 'string' },
      'checkpoint-dir': { type: 'string' },
      'checkpoint-every': { type: 'string', default: '50' },
      'eval-batches': { type: 'string', default: '4' },
      resume: { type: 'boolean' },
      replicas: { type: 'string' },
      'inner-steps': { type: 'string', default: '30' },
      outer: { type: 'string' },
      rounds: { type: 'string' },
      json: { type: 'boolean' },
      software: { type: 'boolean' },
    },
  }, (m) => new TrainUsageError(m));
  const modelName = values.model as PresetName;
  if (!(modelName in PRESETS)) throw new TrainUsageError(`--model must be one of ${Object.keys(PRESETS).join(', ')}, got '${values.model}'`);
  const d = DEFAULTS[modelName];
  const settings: RunSettings = {
    model: modelName,
    batch: int('batch', values.batch ?? d.batch, 1),
    seq: int('seq', values.seq ?? d.seq, 1),
    accum: int('accum', values.accum, 1),
    seed: int('seed', values.seed, 0),
    lr: num('lr', values.lr ?? d.lr),
    warmup: int('warmup', values.warmup ?? d.warmup, 0),
    steps: int('steps', values.steps, 1),
  };
  const checkpointEvery = int('checkpoint-every', values['checkpoint-every'], 1);
  const evalCount = int('eval-batches', values['eval-batches'], 0);
  const cfg: ModelConfig = preset(modelName);
  if (settings.seq > cfg.seqLen) throw new TrainUsageError(`--seq ${settings.seq} is longer than the ${modelName} model's context (${cfg.seqLen})`);
  const json = values.json === true;
  const say = (text: string, event?: Record<string, unknown>) => console.log(json ? JSON.stringify(event ?? { event: 'info', text }) : text);

  const shard = loadOrBuildShard({ tokenizer: cfg, path: values.data, log: (l) => say(l) });
  const { train, valid } = splitShard(shard.tokens, { validFraction: 0.01 });
  const entropy = unigramEntropy(train, cfg.vocabSize);

  if (values.replicas !== undefined || values.outer !== undefined) {
    const method = (values.outer ?? 'sparseloco') as OuterMethod;
    if (!OUTER_METHODS.includes(method)) throw new TrainUsageError(`--outer must be one of ${OUTER_METHODS.join(', ')}, got '${values.outer}'`);
    if (values.resume) throw new TrainUsageError('--resume applies to single-replica training; replica simulations start afresh');
    const innerSteps = int('inner-steps', values['inner-steps'], 1);
    return runReplicas({
      cfg,
      model: modelName,
      method,
      replicas: int('replicas', values.replicas ?? 4, 1),
      innerSteps,
      rounds: int('rounds', values.rounds ?? Math.ceil(settings.steps / innerSteps), 1),
      batch: settings.batch,
      seq: settings.seq,
      lr: settings.lr,
      warmup: settings.warmup,
      seed: settings.seed,
      evalCount,
      train,
      valid,
      entropy,
      software: values.software === true,
      say,
    });
  }

  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  const store = new FileCheckpointStore(values['checkpoint-dir'] ?? join('.tessera', 'checkpoints', modelName));
  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130); // a second Ctrl-C: stop now
    stopRequested = true;
    say('stopping after this step (Ctrl-C again to stop without saving)…');
  };
  process.on('SIGINT', onSigint);
  try {
    const { batch: B, seq: T, accum } = settings;
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.initialize(settings.seed);
    const optimizer = new AdamW(gpu, slice.layout, slice.params, slice.grads, DEFAULT_ADAMW);
    const source = {
      batch: (step: number, micro: number) =>
        sampleBatch(train, { B, T }, { runSeed: settings.seed, round: 0, contributor: 'local', step: (step - 1) * accum + micro }),
    };
    const schedule = { peak: settings.lr, warmup: settings.warmup, total: settings.steps, minRatio: 0.1 };
    const trainer = new LocalTrainer(gpu, slice, optimizer, source, schedule, accum);
    const memory = slice.memory().total + optimizer.bytes;

    if (values.resume) {
      const found = await store.loadLatestValid('latest');
      if (!found) {
        say(`no checkpoint in ${store.dir}: starting from step 0`);
      } else {
        checkResumable(found.checkpoint, settings);
        trainer.loadState(found.checkpoint.tensors, found.checkpoint.step);
        say(`resumed from ${found.file} at step ${found.checkpoint.step}${found.fallback ? ' (the newer checkpoint was unreadable)' : ''}`, {
          event: 'resume',
          step: found.checkpoint.step,
          file: found.file,
        });
      }
    }

    say(
      `${modelName}: ${(parameterCount(cfg) / 1e6).toFixed(2)}M parameters on ${adapterName(gpu.info)}\n` +
        `data: ${shard.path}, ${train.length.toLocaleString('en-US')} training tokens, unigram entropy ${entropy.toFixed(3)} nats/token\n` +
        `batch ${B}×${T}${accum > 1 ? ` ×${accum} micro-batches` : ''}, lr ${settings.lr} (warmup ${settings.warmup}, cosine to step ${settings.steps}), GPU memory ${fmtBytes(memory)}`,
      { event: 'start', model: modelName, parameters: parameterCount(cfg), adapter: adapterName(gpu.info), software: gpu.info.isSoftware, unigramEntropy: entropy, memoryBytes: memory, settings, startStep: trainer.step },
    );

    const save = async (last: StepResult | null) => {
      const tensors = await trainer.readState();
      await store.save('latest', {
        format: 1,
        model: cfg,
        from: 0,
        to: cfg.layers,
        step: trainer.step,
        dataPosition: { sampler: 'sampleBatch', runSeed: settings.seed, round: 0, contributor: 'local', nextStep: trainer.step * accum },
        tensors,
        meta: { settings, loss: last?.loss ?? null, savedAt: new Date().toISOString() },
      });
    };

    let last: StepResult | null = null;
    let lastSaved = trainer.step;
    while (trainer.step < settings.steps && !stopRequested) {
      last = await trainer.trainStep();
      const tokPerSec = (last.tokens / last.ms) * 1000;
      say(
        `step ${String(last.step).padStart(5)}/${settings.steps}  loss ${last.loss.toFixed(4)}  lr ${last.lr.toExponential(2)}  |g| ${last.gradNorm.toFixed(3)}  ${tokPerSec.toFixed(0)} tok/s  ${last.ms.toFixed(0)} ms  mem ${fmtBytes(memory)}`,
        { event: 'step', step: last.step, loss: last.loss, lr: last.lr, gradNorm: last.gradNorm, tokensPerSec: tokPerSec, ms: last.ms, memoryBytes: memory },
      );
      if (trainer.step - lastSaved >= checkpointEvery) {
        await save(last);
        lastSaved = trainer.step;
      }
    }
    if (trainer.step !== lastSaved) await save(last);
    const evalLoss = evalCount > 0 ? await trainer.evaluate(evalBatches(valid, { B, T }, evalCount)) : null;
    say(
      `${stopRequested ? 'stopped' : 'done'} at step ${trainer.step}; checkpoint ${join(store.dir, 'latest.ckpt')}` +
        (evalLoss !== null ? `; held-out loss ${evalLoss.toFixed(4)} (unigram entropy ${entropy.toFixed(3)})` : ''),
      { event: 'end', step: trainer.step, stopped: stopRequested, heldOutLoss: evalLoss, unigramEntropy: entropy, checkpoint: join(store.dir, 'latest.ckpt') },
    );
    trainer.destroy();
    optimizer.destroy();
    slice.destroy();
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    gpu.destroy();
  }
}

function checkResumable(c: Checkpoint, now: RunSettings): void {
  const saved = (c.meta.settings ?? {}) as Partial<RunSettings>;
  for (const key of ['model', 'batch', 'seq', 'accum', 'seed'] as const) {
    if (saved[key] !== now[key]) {
      throw new TrainUsageError(
        `the checkpoint was trained with --${key} ${String(saved[key])}, this run asks for ${String(now[key])}: ` +
          `resume with the same value, or start afresh without --resume (or with another --checkpoint-dir)`,
      );
    }
  }
  if (c.from !== 0 || c.to !== c.model.layers) throw new TrainUsageError('the checkpoint holds a pipeline stage, not the whole model');
}

function int(name: string, raw: string | number | undefined, min: number): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new TrainUsageError(`--${name} must be an integer ≥ ${min}, got '${raw}'`);
  return v;
}

function num(name: string, raw: string | number | undefined): number {
  const v = Number(raw);
  if (!(v > 0) || !Number.isFinite(v)) throw new TrainUsageError(`--${name} must be a positive number, got '${raw}'`);
  return v;
}

