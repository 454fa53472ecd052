// When a contributor's GPU may train: the pause schedule and the duty cycle (GPU budget). One
// rule for both shells — the web page (renderer/state/rules.ts, renderer/engine/throttle.ts)
// and the desktop app's main process (electron/services/citizen-policy.ts,
// training-supervisor.ts). Environment-free and clock-free: the caller reads its own clock and
// passes the instant (`at`, local time) or the measured busy time in, so tests use any date.
//
// Schedule. A window is weekly, in local time: the days it starts on (0 = Sunday … 6 =
// Saturday) and a start and end 'HH:MM', start-inclusive and end-exclusive. A window belongs to
// the day it starts on, so Fri 22:00–07:00 covers Friday night and Saturday morning, and
// Sat 20:00–02:00 carries into Sunday. The page's daily from/to is one window on every day
// (dailyWindow): weekly windows are the general form, and both shells evaluate that. A window
// whose end equals its start lasts 24 hours: the page has always read from = to as "all day"
// (the desktop's settings refuse such a window and ask for 00:00–23:59, so none is saved there).
//
// Duty cycle. Train at most p% of wall time: after d ms of GPU work the engine rests
// d·(100−p)/p ms, so over any run of steps GPU time / wall time ≤ p/100.

/** A weekly training window. end < start crosses midnight (22:00–07:00). */
export interface ScheduleWindow {
  /** Days on which the window starts: 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** 'HH:MM', 24-hour. */
  start: string;
  end: string;
}

/** When enabled, train only inside the windows; disabled, the schedule never holds training. */
export interface Schedule {
  enabled: boolean;
  windows: readonly ScheduleWindow[];
}

export const EVERY_DAY: readonly number[] = Object.freeze([0, 1, 2, 3, 4, 5, 6]);
const DAYS_PER_WEEK = 7;
const MINUTES_PER_DAY = 24 * 60;
const CLOCK_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Whether `value` is a 24-hour 'HH:MM' time. */
export function isClockTime(value: unknown): value is string {
  return typeof value === 'string' && CLOCK_TIME.test(value);
}

/** Minutes since midnight of an 'HH:MM' string; throws a message naming the field. */
export function parseClock(value: unknown, field: string): number {
  const match = typeof value === 'string' ? CLOCK_TIME.exec(value) : null;
  if (!match) throw new Error(`${field} must be a 24-hour time 'HH:MM' (e.g. '22:30'), got ${JSON.stringify(value)}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/**
 * Checks one window as a user saves it; returns a clean copy (days sorted, unique). Equal start
 * and end are refused here (a typo more often than a wish for 24 hours), though the rule reads
 * them as a whole day.
 */
export function validateScheduleWindow(value: unknown, field: string): ScheduleWindow {
  if (typeof value !== 'object' || value === null) throw new Error(`${field} must be an object { days, start, end }`);
  const { days, start, end } = value as Record<string, unknown>;
  if (!Array.isArray(days) || days.length === 0 || !days.every((d) => Number.isInteger(d) && d >= 0 && d < DAYS_PER_WEEK)) {
    throw new Error(`${field}.days must be a non-empty list of weekdays 0 (Sunday) … 6 (Saturday)`);
  }
  const startMinutes = parseClock(start, `${field}.start`);
  const endMinutes = parseClock(end, `${field}.end`);
  if (startMinutes === endMinutes) throw new Error(`${field}: start and end are equal; use 00:00–23:59 for a whole day`);
  return { days: [...new Set(days as number[])].sort(), start: start as string, end: end as string };
}

/** The page's daily from/to as a weekly window: the same hours on every day. */
export function dailyWindow(from: string, to: string): ScheduleWindow {
  return { days: [...EVERY_DAY], start: from, end: to };
}

/** Whether `w` covers `minute` (since midnight) of weekday `day`. */
function windowCovers(w: ScheduleWindow, day: number, minute: number): boolean {
  const start = parseClock(w.start, 'start');
  const end = parseClock(w.end, 'end');
  const length = (end - start + MINUTES_PER_DAY) % MINUTES_PER_DAY || MINUTES_PER_DAY;
  const yesterday = (day + DAYS_PER_WEEK - 1) % DAYS_PER_WEEK;
  // Begun today and not over yet, or begun yesterday and running past midnight into today.
  if (w.days.includes(day) && minute >= start && minute - start < length) return true;
  return w.days.includes(yesterday) && minute + MINUTES_PER_DAY - start < length;
}

/** Whether `at` (local time) falls inside any window. No windows means never. */
export function insideSchedule(windows: readonly ScheduleWindow[], at: Date): boolean {
  const day = at.getDay();
  const minute = at.getHours() * 60 + at.getMinutes();
  return windows.some((w) => windowCovers(w, day, minute));
}

/** Whether the schedule lets training run at `at`: always when it is off. */
export function scheduleAllows(schedule: Schedule, at: Date): boolean {
  return !schedule.enabled || insideSchedule(schedule.windows, at);
}

// ---- the duty cycle ----------------------------------------------------------------------------

/**
 * The budget's range, [10, 100]. Not lower: at 1% a 1 s step is followed by 99 s of rest, so a
 * round's inner steps take a hundred times their GPU time and the device mostly misses rounds
 * it still wakes the GPU for. 10% (a rest nine times the work) is the bottom of the page's
 * slider and what both shells' saved settings already hold (the page's stored settings and the
 * desktop's validator accept 10–100); the desktop's old clamp at 1% only guarded values its
 * settings refused anyway, so no saved setting changes meaning.
 */
export const MIN_DUTY_CYCLE_PERCENT = 10;
export const MAX_DUTY_CYCLE_PERCENT = 100;

/**
 * The longest one rest lasts. One very long piece of GPU work (a slow first compile, a driver
 * stall) would otherwise hold the next step for many minutes at a low budget — long enough for
 * the round to close without this device. It binds only for work over 60 s·p/(100−p) (6.7 s at
 * 10%, 90 s at 60%), so ordinary steps keep the budget exactly.
 */
export const MAX_REST_MS = 60_000;

/** A budget in whole percent within [MIN, MAX]; throws for a value that is not a number. */
export function clampDutyCycle(percent: number): number {
  if (!Number.isFinite(percent)) throw new RangeError(`the GPU budget must be a number of percent, got ${percent}`);
  return Math.min(MAX_DUTY_CYCLE_PERCENT, Math.max(MIN_DUTY_CYCLE_PERCENT, Math.round(percent)));
}

/** The rest (whole ms) after `busyMs` of GPU work so that busy time stays at `percent` of wall time. */
export function restAfterWork(busyMs: number, percent: number): number {
  if (!Number.isFinite(busyMs) || busyMs <= 0) return 0;
  const p = clampDutyCycle(percent);
  return Math.min(MAX_REST_MS, Math.round((busyMs * (100 - p)) / p));
}
