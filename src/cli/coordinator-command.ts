// `tessera coordinator [--port 8787] [--run run.json] [--state DIR]`: serves one run (signaling, rounds, the data
// shard, checkpoints) until Ctrl-C. State under --state survives a restart, which resumes the run at its next
// round. With --subtensor and --netuid the validator also sets its weights on that subnet at each epoch's close.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Coordinator, type CoordinatorOptions } from '../coordinator/coordinator.ts';
import { serveCoordinator, type CoordinatorServer } from '../coordinator/server.ts';
import { CoordinatorStore } from '../coordinator/state-store.ts';
import { RunConfigError, parseRunConfig, type RunConfig } from '../protocol/run-config.ts';
import { NoGpuError } from '../gpu/errors.ts';
import { splitShard } from '../train/sampler.ts';
import { encodeShard } from '../train/shards.ts';
import { Ledger } from '../coordinator/ledger.ts';
import { RewardsApi } from '../coordinator/rewards-api.ts';
import { Validator, evaluationOrder, recordScores, syncValidator, type ClosedRound, type ValidatorEngine } from '../coordinator/validator.ts';
import { storedPayloads } from '../coordinator/run-record.ts';
import { ValidatorQueue } from '../coordinator/validator-queue.ts';
import { ValidatorRestart, restoreVerdicts } from '../coordinator/validator-restart.ts';
import { ValidatorThread } from '../coordinator/validator-thread.ts';
import { openNodeGpu } from '../node/dawn.ts';
import { cryptoReady, type Hotkey } from '../wallet/keys.ts';
import { loadOrBuildShard } from '../node/corpus.ts';
import { ChainConfigError, parseChainOptions, type ChainOptions } from '../coordinator/chain-weights.ts';
import { ChainError, connectSubtensor } from '../coordinator/chain.ts';
import { EpochWeights } from '../coordinator/chain-epochs.ts';
import { clipFloorOf, samplingOptions, type SamplingOptions } from '../coordinator/scoring.ts';
import { loadHotkeyFile } from '../node/hotkey-file.ts';
import { CommandUsageError, parseCommandArgs } from './args.ts';
import { STORE_USAGE, StoreSettingsError, bucketFromFlags } from './store-settings.ts';
import { TURN_OPTIONS, TURN_USAGE, turnFromFlags, type TurnGrants } from './turn-flags.ts';

export const COORDINATOR_USAGE = `usage:
  tessera coordinator [--port 8787] [--host 127.0.0.1] [--run run.json] [--state DIR] [--data shard.bin]
                      [--no-validate] [--software] [--score-all-up-to N] [--score-sample K] [--store disk|s3 [--store-config F]]
                      [--subtensor ws://NODE:9944 --netuid N --hotkey FILE [--password-file F] [--version-key K]]
                      [--turn URL[,URL…] --turn-secret-file FILE [--turn-ttl SECONDS]]
  Serves a training run: contributors connect to ws://HOST:PORT/ws. It also validates: scores
  every update on this machine's GPU (--no-validate: relay only, no rewards) and keeps the
  reward ledger in DIR/ledger.sqlite. A round with more than --score-all-up-to updates
  (default 16) has a secret random --score-sample of them evaluated (default 16); the others
  keep their averages, and all are checked for copying. --run names a JSON file
  of run settings (see README: model, innerSteps, batch, seq, roundSeconds, …); without it,
  the defaults (model tiny). State is kept in --state (default .tessera/coordinator/<run>).
  Chain (optional): with --subtensor and --netuid the validator sets weights on that subnet
  from each epoch's rewards, signed by the hotkey in --hotkey (a mnemonic, btcli hotkey file
  or Tessera wallet; registered on the subnet). --version-key: set_weights' version key
  (default: the subnet's). Without them the ledger alone is the record of rewards.${STORE_USAGE}
${TURN_USAGE}`;

export function readRunFile(path: string | undefined, overrides: Partial<RunConfig> = {}): RunConfig {
  let raw: Record<string, unknown> = {};
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new RunConfigError('(file)', `cannot be read from ${path}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new RunConfigError('(file)', `${path} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return parseRunConfig({ ...raw, ...overrides });
}

export interface StartedCoordinator {
  coordinator: Coordinator;
  server: CoordinatorServer;
  /** The reward ledger, when this coordinator validates. */
  ledger: Ledger | null;
  /** Stops serving; says how many closed rounds were left unscored (kept in the state folder for the next start). */
  stop(): Promise<{ unscoredRounds: number }>;
}

/** Starts a coordinator with its HTTP/WebSocket server (the swarm command uses it in-process). */
export async function startCoordinator(
  config: RunConfig,
  o: {
    port: number; host?: string; stateDir?: string; data?: string; log: (line: string) => void; validate?: boolean; software?: boolean;
    chain?: ChainSettings | null; sampling?: ValidatorSampling;
    /** Start no round numbered this or higher (the swarm command's --rounds). */
    roundLimit?: number;
    /** How long a round waits for connected peers still syncing once minMembers are ready (default: the coordinator's). */
    syncGraceMs?: number;
    /** false: score on this thread, in the coordinator's event loop (benchmarks compare); default: in a worker thread. */
    validatorThread?: boolean;
    unpacedScoring?: boolean; // every round's whole sample scored, whatever it takes (tests of the scores); default paced
    /** Scores with this engine instead of a GPU one (`tessera simulate`'s modelled validator). */
    engine?: () => Promise<ValidatorEngine>;
    /** An S3-compatible bucket for the updates (--store s3); absent: the state folder. */
    bucket?: CoordinatorOptions['bucket'];
    turn?: TurnGrants | null; // short-lived STUN/TURN credentials per member (--turn)
  },
): Promise<StartedCoordinator> {
  if (o.chain && o.validate === false) throw new ChainConfigError('--subtensor', 'sets weights from the validator\'s scores, so it cannot go with --no-validate');
  await cryptoReady();
  const shard = loadOrBuildShard({ tokenizer: config.tokenizer, path: o.data, log: o.log });
  const stateDir = o.stateDir ?? join('.tessera', 'coordinator', config.run);
  const store = new CoordinatorStore(stateDir);
  // The validator evaluates updates on the whole model; a pipelined run's updates are per
  // stage, so such a run is relayed and checked (signatures, layouts) but not scored yet.
  if (config.stages > 1 && o.validate !== false) {
    if (o.chain) throw new ChainConfigError('--subtensor', 'sets weights from validator scores, which a pipelined run (stages > 1) does not have yet');
    o.log(`the validator scores whole-model runs only: run '${config.run}' has ${config.stages} pipeline stages, so its updates are relayed and checked but not scored (no rewards)`);
  }
  const validation = o.validate === false || config.stages > 1 ? null : await startValidation(config, shard.tokens, stateDir, o);
  // Gather-K ranks by the ledger's averages and leaves out its bars (both kept across restarts); unscored peers are newcomers.
  const standing = validation ? (address: string) => validation.ledger.averages(address)?.ema : undefined;
  const coordinator = new Coordinator(config, store, { log: o.log, onRoundClosed: (c) => validation?.enqueue(c), scoring: validation ? () => validation.progress() : undefined, standing, barred: validation ? (address) => validation.ledger.bar(address) !== null : undefined, clipFloor: validation ? () => clipFloorOf(validation.ledger.helpfulNorms()) : undefined, roundLimit: o.roundLimit, syncGraceMs: o.syncGraceMs, bucket: o.bucket, turn: o.turn ?? undefined });
  validation?.attach(coordinator);
  const server = await serveCoordinator(coordinator, { port: o.port, host: o.host, shard: encodeShard(shard.tokens, shard.meta), log: o.log, rewards: validation?.rewards });
  coordinator.start();
  return {
    coordinator,
    server,
    ledger: validation?.ledger ?? null,
    async stop() {
      coordinator.stop();
      await server.close();
      return { unscoredRounds: (await validation?.close()) ?? 0 };
    },
  };
}

/** The chain side of a validating coordinator: where, and the validator's hotkey. */
export type ChainSettings = ChainOptions & { hotkey: Hotkey; timeoutMs?: number };

/** How many updates a round evaluates: all up to scoreAllUpTo, else sampleSize of them. */
export type ValidatorSampling = Partial<Pick<SamplingOptions, 'scoreAllUpTo' | 'sampleSize'>>;

/** The validator on this machine's GPU, scoring each closed round in order; null without a GPU. */
/**
 * The validator's secret for choosing which updates a large round evaluates: random, kept in
 * the state folder (0600) so the sample is reproducible across restarts, never published.
 */
function samplingKey(stateDir: string): Uint8Array {
  const file = join(stateDir, 'validator-sampling.key');
  if (existsSync(file)) {
    const hex = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(hex)) return Uint8Array.from(Buffer.from(hex, 'hex'));
    throw new RunConfigError('--state', `${file} is not a sampling key (64 hex digits): delete it and a new one is made`);
  }
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return new Uint8Array(key);
}

/** The validator's engine: in a worker thread (off the event loop), or on this thread (benchmarks compare the two). */
async function openEngine(config: RunConfig, tokens: ArrayLike<number>, sampling: SamplingOptions, stateDir: string, o: { log: (line: string) => void; software?: boolean; validatorThread?: boolean; engine?: () => Promise<ValidatorEngine> }): Promise<{ engine: ValidatorEngine; release: () => void }> {
  if (o.engine) return { engine: await o.engine(), release: () => {} };
  // Either way the engine reads the uncommitted updates it samples from the update store itself, one at a time.
  if (o.validatorThread !== false) {
    const engine = await ValidatorThread.start({ config, tokens, validFraction: VALID_FRACTION, sampling, software: o.software === true, log: o.log, storeDir: stateDir });
    return { engine, release: () => {} };
  }
  const gpu = await openNodeGpu({ adapter: o.software ? 'software' : 'auto' });
  const { train, valid } = splitShard(tokens, { validFraction: VALID_FRACTION });
  return { engine: new Validator(config, gpu, train, valid, o.log, sampling, storedPayloads(new CoordinatorStore(stateDir), config)), release: () => gpu.destroy() };
}

/** The share of the shard held out for the validator's random batches. */
const VALID_FRACTION = 0.01;

async function startValidation(config: RunConfig, tokens: ArrayLike<number>, stateDir: string, o: { log: (line: string) => void; software?: boolean; chain?: ChainSettings | null; sampling?: ValidatorSampling; validatorThread?: boolean; unpacedScoring?: boolean; engine?: () => Promise<ValidatorEngine> }) {
  mkdirSync(stateDir, { recursive: true });
  const sampling = samplingOptions({ ...o.sampling, key: samplingKey(stateDir) });
  let opened: Awaited<ReturnType<typeof openEngine>>;
  try {
    opened = await openEngine(config, tokens, sampling, stateDir, o);
  } catch (e) {
    if (!(e instanceof NoGpuError)) throw e;
    o.log(`validator off, no rewards${o.chain ? ' and no chain weights' : ''}: ${e.message}`);
    return null;
  }
  const { engine } = opened;
  const release = async () => {
    await engine.destroy();
    opened.release();
  };
  let chain: Awaited<ReturnType<typeof connectSubtensor>> | null = null;
  try {
    chain = o.chain ? await connectSubtensor(o.chain, o.chain.hotkey) : null;
  } catch (e) {
    await release();
    throw e;
  }
  const ledger = new Ledger(join(stateDir, 'ledger.sqlite'));
  const epochWeights = chain ? new EpochWeights(chain.chain, ledger, config.epochRounds, o.log) : null;
  if (chain && o.chain) {
    const address = o.chain.hotkey.address;
    const registration = await chain.chain.neuron(address).then(
      (n) => (n.registered ? `uid ${n.uid}` : 'NOT registered there: no weights are set until it is'),
      (e: Error) => `registration not read (${e.message})`,
    );
    o.log(`chain: netuid ${o.chain.netuid} at ${o.chain.endpoint}; validator hotkey ${address}: ${registration}; weights are set at each epoch's close (every ${config.epochRounds} rounds)`);
  }
  let coordinator: Coordinator;
  // Closed rounds wait here, at most VALIDATOR_QUEUE_BOUND of them in memory; made in attach(),
  // once the rounds decided before this start are known.
  let queue: ValidatorQueue<ClosedRound> | null = null;
  // Scoring waits for its kernels, compiled ahead: compiled on first use they would make the
  // first round slow to score (and, on this thread, hold the coordinator's heartbeat).
  let ready: Promise<void> = engine.warmUp().then(
    () => {},
    (e: Error) => o.log(`validator: kernels not compiled ahead (${e.message}); they compile as scoring needs them`),
  ).then(() => restoreVerdicts(engine, ledger, o.log)).catch((e: Error) => o.log(`validator: copy history not restored (${e.message}): replays of updates from before this start go unrecognised`));
  // On stop only the round being scored finishes: stopping does not wait for a backlog that
  // can be minutes long when rounds are quicker than scoring. The rounds left are not lost,
  // at a stop or a crash: the state keeps their commits and updates (see Coordinator.save)
  // and the commits back to the validator's saved weights (validator-restart.ts), and the
  // next start on this state folder scores them first, paced from what was measured.
  let closing = false;
  let inHand: Promise<void> = ready;
  const restart = new ValidatorRestart(stateDir, o.log);
  const checkpoint = async () => {
    const c = await coordinator.checkpoints.readCheckpoint(0);
    return c ? { round: c.round, weights: c.bytes } : null;
  };
  const startFor = async (round: number) => restart.startFor(round, engine, await checkpoint());
  const skip = (round: number, reason: string) => {
    ledger.recordSkipped(round, reason);
    o.log(`validator: round ${round} skipped, not scored: ${reason}`);
  };
  const score = async (q: ValidatorQueue<ClosedRound>, round: number, held: ClosedRound | null) => {
    await ready;
    if (round <= ledger.lastRound) return q.done(round);
    // A round not held in memory (the queue was full when it closed, or it closed before this start) is read back from the state.
    const c = held ? { ok: true as const, closed: held } : await coordinator.validatorInput.readClosedRound(round);
    const unscoreable = !c.ok ? c.reason
      : engine.round !== round && !(await syncValidator(engine, round, await startFor(round), (r) => coordinator.validatorInput.readCommitPayloads(r), o.log, (r) => coordinator.commit(r)?.clipFloor)) ? `the validator could not rebuild θ_start of round ${round} (a commit before it is gone)`
      : null;
    if (!c.ok || unscoreable) {
      skip(round, unscoreable!);
      return q.done(round);
    }
    const plan = q.plan(evaluationOrder(c.closed, sampling).length); // with a bucket, what it evaluates is read from there first: validator-reads.ts
    const evaluation = await coordinator.validatorInput.sample(c.closed, evaluationOrder(c.closed, sampling).slice(0, plan.evaluate)).then(() => engine.evaluate(c.closed, plan.evaluate, plan.budgetMs));
    const standings = recordScores(c.closed, evaluation, { config, ledger, closedRounds: coordinator.round, log: o.log });
    const note = q.noteFor(plan, evaluation.timing);
    if (note) o.log(`validator: ${note}`);
    q.done(round, evaluation.timing);
    restart.notePacing(q.snapshot());
    coordinator.sendScores(round, standings);
    epochWeights?.roundScored(round);
    if (restart.due(engine.round, config.checkpointEvery)) await saveWeights();
  };
  /** θ_start of the first round not scored, kept for a restart (a crash included). */
  const saveWeights = async () => {
    if (engine.round !== ledger.lastRound + 1) return;
    try {
      await restart.saveWeights(engine.round, await engine.encodeWeights());
    } catch (e) {
      o.log(`validator: weights of round ${engine.round} not saved (${(e as Error).message}); a restart rebuilds from round ${restart.rebuildFrom(engine.round)}`);
    }
  };
  /** Scores the next round waiting, if none is in hand; each round, when done, starts the next. */
  const pump = () => {
    const job = closing ? null : queue?.take();
    if (!queue || !job) return;
    const q = queue;
    inHand = score(q, job.round, job.item)
      .catch((e: Error) => {
        o.log(`validator: round ${job.round} not scored: ${e.message}`);
        if (q.inHand === job.round) q.done(job.round);
      })
      .then(pump);
  };
  const pending = () => Math.max(0, coordinator.round - 1 - ledger.lastRound);
  return {
    ledger,
    rewards: new RewardsApi(config.run, ledger, config.epochRounds, Date.now, () => coordinator.round),
    progress: () => ({ scoredRounds: ledger.scoredRounds, decidedThrough: ledger.lastRound, skippedRounds: ledger.skippedCount, rebuildFrom: restart.rebuildFrom(ledger.lastRound + 1) }),
    attach(c: Coordinator) {
      coordinator = c;
      const first = ledger.lastRound + 1;
      // Rounds closed before a stop (or a crash) and not scored: score them now, in order;
      // those whose commits this state no longer holds (a ledger started on an older run's
      // state) are recorded as skipped, in one line rather than one per round.
      const kept = first >= c.round ? first : Math.max(first, c.runState().oldestCommit);
      if (kept > first) {
        const reason = 'closed before this ledger existed, or its commit is no longer kept in the state';
        for (let r = first; r < kept; r++) ledger.recordSkipped(r, reason);
        o.log(`validator: rounds ${first}–${kept - 1} skipped, not scored: ${reason}`);
      }
      queue = new ValidatorQueue<ClosedRound>({ next: ledger.lastRound + 1, roundMs: config.roundSeconds * 1000, now: Date.now, restored: restart.pacing, unpaced: o.unpacedScoring });
      if (kept < c.round) {
        o.log(`validator: ${c.round - kept} closed round(s) not scored yet (rounds ${kept}–${c.round - 1}): scoring them first`);
        queue.backlog(c.round - 1);
        pump();
        return;
      }
      const round = c.round;
      // Not synced here, the first round scored rebuilds θ_start itself (score → syncValidator).
      ready = ready
        .then(async () => syncValidator(engine, round, await startFor(round), (r) => c.validatorInput.readCommitPayloads(r), o.log, (r) => c.commit(r)?.clipFloor))
        .then(() => {}, (e: Error) => o.log(`validator: θ_start of round ${round} not loaded yet (${e.message}); the first round scored rebuilds it`));
      inHand = ready;
    },
    enqueue(closed: ClosedRound) {
      if (!queue) return;
      const taken = queue.closed(closed.round, closed, closed.startedAt);
      if (!taken.held) o.log(`validator: ${taken.reason}`);
      pump();
    },
    pendingRounds: pending,
    async close(): Promise<number> {
      closing = true;
      await inHand;
      const left = pending();
      // The replica holds θ_start of the first round left: saved, the next start need not
      // rebuild it from a checkpoint that may be newer than that round.
      await saveWeights();
      if (left > 0) {
        o.log(`validator: stopped with ${left} closed round(s) not scored (rounds ${ledger.lastRound + 1}–${coordinator.round - 1}); they are kept in ${stateDir} and scored when the coordinator starts again with --state ${stateDir}`);
      }
      await epochWeights?.close();
      await chain?.disconnect();
      await release();
      ledger.close();
      return left;
    },
  };
}

export async function coordinatorCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      run: { type: 'string' },
      state: { type: 'string' },
      data: { type: 'string' },
      'no-validate': { type: 'boolean' },
      software: { type: 'boolean' },
      subtensor: { type: 'string' },
      netuid: { type: 'string' },
      'version-key': { type: 'string' },
      hotkey: { type: 'string' },
      'password-file': { type: 'string' },
      'score-all-up-to': { type: 'string' },
      'score-sample': { type: 'string' },
      store: { type: 'string' }, 'store-config': { type: 'string' },
      ...TURN_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new CommandUsageError('coordinator', m, COORDINATOR_USAGE));
  if (values.help) {
    console.log(COORDINATOR_USAGE);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CommandUsageError('coordinator', `--port must be a port number (0–65535), got '${values.port}'`, COORDINATOR_USAGE);
  const config = readRunFile(values.run);
  const chain = chainSettings(values);
  const sampling: ValidatorSampling = { scoreAllUpTo: positiveFlag('--score-all-up-to', values['score-all-up-to']), sampleSize: positiveFlag('--score-sample', values['score-sample']) };
  const turn = turnFromFlags(values, (m) => new CommandUsageError('coordinator', m, COORDINATOR_USAGE));
  const log = (line: string) => console.log(`[${new Date().toISOString()}] ${line}`);
  let c: StartedCoordinator;
  try {
    const bucket = await bucketFromFlags(values.store, values['store-config'], process.env, log);
    c = await startCoordinator(config, { port, host: values.host, stateDir: values.state, data: values.data, log, validate: values['no-validate'] !== true, software: values.software === true, chain, sampling, bucket, turn });
  } catch (e) {
    if (e instanceof StoreSettingsError) return (console.error(`tessera coordinator: ${e.message}`), 1);
    if (!(e instanceof ChainError)) throw e;
    console.error(`tessera coordinator: ${e.message} (or leave out --subtensor and --netuid to run on the ledger alone)`);
    return 1;
  }
  log(`run '${config.run}' (${config.model}, H=${config.innerSteps}) at round ${c.coordinator.round}; contributors: tessera contribute --coordinator ${c.server.url}${turn ? `; each member gets its own TURN credentials for ${values.turn}` : ''}`);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  log('stopping');
  await c.stop();
  return 0;
}

/** The chain flags, validated, with the validator's hotkey loaded; null when not configured. */
export function chainSettings(values: { subtensor?: string; netuid?: string; 'version-key'?: string; hotkey?: string; 'password-file'?: string }): ChainSettings | null {
  const options = parseChainOptions({ subtensor: values.subtensor, netuid: values.netuid, versionKey: values['version-key'] });
  if (!options) {
    if (values.hotkey !== undefined) throw new ChainConfigError('--hotkey', 'signs chain weights, so it needs --subtensor and --netuid');
    return null;
  }
  if (values.hotkey === undefined) throw new ChainConfigError('--hotkey', "is needed with --subtensor: the validator's hotkey file (a mnemonic, a btcli hotkey file or a Tessera wallet), registered on the subnet");
  return { ...options, hotkey: loadHotkeyFile(values.hotkey, { passwordFile: values['password-file'] }) };
}

function positiveFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new CommandUsageError('coordinator', `${flag} must be a whole number ≥ 1, got '${value}'`, COORDINATOR_USAGE);
  return Number(value);
}
