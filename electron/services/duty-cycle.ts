// GPU duty-cycle cap: train at most p% of wall time. After a step of d ms the engine rests
// d·(100−p)/p ms, so over any run of steps GPU time / wall time ≤ p/100. The rest is capped so
// one very long step (a slow first compile) does not stall the next for minutes.

export const MAX_REST_MS = 60_000;

export function restAfterStep(stepMs: number, dutyCyclePercent: number): number {
  if (!Number.isFinite(stepMs) || stepMs <= 0) return 0;
  const percent = Math.min(100, Math.max(1, dutyCyclePercent));
  return Math.min(MAX_REST_MS, Math.round((stepMs * (100 - percent)) / percent));
}
