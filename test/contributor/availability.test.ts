// The one availability rule both shells use (src/contributor/availability.ts): weekly schedule
// windows walked minute by minute on a fake clock across midnight and the week's end, the page's
// daily from/to as a window on every day, and the duty cycle's clamp and rest.
import { describe, expect, it } from 'vitest';
import {
  clampDutyCycle,
  dailyWindow,
  insideSchedule,
  isClockTime,
  MAX_DUTY_CYCLE_PERCENT,
  MAX_REST_MS,
  MIN_DUTY_CYCLE_PERCENT,
  restAfterWork,
  scheduleAllows,
  type ScheduleWindow,
} from '../../src/contributor/availability.ts';

const MINUTE_MS = 60_000;
const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** A local-time clock that only moves when told (2026-01-04 is a Sunday: day 0). */
function fakeClock(day: number, hh: number, mm = 0) {
  let t = new Date(2026, 0, 4 + day, hh, mm).getTime();
  return {
    now: () => new Date(t),
    advance(minutes: number) {
      t += minutes * MINUTE_MS;
    },
  };
}

/** The minutes (from the clock's start, every minute for `minutes`) at which `allowed` flips. */
function flips(clock: ReturnType<typeof fakeClock>, minutes: number, allowed: (at: Date) => boolean): string[] {
  const seen: string[] = [];
  let last = allowed(clock.now());
  for (let i = 0; i < minutes; i++) {
    clock.advance(1);
    const now = clock.now();
    const on = allowed(now);
    if (on !== last) seen.push(`${DAY_NAMES[now.getDay()]} ${String(now.getHours()).padStart(2, '0')}:${String(now.getMinutes()).padStart(2, '0')} ${on ? 'on' : 'off'}`);
    last = on;
  }
  return seen;
}

describe('schedule windows', () => {
  it('a window crossing midnight belongs to the day it starts on', () => {
    const fridayNight: ScheduleWindow[] = [{ days: [5], start: '22:00', end: '07:00' }];
    const clock = fakeClock(4, 12); // Thursday noon, walked for three days
    expect(insideSchedule(fridayNight, clock.now())).toBe(false);
    expect(flips(clock, 3 * 24 * 60, (at) => insideSchedule(fridayNight, at))).toEqual(['Fri 22:00 on', 'Sat 07:00 off']);
  });

  it('Saturday night carries into Sunday morning, across the week boundary (day 6 → 0)', () => {
    const saturdayNight: ScheduleWindow[] = [{ days: [6], start: '20:00', end: '02:00' }];
    const clock = fakeClock(6, 12);
    expect(flips(clock, 24 * 60, (at) => insideSchedule(saturdayNight, at))).toEqual(['Sat 20:00 on', 'Sun 02:00 off']);
    // …and a Sunday-night window does not reach back into Saturday.
    const sundayNight: ScheduleWindow[] = [{ days: [0], start: '23:00', end: '01:00' }];
    const back = fakeClock(6, 22); // Saturday 22:00 to Monday 02:00
    expect(flips(back, 28 * 60, (at) => insideSchedule(sundayNight, at))).toEqual(['Sun 23:00 on', 'Mon 01:00 off']);
  });

  it('same-day windows are start-inclusive and end-exclusive; several windows add up', () => {
    const windows: ScheduleWindow[] = [
      { days: [1, 2, 3, 4, 5], start: '09:00', end: '12:00' },
      { days: [1], start: '11:00', end: '13:30' },
    ];
    const clock = fakeClock(1, 0); // Monday 00:00, walked for two days
    expect(flips(clock, 2 * 24 * 60, (at) => insideSchedule(windows, at))).toEqual(['Mon 09:00 on', 'Mon 13:30 off', 'Tue 09:00 on', 'Tue 12:00 off']);
  });

  it('no windows means never; a disabled schedule always allows', () => {
    const at = fakeClock(3, 3).now();
    expect(insideSchedule([], at)).toBe(false);
    expect(scheduleAllows({ enabled: true, windows: [] }, at)).toBe(false);
    expect(scheduleAllows({ enabled: false, windows: [] }, at)).toBe(true);
  });

  it("the page's daily from/to is a window on every day, wrapping midnight each night", () => {
    const nights = { enabled: true, windows: [dailyWindow('22:00', '07:00')] };
    const clock = fakeClock(5, 12); // Friday noon, over the weekend into Monday
    expect(flips(clock, 3 * 24 * 60, (at) => scheduleAllows(nights, at))).toEqual(['Fri 22:00 on', 'Sat 07:00 off', 'Sat 22:00 on', 'Sun 07:00 off', 'Sun 22:00 on', 'Mon 07:00 off']);
  });

  it('a window whose end equals its start lasts 24 hours (the page reads from = to as all day)', () => {
    const allDay = { enabled: true, windows: [dailyWindow('08:00', '08:00')] };
    expect(flips(fakeClock(0, 0), 7 * 24 * 60, (at) => scheduleAllows(allDay, at))).toEqual([]);
    expect(scheduleAllows(allDay, fakeClock(0, 0).now())).toBe(true);
    const wednesday: ScheduleWindow[] = [{ days: [3], start: '08:00', end: '08:00' }];
    expect(flips(fakeClock(2, 12), 2 * 24 * 60, (at) => insideSchedule(wednesday, at))).toEqual(['Wed 08:00 on', 'Thu 08:00 off']);
  });

  it('knows a clock time', () => {
    expect(['00:00', '07:30', '23:59'].every(isClockTime)).toBe(true);
    expect(['24:00', '7:30', '07:60', '', 730, null].some(isClockTime)).toBe(false);
  });
});

describe('duty cycle', () => {
  it('clamps the budget to [10, 100] whole percent, and refuses what is not a number', () => {
    expect([MIN_DUTY_CYCLE_PERCENT, MAX_DUTY_CYCLE_PERCENT]).toEqual([10, 100]);
    expect(clampDutyCycle(1)).toBe(10);
    expect(clampDutyCycle(-5)).toBe(10);
    expect(clampDutyCycle(55.4)).toBe(55);
    expect(clampDutyCycle(250)).toBe(100);
    expect(() => clampDutyCycle(Number.NaN)).toThrow(/percent/);
    expect(() => clampDutyCycle(Number.POSITIVE_INFINITY)).toThrow(/percent/);
  });

  it('rests so busy time is the budget, at most a minute at once', () => {
    expect(restAfterWork(400, 100)).toBe(0);
    expect(restAfterWork(400, 50)).toBe(400);
    expect(restAfterWork(100, 25)).toBe(300);
    expect(restAfterWork(1000, 10)).toBe(9000);
    expect(restAfterWork(1000, 1)).toBe(9000); // clamped to 10%
    expect(restAfterWork(7, 60)).toBe(5); // whole ms
    expect(restAfterWork(10 * MINUTE_MS, 10)).toBe(MAX_REST_MS);
    expect(restAfterWork(0, 50)).toBe(0);
    expect(restAfterWork(-3, 50)).toBe(0);
    expect(restAfterWork(Number.NaN, 50)).toBe(0);
  });

  it('over a run of steps on a fake clock, GPU time is the budget of wall time', () => {
    let wall = 0;
    let busy = 0;
    for (const step of [120, 80, 200, 95, 150]) {
      busy += step;
      wall += step + restAfterWork(step, 40);
    }
    expect(busy / wall).toBeCloseTo(0.4, 2);
  });
});
