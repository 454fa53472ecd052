import { describe, expect, it } from 'vitest';
import type { ScheduleWindow as ContractWindow } from '../../electron/contract.ts';
import { insideSchedule, validateScheduleWindow, type ScheduleWindow } from '../../src/contributor/availability.ts';
import { pauseReasons } from '../../electron/services/citizen-policy.ts';
import { applySettingsPatch, DEFAULT_SETTINGS, SettingsStore } from '../../electron/services/settings.ts';
import { MemoryFiles } from './doubles.ts';

// 2026-01-05 is a Monday (getDay() = 1).
const at = (day: number, hh: number, mm = 0) => new Date(2026, 0, 4 + day, hh, mm);

describe('schedule', () => {
  it('a same-day window is start-inclusive and end-exclusive', () => {
    const work = [{ days: [1, 2, 3, 4, 5], start: '09:00', end: '17:30' }];
    expect(insideSchedule(work, at(1, 8, 59))).toBe(false);
    expect(insideSchedule(work, at(1, 9, 0))).toBe(true);
    expect(insideSchedule(work, at(1, 17, 29))).toBe(true);
    expect(insideSchedule(work, at(1, 17, 30))).toBe(false);
    expect(insideSchedule(work, at(0, 12))).toBe(false); // Sunday
  });

  it('a window crossing midnight belongs to the day it starts on', () => {
    const fridayNight = [{ days: [5], start: '22:00', end: '07:00' }];
    expect(insideSchedule(fridayNight, at(5, 23))).toBe(true);
    expect(insideSchedule(fridayNight, at(6, 6, 59))).toBe(true); // Saturday morning
    expect(insideSchedule(fridayNight, at(6, 23))).toBe(false); // Saturday night
    expect(insideSchedule(fridayNight, at(5, 6))).toBe(false); // Friday morning (Thursday's window)
  });

  it('Saturday night carries into Sunday morning (day 6 → 0)', () => {
    expect(insideSchedule([{ days: [6], start: '20:00', end: '02:00' }], at(7, 1))).toBe(true);
  });

  it('bad windows are refused with the field named', () => {
    expect(() => validateScheduleWindow({ days: [7], start: '09:00', end: '10:00' }, 'w')).toThrow(/w\.days/);
    expect(() => validateScheduleWindow({ days: [1], start: '9:00', end: '10:00' }, 'w')).toThrow(/w\.start.*HH:MM/);
    expect(() => validateScheduleWindow({ days: [1], start: '24:00', end: '10:00' }, 'w')).toThrow(/w\.start/);
    expect(() => validateScheduleWindow({ days: [1], start: '10:00', end: '10:00' }, 'w')).toThrow(/equal/);
    expect(validateScheduleWindow({ days: [3, 1, 3], start: '10:00', end: '11:00' }, 'w').days).toEqual([1, 3]);
  });

  it("the contract's window is the shared rule's (each type-checks as the other)", () => {
    const saved: ContractWindow = { days: [5], start: '22:00', end: '07:00' };
    const shared: ScheduleWindow = saved;
    const back: ContractWindow = shared;
    expect(back).toBe(saved);
  });

  it('a settings file saved before the rule moved to src/contributor loads, and its windows hold training as before', async () => {
    const files = new MemoryFiles();
    const saved = { ...DEFAULT_SETTINGS, schedule: { enabled: true, windows: [{ days: [5], start: '22:00', end: '07:00' }, { days: [0], start: '10:00', end: '12:00' }] }, gpuDutyCyclePercent: 10 };
    files.files.set('/data/settings.json', { data: JSON.stringify(saved, null, 2), mode: 0o600 });
    const loaded = await new SettingsStore(files, '/data/settings.json').load();
    expect(loaded).toEqual({ settings: saved, problem: null });
    const machine = { onBattery: false, idleSeconds: 0, locked: false, fullscreenApp: null, sleeping: false };
    expect(pauseReasons(loaded.settings, { ...machine, now: at(6, 6, 59) })).toEqual([]); // Saturday morning: Friday's night window
    expect(pauseReasons(loaded.settings, { ...machine, now: at(6, 7) })).toEqual(['outside-schedule']);
    expect(pauseReasons(loaded.settings, { ...machine, now: at(7, 11) })).toEqual([]); // the next Sunday
  });
});

describe('settings', () => {
  it('applies a valid patch and leaves the original alone', () => {
    const next = applySettingsPatch(DEFAULT_SETTINGS, { gpuDutyCyclePercent: 50, userIdleMinutes: 10, coordinatorUrl: 'wss://coord.example.org:443/ws' });
    expect(next.gpuDutyCyclePercent).toBe(50);
    expect(next.userIdleMinutes).toBe(10);
    expect(next.coordinatorUrl).toBe('wss://coord.example.org/ws');
    expect(DEFAULT_SETTINGS.gpuDutyCyclePercent).toBe(60);
  });

  it.each([
    [{ gpuDutyCyclePercent: 5 }, /gpuDutyCyclePercent must be a whole number from 10 to 100/],
    [{ gpuDutyCyclePercent: 50.5 }, /gpuDutyCyclePercent/],
    [{ userIdleMinutes: 0 }, /userIdleMinutes/],
    [{ coordinatorUrl: 'http://x:8787' }, /ws:\/\/ or wss:\/\//],
    [{ coordinatorUrl: 'not a url' }, /coordinatorUrl must be a URL/],
    [{ pauseOnBattery: 'yes' }, /pauseOnBattery must be true or false/],
    [{ gpuMode: 'metal' }, /gpuMode must be one of/],
    [{ schedule: { enabled: true, windows: [] } }, /never run/],
    [{ schemaVersion: 2 }, /unknown setting "schemaVersion"/],
    [{ nodeIntegration: true }, /unknown setting "nodeIntegration"/],
  ])('refuses %j', (patch, message) => {
    expect(() => applySettingsPatch(DEFAULT_SETTINGS, patch)).toThrow(message);
  });

  it('the store starts from defaults, writes atomically with mode 0600, and reads back', async () => {
    const files = new MemoryFiles();
    const store = new SettingsStore(files, '/data/settings.json');
    expect(await store.load()).toEqual({ settings: DEFAULT_SETTINGS, problem: null });
    await store.update({ pauseWhenUserActive: true });
    expect(files.files.has('/data/settings.json.tmp')).toBe(false);
    expect(files.files.get('/data/settings.json')!.mode).toBe(0o600);
    const again = new SettingsStore(files, '/data/settings.json');
    expect((await again.load()).settings.pauseWhenUserActive).toBe(true);
  });

  it('a failed write keeps the settings in memory unchanged', async () => {
    const files = new MemoryFiles();
    const store = new SettingsStore(files, '/data/settings.json');
    files.failWrites = true;
    await expect(store.update({ pauseOnBattery: false })).rejects.toThrow('disk full');
    expect(store.current.pauseOnBattery).toBe(true);
  });

  it('a broken file is kept aside, not lost, and defaults are used', async () => {
    const files = new MemoryFiles();
    files.files.set('/data/settings.json', { data: '{"schemaVersion":1,"gpuDutyCyclePercent":7}', mode: 0o600 });
    const loaded = await new SettingsStore(files, '/data/settings.json').load();
    expect(loaded.settings).toEqual(DEFAULT_SETTINGS);
    expect(loaded.problem).toMatch(/gpuDutyCyclePercent.*old file kept as \/data\/settings\.json\.broken-/);
    expect([...files.files.keys()].some((k) => k.startsWith('/data/settings.json.broken-'))).toBe(true);
  });
});
