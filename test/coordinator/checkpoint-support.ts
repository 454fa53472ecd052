// Checkpoints for the checkpoint tests: a synthetic θ_start of the run's model (seeded
// values, as a replica's encodeWeights lays it out), its weights fingerprint, and a round
// driven on a coordinator so that a commit asks an uploader and its members report the weights.
import { parameterLayout } from '../../src/model/config.ts';
import { runModel, stageBounds, type RunConfig } from '../../src/protocol/run-config.ts';
import { encodeCheckpointParts } from '../../src/train/checkpoint.ts';
import { weightsFingerprint } from '../../src/train/weights-fingerprint.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { rng } from '../helpers/rng.ts';
import { joinAll, seal, modelUpdate, type Harness, type Peer } from './helpers.ts';

export interface SyntheticWeights {
  round: number;
  tensors: Map<string, Float32Array>;
  /** The checkpoint file (parts: large tensors are views, not copies). */
  parts: Uint8Array[];
  bytes: number;
  fingerprint: string;
}

/**
 * θ_start of `round` of the run's model (stage 0), seeded; with `fill`, a cheap pattern
 * around that value instead of random numbers (multi-GB sets): it never repeats within a
 * piece's span, so every piece differs and none is deduplicated by the content-addressed store.
 */
export async function syntheticWeights(config: RunConfig, round: number, seed = 1, fill?: number): Promise<SyntheticWeights> {
  const cfg = runModel(config);
  const r = stageBounds(config)[0];
  const u = rng(seed);
  const tensors = new Map<string, Float32Array>();
  let at = 0;
  for (const s of parameterLayout(cfg, r.from, r.to)) {
    const t = new Float32Array(s.size);
    if (fill === undefined) for (let i = 0; i < t.length; i++) t[i] = (u() - 0.5) * 0.1;
    else for (let i = 0; i < t.length; i++, at++) t[i] = fill + seed * 1e-3 + (at % 1_000_003) * 1e-9 + Math.floor(at / 1_000_003) * 1e-12;
    tensors.set(s.name, t);
  }
  const parts = encodeCheckpointParts({
    format: 1, model: cfg, from: r.from, to: r.to, step: 0, dataPosition: { round },
    tensors: new Map([...tensors].map(([n, t]) => [`param/${n}`, t])), meta: { run: config.run },
  });
  return { round, tensors, parts, bytes: parts.reduce((n, p) => n + p.length, 0), fingerprint: await weightsFingerprint(tensors) };
}

export function joined(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Round 0 on `h` with `keys` as members (checkpointEvery 1): all deliver, the commit asks an
 * uploader; then the members report θ_start(1) as `reported(address)`. Returns the peers and the asked key.
 */
export function roundWithAsk(h: Harness, keys: Hotkey[], reported: (address: string) => string): { peers: Peer[]; asked: Hotkey; others: Hotkey[] } {
  const peers = joinAll(h.coordinator, keys);
  for (const [i, p] of peers.entries()) p.binary(seal(p.key!, 0, modelUpdate(h.config, 0, i + 1), { run: h.config.run }));
  const commit = peers[0].last('commit');
  if (!commit?.checkpointBy) throw new Error(`round 0 did not commit with an uploader: ${JSON.stringify(commit)}`);
  for (const p of peers) p.synced(1, reported(p.address));
  const asked = keys.find((k) => k.address === commit.checkpointBy)!;
  return { peers, asked, others: keys.filter((k) => k !== asked) };
}

/** Resolves once `ok()` holds (checked every 10 ms), or throws after `ms`. */
export async function until(ok: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
