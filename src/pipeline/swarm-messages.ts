// What the peers of a pipelined swarm say to each other besides the hand-offs themselves
// (activations forward, gradients back: activation-codec.ts), and the pure rules
// swarm-peer.ts applies to it: the control messages ('done', 'drop', 'norm') as small JSON
// checked field by field, the clipping norm combined from every peer's 'norm' report, and
// the seeded tie-break that routes a micro-batch. Environment-free.

export type HandoffKind = 'activations' | 'grads' | 'control';

/** How a swarm peer reaches the others (the contributor seals these into signed envelopes). */
export interface SwarmTransport {
  /** Queues a message for `to`; false when there is no live link to it. */
  send(to: string, kind: HandoffKind, bytes: Uint8Array): boolean;
  isUp(peer: string): boolean;
}

/** Why a message stalled or failed a step. */
export class SwarmStepError extends Error {
  override name = 'SwarmStepError';
}

/** A peer's step, as it tells every other peer once its micro-batches are done. */
export interface NormReport {
  /** Σ g² over its gradients (0 when it processed nothing). */
  sq: number;
  /** Micro-batches it backwarded. */
  processed: number;
  /** The last stage's losses of the step, summed, and how many. */
  lossSum: number;
  lossCount: number;
}

export type Control =
  | { t: 'done'; round: number; step: number }
  | { t: 'drop'; round: number; step: number; id: number }
  | ({ t: 'norm'; round: number; step: number } & NormReport);

/** A control message longer than this is refused unread. */
const MAX_CONTROL_BYTES = 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeControl(c: Control): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

/** A received control message, every field checked; throws SwarmStepError. */
export function parseControl(bytes: Uint8Array): Control {
  let c: Record<string, unknown>;
  try {
    if (bytes.length > MAX_CONTROL_BYTES) throw new Error('too long');
    c = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new SwarmStepError('control message is not JSON');
  }
  const u32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
  const fin = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (c === null || typeof c !== 'object' || !u32(c.round) || !u32(c.step)) throw new SwarmStepError('control message without round and step');
  if (c.t === 'done') return c as Control;
  if (c.t === 'drop' && u32(c.id)) return c as Control;
  if (c.t === 'norm' && fin(c.sq) && u32(c.processed) && fin(c.lossSum) && u32(c.lossCount)) return c as Control;
  throw new SwarmStepError(`bad control message '${String(c.t)}'`);
}

/**
 * The step's clipping norm, √(Σ over stages of the mean Σg² of that stage's peers that
 * processed something), and the mean loss over every last-stage report (null: none). With one
 * peer per stage the norm is exactly the whole model's global norm.
 */
export function combineNorms(members: readonly (readonly string[])[], norms: ReadonlyMap<string, NormReport>): { gradNorm: number; loss: number | null } {
  let squares = 0;
  let lossSum = 0;
  let lossCount = 0;
  for (const stagePeers of members) {
    const reports = stagePeers.map((p) => norms.get(p)).filter((r): r is NormReport => r !== undefined);
    const active = reports.filter((r) => r.processed > 0);
    if (active.length > 0) squares += active.reduce((a, r) => a + r.sq, 0) / active.length;
    for (const r of reports) {
      lossSum += r.lossSum;
      lossCount += r.lossCount;
    }
  }
  return { gradNorm: Math.sqrt(squares), loss: lossCount > 0 ? lossSum / lossCount : null };
}

/** A deterministic pseudo-random order of peers for one micro-batch (FNV-1a). */
export function tieBreak(seed: number, id: number, peer: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  const s = `${id}:${peer}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
