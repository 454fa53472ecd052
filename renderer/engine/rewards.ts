// A wallet's standing at a coordinator, read over HTTP: GET /run names the run, then
// GET /rewards/<address>?t=&sig= signed by the hotkey over rewardsRequest(run, address, t)
// (src/coordinator/rewards-api.ts checks it). Environment-free: fetch and the clock come in.
import { toHex } from '../../src/base/hex.ts';
import { rewardsRequest, type Standing } from '../../src/protocol/messages.ts';

export interface RewardsSigner {
  readonly address: string;
  sign(message: Uint8Array): Uint8Array;
}

/** The standing, or null when the coordinator keeps no rewards (it does not validate) or none for us yet. */
export async function readStanding(key: RewardsSigner, coordinator: string, fetchFn: typeof fetch = fetch, now: () => number = Date.now): Promise<Standing | null> {
  const base = coordinator.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
  const get = (path: string) => fetchFn(`${base}${path}`, { cache: 'no-store', signal: AbortSignal.timeout(10_000) });
  const runResponse = await get('/run');
  if (!runResponse.ok) throw new Error(`${base}/run: HTTP ${runResponse.status}`);
  const run = ((await runResponse.json()) as { run?: unknown }).run;
  if (typeof run !== 'string') throw new Error(`${base}/run did not name its run`);
  const t = now();
  const sig = toHex(key.sign(rewardsRequest(run, key.address, t)));
  const r = await get(`/rewards/${key.address}?t=${t}&sig=${sig}`);
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`the coordinator's rewards: HTTP ${r.status} ${await r.text()}`);
  return ((await r.json()) as { standing?: Standing | null }).standing ?? null;
}
