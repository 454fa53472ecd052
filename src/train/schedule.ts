// Learning-rate schedule: linear warmup from 0 to the peak, then cosine decay to a floor.

export interface LrSchedule {
  /** Peak learning rate, reached at the end of warmup. */
  peak: number;
  /** Steps of linear warmup. */
  warmup: number;
  /** Step at which the cosine reaches the floor (the run's length). */
  total: number;
  /** Floor as a fraction of the peak (0.1: decay to 10% of the peak). */
  minRatio: number;
}

/** Learning rate for 1-based `step`. After `total` it stays at the floor. */
export function learningRate(step: number, s: LrSchedule): number {
  if (step <= s.warmup) return (s.peak * step) / Math.max(1, s.warmup);
  const floor = s.peak * s.minRatio;
  const span = Math.max(1, s.total - s.warmup);
  const progress = Math.min(1, (step - s.warmup) / span);
  return floor + 0.5 * (s.peak - floor) * (1 + Math.cos(Math.PI * progress));
}
