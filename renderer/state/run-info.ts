// What the page tells a volunteer about a run, read from its coordinator's GET /run: the shape
// the GPU check sizes, and what the run is (name, paragraph, owner, homepage, its plan and its
// reward unit). Read field by field: a coordinator older than these fields, or one sending
// odd values, gives the defaults for them, never a crash; a homepage is kept only when it is
// http(s), since the page makes it a link.
import { PRESETS, type PresetName } from '../../src/model/config.ts';
import { DEFAULT_RUN } from '../../src/protocol/run-config.ts';

export interface RunInfo {
  model: PresetName;
  batch: number;
  seq: number;
  /** Inner steps per round, for "step 2 of 3" (absent when unknown). */
  innerSteps?: number;
  /** Run id ('' when the coordinator did not say). */
  run: string;
  name: string;
  description: string;
  owner: string;
  /** An http(s) URL, or '' for none. */
  homepage: string;
  /** Rounds and tokens the run plans (0: not said). */
  plannedRounds: number;
  plannedTokens: number;
  rewardUnit: string;
  rewardNote: string;
  /** Pipeline stages (1: every contributor holds the whole model) and micro-batches per step. */
  stages: number;
  microBatches: number;
  /** A member uploads the whole model every this many rounds (0: not said). */
  checkpointEvery: number;
}

/** What the GPU check needs of a run (model, batch, sequence length), and whatever else is known of it. */
export type RunShape = Pick<RunInfo, 'model' | 'batch' | 'seq'> & Partial<RunInfo>;

const MAX_TEXT = 1000;

/** An http(s) URL (nothing else becomes a link: no javascript:, data: or file:), else ''. */
export function safeHomepage(v: unknown): string {
  if (typeof v !== 'string' || v.length > 2048) return '';
  try {
    const u = new URL(v.trim());
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
  } catch {
    return '';
  }
}

/** Plain text, trimmed, without control characters, at most `max` characters; `fallback` otherwise. */
export function plainText(v: unknown, max: number, fallback: string): string {
  if (typeof v !== 'string') return fallback;
  // eslint-disable-next-line no-control-regex
  const t = v.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return t === '' ? fallback : t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

/** The run as GET /run describes it, or null when its shape is not one this page can train. */
export function runInfoOf(body: unknown): RunInfo | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const r = body as Record<string, unknown>;
  if (typeof r.model !== 'string' || !Object.hasOwn(PRESETS, r.model)) return null;
  const batch = count(r.batch);
  const seq = count(r.seq);
  if (!batch || !seq) return null;
  const innerSteps = count(r.innerSteps);
  return {
    model: r.model as PresetName,
    batch,
    seq,
    ...(innerSteps ? { innerSteps } : {}),
    run: plainText(r.run, 64, ''),
    name: plainText(r.name, 80, plainText(r.run, 64, 'Unnamed run')),
    description: plainText(r.description, MAX_TEXT, ''),
    owner: plainText(r.owner, 120, ''),
    homepage: safeHomepage(r.homepage),
    plannedRounds: count(r.plannedRounds) ?? 0,
    plannedTokens: count(r.plannedTokens) ?? 0,
    // Every reward is shown with a unit: an older coordinator's are the default's, points.
    rewardUnit: plainText(r.rewardUnit, 24, DEFAULT_RUN.rewardUnit),
    rewardNote: plainText(r.rewardNote, 300, typeof r.rewardUnit === 'string' ? '' : DEFAULT_RUN.rewardNote),
    stages: count(r.stages) || 1,
    microBatches: count(r.microBatches) || 1,
    checkpointEvery: count(r.checkpointEvery) ?? 0,
  };
}

/** Tokens one inner step trains on this contributor: a stage-0 peer of a pipelined run sends several micro-batches. */
export function tokensPerStep(info: Pick<RunInfo, 'batch' | 'seq' | 'stages' | 'microBatches'>): number {
  return info.batch * info.seq * (info.stages > 1 ? info.microBatches : 1);
}
