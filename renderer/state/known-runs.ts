// The list of known runs the network step offers: shipped with the app (known-runs.json) and
// refreshable from a URL the user sets. A list is data from elsewhere, so every entry is
// checked field by field: an entry with a bad field is dropped with a note saying which and
// why, the others are kept, and nothing in a list can crash the page or become a link other
// than http(s) or a coordinator other than ws(s)/http(s).
import { PRESETS } from '../../src/model/config.ts';
import shipped from '../known-runs.json';
import { plainText, safeHomepage } from './run-info.ts';
import { coordinatorSocketUrl } from './rules.ts';

export interface KnownRun {
  name: string;
  description: string;
  /** The coordinator's ws(s)://…/ws address (normalised from what the list says). */
  coordinator: string;
  owner: string;
  /** An http(s) URL, or ''. */
  homepage: string;
  /** The model preset the run trains ('' when the list does not say or names an unknown one). */
  model: string;
}

export interface KnownRunList {
  runs: KnownRun[];
  /** Why entries were dropped, one line each ("entry 3: 'coordinator' …"). */
  dropped: string[];
}

/** A list this long is not a list of runs: the rest is dropped (the note says so). */
export const MAX_KNOWN_RUNS = 200;
/** A refreshed list's body larger than this is refused before parsing. */
export const MAX_LIST_BYTES = 256 * 1024;

const RUN_FIELDS = new Set(['name', 'description', 'coordinator', 'owner', 'homepage', 'model']);

/** One entry, or the reason it is dropped. */
function entryOf(v: unknown): KnownRun | string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'is not an object';
  const e = v as Record<string, unknown>;
  const name = plainText(e.name, 80, '');
  if (!name) return "'name' must be text";
  // The scheme is required: a bare 'host:port' is fine typed by hand, but from a list 'javascript:1' would read as host 'javascript'.
  const coordinator = typeof e.coordinator === 'string' && e.coordinator.length <= 2048 && /^(wss?|https?):\/\//i.test(e.coordinator.trim()) ? coordinatorSocketUrl(e.coordinator) : null;
  if (!coordinator) return `'coordinator' must be a ws(s):// or http(s):// address, got ${JSON.stringify(String(e.coordinator)).slice(0, 80)}`;
  if (e.homepage !== undefined && e.homepage !== '' && !safeHomepage(e.homepage)) return "'homepage' must be an http(s) URL";
  if (e.model !== undefined && (typeof e.model !== 'string' || !Object.hasOwn(PRESETS, e.model))) return `'model' must be one of ${Object.keys(PRESETS).join(', ')}`;
  for (const k of ['description', 'owner'] as const) if (e[k] !== undefined && typeof e[k] !== 'string') return `'${k}' must be text`;
  const unknown = Object.keys(e).filter((k) => !RUN_FIELDS.has(k));
  if (unknown.length > 0) return `has fields a run entry does not have: ${unknown.slice(0, 5).join(', ')}`;
  return {
    name,
    description: plainText(e.description, 1000, ''),
    coordinator,
    owner: plainText(e.owner, 120, ''),
    homepage: safeHomepage(e.homepage),
    model: typeof e.model === 'string' ? e.model : '',
  };
}

/** The runs of a list (`{ "runs": [...] }` or a bare array), each checked; throws only when the whole is not a list. */
export function parseKnownRuns(body: unknown): KnownRunList {
  const list = Array.isArray(body) ? body : (body as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(list)) throw new Error('not a list of runs: expected { "runs": [ … ] }');
  const runs: KnownRun[] = [];
  const dropped: string[] = [];
  const seen = new Set<string>();
  for (const [i, v] of list.slice(0, MAX_KNOWN_RUNS).entries()) {
    const e = entryOf(v);
    if (typeof e === 'string') dropped.push(`entry ${i + 1}: ${e}`);
    else if (seen.has(e.coordinator)) dropped.push(`entry ${i + 1}: the same coordinator as an earlier entry`);
    else {
      seen.add(e.coordinator);
      runs.push(e);
    }
  }
  if (list.length > MAX_KNOWN_RUNS) dropped.push(`entries after the first ${MAX_KNOWN_RUNS} were not read`);
  return { runs, dropped };
}

/** The list this build ships (renderer/known-runs.json; empty: no public run is known to exist yet). */
export function shippedRuns(): KnownRunList {
  return parseKnownRuns(shipped);
}

/** Reads and checks a list at `url`; throws an Error whose message says, in words, why not. */
export async function fetchKnownRuns(url: string, fetchFn: typeof fetch = fetch): Promise<KnownRunList> {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new Error(`'${url}' is not an address`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error(`the list must come from an http(s) address, not ${parsed.protocol}`);
  let r: Response;
  try {
    r = await fetchFn(parsed.href, { cache: 'no-store', signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new Error(`could not reach ${parsed.host} (${(e as Error).message})`, { cause: e });
  }
  if (!r.ok) throw new Error(`${parsed.host} answered ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`);
  const text = await r.text();
  if (text.length > MAX_LIST_BYTES) throw new Error(`the list is larger than ${MAX_LIST_BYTES / 1024} KiB`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error('the answer is not JSON');
  }
  return parseKnownRuns(body);
}
