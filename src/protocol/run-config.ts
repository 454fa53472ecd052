// A run: what every member trains and how rounds are paced. The coordinator reads it from
// run.json (or defaults), serves it at GET /run, and every contributor validates it before
// training. Environment-free: the browser contributor checks the same way.
import { PRESETS, parameterLayout, preset, type ModelConfig, type PresetName } from '../model/config.ts';
import { ACTIVATION_MODES, type ActivationMode } from '../pipeline/activation-codec.ts';
import { DEFAULT_SPARSELOCO, type SparseLoCoSettings } from '../sparseloco/outer.ts';
import { isValidAddress } from '../wallet/keys.ts';

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface StageRange {
  from: number;
  to: number;
}

export interface RunConfig {
  /** Run id: names the run in every signed message, so messages of another run are refused. */
  run: string;
  /** What a volunteer is told before joining: a display name, one paragraph, who runs it and where to read more. */
  name: string;
  description: string;
  owner: string;
  /** An http(s) URL, or '' for none. */
  homepage: string;
  /** Tokens the whole swarm plans to train (0: the plan is `plannedRounds` only). */
  plannedTokens: number;
  /** Model preset. */
  model: PresetName;
  /** Pipeline stages (1: every contributor holds the whole model). */
  stages: number;
  /** The stages' layer ranges [from, to), contiguous from 0 to the model's layers; [] splits evenly. */
  stageRanges: StageRange[];
  /** Pipelined runs: micro-batches of `batch` sequences each stage-0 peer sends per inner step. */
  microBatches: number;
  /** Pipelined runs: encoding of activations and their gradients between stages. */
  activations: ActivationMode;
  /** Inner steps per round (Templar: 30). */
  innerSteps: number;
  /** Sequences per inner step and tokens per sequence. */
  batch: number;
  seq: number;
  /** Inner AdamW schedule: peak lr, warmup steps, and the run's planned rounds (cosine length). */
  lr: number;
  warmup: number;
  plannedRounds: number;
  /** Initialisation seed and data seed. */
  seed: number;
  sparseloco: SparseLoCoSettings;
  /** Seconds after a round starts by which updates must have reached the coordinator. */
  roundSeconds: number;
  /** Members send a heartbeat this often; one silent for `heartbeatMisses` beats is dropped. */
  heartbeatSeconds: number;
  heartbeatMisses: number;
  /** A round starts once this many members are ready. */
  minMembers: number;
  /** A member uploads θ_start to the coordinator every this many rounds (late joiners' fallback). */
  checkpointEvery: number;
  /**
   * Who uploads the checkpoint: 'rotate' (the asked member rotates over each commit's
   * members, so no one volunteer uploads every time) or an ss58 address (the operator's own
   * node, say), asked whenever it is a committed member of the round, else 'rotate'.
   */
  checkpointUploader: string;
  /** Bytes per checkpoint piece (content-addressed, fetched and verified piece by piece). */
  checkpointPieceBytes: number;
  /**
   * Updates a round's commit names (every replica fetches and applies exactly these; all of
   * them when fewer were delivered). Chosen by the validator's standing, with exploration so
   * newcomers get in: what a replica downloads and decodes per round stays K, not N.
   */
  gatherK: number;
  /** WebRTC links a contributor keeps at most (the coordinator picks them): not N − 1. */
  neighbours: number;
  /** Tokenizer of the data shard the coordinator serves. */
  tokenizer: 'bytes' | 'gpt2';
  /** STUN/TURN servers for WebRTC; none needed on loopback. */
  iceServers: IceServer[];
  /** Largest message a peer accepts, bytes. */
  maxMessageBytes: number;
  /** Rewards: rounds per epoch, and what an epoch pays out in all (shared by score). */
  epochRounds: number;
  emissionPerEpoch: number;
  /**
   * Rounds a round's reward is held in escrow before it is earned: an invalid or copied update
   * from the member within them forfeits what it holds (a stale replayer's honest first round,
   * rounds paid before an undersized update was caught). 0: earned at once (a round the member
   * was barred from: once the bar lifts; coordinator/escrow.ts).
   */
  rewardEscrowRounds: number;
  /** The unit rewards are counted in, shown beside every reward ('points'). */
  rewardUnit: string;
  /** What the unit is worth or maps to, in words (on a chain run: which subnet's weights). */
  rewardNote: string;
}

/** Default checkpoint piece: a 4 GB checkpoint is ~128 requests, each cheap to retry. */
export const CHECKPOINT_PIECE_BYTES = 32 * 1024 * 1024;
/** Bounds of a run's `checkpointPieceBytes` (tests use small pieces). */
export const MIN_CHECKPOINT_PIECE_BYTES = 4096;
export const MAX_CHECKPOINT_PIECE_BYTES = 64 * 1024 * 1024;

/** Bounds of gatherK and neighbours: what one replica fetches and links per round stays small. */
export const MAX_GATHER_K = 4096;
export const MAX_NEIGHBOURS = 256;

/** The longest escrow a run may set: past it a member waits most of a long run for its rewards. */
export const MAX_ESCROW_ROUNDS = 1000;

export const DEFAULT_RUN: Readonly<RunConfig> = Object.freeze({
  run: 'local',
  name: 'Local run',
  description: 'A run on this machine: a coordinator and its contributors train a small model together, for trying Tessera out.',
  owner: 'you',
  homepage: '',
  plannedTokens: 0,
  model: 'tiny',
  stages: 1,
  stageRanges: [],
  microBatches: 4,
  activations: 'f16',
  innerSteps: 30,
  batch: 8,
  seq: 64,
  lr: 3e-3,
  warmup: 10,
  plannedRounds: 100,
  seed: 1,
  sparseloco: { ...DEFAULT_SPARSELOCO },
  roundSeconds: 600,
  heartbeatSeconds: 5,
  // Generous: a GPU driver can hold a contributor's event loop for seconds (Dawn compiles
  // pipelines synchronously); a closed connection is noticed at once regardless.
  heartbeatMisses: 12,
  minMembers: 1,
  // A checkpoint is the whole model: uploaded every round it would be most of a volunteer's upload.
  checkpointEvery: 10,
  checkpointUploader: 'rotate',
  checkpointPieceBytes: CHECKPOINT_PIECE_BYTES,
  gatherK: 20,
  neighbours: 8,
  tokenizer: 'bytes',
  iceServers: [],
  maxMessageBytes: 64 * 1024 * 1024,
  epochRounds: 10,
  emissionPerEpoch: 1000,
  // The copy check looks back 4 rounds (copy-history.ts): a replay of round r is caught by round r + 4.
  rewardEscrowRounds: 4,
  rewardUnit: 'points',
  rewardNote: "Points of this run: a record of each contributor's share of the work, not money.",
});

/** A bad run config: `field` names what to fix. */
export class RunConfigError extends Error {
  override name = 'RunConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`run config: '${field}' ${message}`);
  }
}

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Fills defaults and validates every field; throws RunConfigError naming the first bad one. */
export function parseRunConfig(input: unknown): RunConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new RunConfigError('(root)', 'must be a JSON object');
  const raw = input as Record<string, unknown>;
  const known = new Set(Object.keys(DEFAULT_RUN));
  for (const k of Object.keys(raw)) if (!known.has(k)) throw new RunConfigError(k, `is not a run setting (known: ${[...known].join(', ')})`);
  const sl = raw.sparseloco;
  if (sl !== undefined && (sl === null || typeof sl !== 'object' || Array.isArray(sl))) throw new RunConfigError('sparseloco', 'must be an object of { alpha, beta, k }');
  for (const k of Object.keys(sl ?? {})) {
    if (!Object.hasOwn(DEFAULT_SPARSELOCO, k)) throw new RunConfigError(`sparseloco.${k}`, `is not a SparseLoCo setting (known: ${Object.keys(DEFAULT_SPARSELOCO).join(', ')})`);
  }
  // Nested values are copied: the config never shares an object with DEFAULT_RUN or the input.
  const c = { ...DEFAULT_RUN, ...raw, sparseloco: { ...DEFAULT_SPARSELOCO, ...(sl ?? {}) } } as RunConfig;
  if (typeof c.run !== 'string' || !RUN_ID.test(c.run)) throw new RunConfigError('run', 'must be 1–64 characters of A–Z a–z 0–9 . _ -, starting with a letter or digit');
  // Own keys only: 'toString' or '__proto__' are not presets.
  if (typeof c.model !== 'string' || !Object.hasOwn(PRESETS, c.model)) throw new RunConfigError('model', `must be one of ${Object.keys(PRESETS).join(', ')}`);
  const int = (field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new RunConfigError(field, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  };
  const pos = (field: string, v: unknown, max = Infinity) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) throw new RunConfigError(field, `must be a number in (0, ${max}], got ${JSON.stringify(v)}`);
  };
  const model = preset(c.model);
  int('stages', c.stages, 1, model.layers);
  if (c.stages > 1 && model.tiedEmbeddings) {
    throw new RunConfigError('stages', `> 1 needs a model with untied embeddings across peers; '${c.model}' ties them (use 'tiny', or stages: 1)`);
  }
  c.stageRanges = parseStageRanges(c.stageRanges, c.stages, model.layers);
  int('microBatches', c.microBatches, 1, 1024);
  if (!ACTIVATION_MODES.includes(c.activations)) throw new RunConfigError('activations', `must be one of ${ACTIVATION_MODES.join(', ')}, got ${JSON.stringify(c.activations)}`);
  int('innerSteps', c.innerSteps, 1, 100_000);
  int('batch', c.batch, 1, 4096);
  int('seq', c.seq, 1, preset(c.model).seqLen);
  pos('lr', c.lr, 1);
  int('warmup', c.warmup, 0);
  int('plannedRounds', c.plannedRounds, 1);
  int('seed', c.seed, 0, 2 ** 32 - 1);
  pos('sparseloco.alpha', c.sparseloco.alpha, 10);
  if (typeof c.sparseloco.beta !== 'number' || !(c.sparseloco.beta >= 0 && c.sparseloco.beta < 1)) throw new RunConfigError('sparseloco.beta', `must be in [0, 1), got ${JSON.stringify(c.sparseloco.beta)}`);
  int('sparseloco.k', c.sparseloco.k, 1, 4096);
  pos('roundSeconds', c.roundSeconds, 86_400);
  pos('heartbeatSeconds', c.heartbeatSeconds, 3600);
  int('heartbeatMisses', c.heartbeatMisses, 1, 1000);
  int('minMembers', c.minMembers, 1, 10_000);
  int('checkpointEvery', c.checkpointEvery, 1);
  if (c.checkpointUploader !== 'rotate' && !(typeof c.checkpointUploader === 'string' && isValidAddress(c.checkpointUploader))) {
    throw new RunConfigError('checkpointUploader', `must be 'rotate' or an ss58 address, got ${JSON.stringify(c.checkpointUploader)}`);
  }
  int('checkpointPieceBytes', c.checkpointPieceBytes, MIN_CHECKPOINT_PIECE_BYTES, MAX_CHECKPOINT_PIECE_BYTES);
  int('gatherK', c.gatherK, 1, MAX_GATHER_K);
  int('neighbours', c.neighbours, 1, MAX_NEIGHBOURS);
  if (c.tokenizer !== 'bytes' && c.tokenizer !== 'gpt2') throw new RunConfigError('tokenizer', `must be 'bytes' or 'gpt2', got ${JSON.stringify(c.tokenizer)}`);
  if (preset(c.model).vocabSize < 50257 && c.tokenizer === 'gpt2') throw new RunConfigError('tokenizer', `'gpt2' needs a model with a 50257-token vocabulary; '${c.model}' has ${preset(c.model).vocabSize}`);
  const optStr = (v: unknown) => v === undefined || typeof v === 'string';
  const iceOk = (s: IceServer) =>
    s !== null && typeof s === 'object' && (typeof s.urls === 'string' || (Array.isArray(s.urls) && s.urls.every((u) => typeof u === 'string'))) && optStr(s.username) && optStr(s.credential);
  if (!Array.isArray(c.iceServers) || !c.iceServers.every(iceOk)) {
    throw new RunConfigError('iceServers', 'must be a list of { urls, username?, credential? } (strings; urls may be a list)');
  }
  // A TURN password in the run config would reach every member and the public /run page.
  if (c.iceServers.some((s) => s.credential !== undefined)) {
    throw new RunConfigError('iceServers', 'must not hold a TURN credential (every member and the /run page would see it): start the coordinator with --turn instead, which gives each member short-lived credentials of its own');
  }
  c.iceServers = c.iceServers.map((s) => ({ ...s, urls: Array.isArray(s.urls) ? [...s.urls] : s.urls }));
  int('maxMessageBytes', c.maxMessageBytes, 1024, 2 ** 31);
  int('epochRounds', c.epochRounds, 1, 1_000_000);
  if (typeof c.emissionPerEpoch !== 'number' || !Number.isFinite(c.emissionPerEpoch) || c.emissionPerEpoch < 0) throw new RunConfigError('emissionPerEpoch', `must be a number ≥ 0, got ${JSON.stringify(c.emissionPerEpoch)}`);
  int('rewardEscrowRounds', c.rewardEscrowRounds, 0, MAX_ESCROW_ROUNDS);
  text('name', c.name, 1, 80);
  text('description', c.description, 0, 1000);
  text('owner', c.owner, 0, 120);
  text('rewardUnit', c.rewardUnit, 1, 24);
  text('rewardNote', c.rewardNote, 0, 300);
  if (typeof c.homepage !== 'string' || (c.homepage !== '' && !/^https?:\/\/[^\s]+$/.test(c.homepage))) throw new RunConfigError('homepage', `must be an http(s) URL or '', got ${JSON.stringify(c.homepage)}`);
  int('plannedTokens', c.plannedTokens, 0);
  return c;
}

/** Plain text of bounded length: no control characters, which a view would show as garbage. */
function text(field: string, v: unknown, min: number, max: number): void {
  // eslint-disable-next-line no-control-regex
  if (typeof v !== 'string' || v.length < min || v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new RunConfigError(field, `must be text of ${min}–${max} characters without control characters, got ${JSON.stringify(v)}`);
  }
}

function parseStageRanges(v: unknown, stages: number, layers: number): StageRange[] {
  if (!Array.isArray(v)) throw new RunConfigError('stageRanges', 'must be a list of { from, to } layer ranges ([] splits the layers evenly)');
  if (v.length === 0) return [];
  if (v.length !== stages) throw new RunConfigError('stageRanges', `names ${v.length} ranges for ${stages} stages`);
  let next = 0;
  const out: StageRange[] = [];
  for (const [i, r] of v.entries()) {
    const from = (r as StageRange | null)?.from;
    const to = (r as StageRange | null)?.to;
    if (from !== next || !Number.isInteger(to) || to! <= from || to! > layers) {
      throw new RunConfigError(`stageRanges[${i}]`, `must be { from: ${next}, to: ${next + 1}…${layers} } (contiguous, non-empty, ending at layer ${layers}), got ${JSON.stringify(r)}`);
    }
    out.push({ from, to: to! });
    next = to!;
  }
  if (next !== layers) throw new RunConfigError('stageRanges', `end at layer ${next}, not at the model's ${layers}`);
  return out;
}

/** The layer range of every stage: the configured ranges, or an even split. */
export function stageBounds(c: RunConfig): StageRange[] {
  if (c.stageRanges.length > 0) return c.stageRanges.map((r) => ({ ...r }));
  const L = preset(c.model).layers;
  return Array.from({ length: c.stages }, (_, s) => ({ from: Math.round((s * L) / c.stages), to: Math.round(((s + 1) * L) / c.stages) }));
}

/**
 * Bytes a peer of `stage` needs on its GPU, roughly: six f32 copies of the stage's parameters
 * (weights, gradients, AdamW m and v, θ_start, error feedback) plus one micro-batch's
 * activations (~16 floats per token and channel per layer, and the logits on the last stage).
 */
export function stageMemoryBytes(c: RunConfig, stage: number): number {
  const cfg = preset(c.model);
  const r = stageBounds(c)[stage];
  if (!r) throw new RangeError(`stage ${stage} of ${c.stages}`);
  const params = parameterLayout(cfg, r.from, r.to).reduce((n, s) => n + s.size, 0);
  const tokens = c.batch * c.seq;
  const activations = tokens * cfg.dim * 16 * (r.to - r.from) + (r.to === cfg.layers ? tokens * cfg.vocabSize * 2 : 0);
  return 4 * (6 * params + activations);
}

export function runModel(c: RunConfig): ModelConfig {
  return preset(c.model);
}
