// Weekly training windows in local time. A window belongs to the day it starts on, so
// Fri 22:00–07:00 covers Friday night and Saturday morning.
import type { ScheduleWindow } from '../contract.ts';

const TIME_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes since midnight of an 'HH:MM' string; throws a message naming the field. */
export function parseClock(value: unknown, field: string): number {
  const match = typeof value === 'string' ? TIME_RE.exec(value) : null;
  if (!match) throw new Error(`${field} must be a 24-hour time 'HH:MM' (e.g. '22:30'), got ${JSON.stringify(value)}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Checks one window's shape; returns a clean copy (days sorted, unique). */
export function validateScheduleWindow(value: unknown, field: string): ScheduleWindow {
  if (typeof value !== 'object' || value === null) throw new Error(`${field} must be an object { days, start, end }`);
  const { days, start, end } = value as Record<string, unknown>;
  if (!Array.isArray(days) || days.length === 0 || !days.every((d) => Number.isInteger(d) && d >= 0 && d <= 6)) {
    throw new Error(`${field}.days must be a non-empty list of weekdays 0 (Sunday) … 6 (Saturday)`);
  }
  const startMinutes = parseClock(start, `${field}.start`);
  const endMinutes = parseClock(end, `${field}.end`);
  if (startMinutes === endMinutes) throw new Error(`${field}: start and end are equal; use 00:00–23:59 for a whole day`);
  return { days: [...new Set(days as number[])].sort(), start: start as string, end: end as string };
}

/** Whether `now` (local time) falls inside any window. No windows means never. */
export function insideSchedule(windows: readonly ScheduleWindow[], now: Date): boolean {
  const day = now.getDay();
  const minute = now.getHours() * 60 + now.getMinutes();
  const yesterday = (day + 6) % 7;
  return windows.some((w) => {
    const start = parseClock(w.start, 'start');
    const end = parseClock(w.end, 'end');
    if (start < end) return w.days.includes(day) && minute >= start && minute < end;
    // Crosses midnight: the evening part today, or the morning part of a window that began yesterday.
    return (w.days.includes(day) && minute >= start) || (w.days.includes(yesterday) && minute < end);
  });
}
