// Pure pieces of the UI: settings migration and validation, the IndexedDB schema, the
// schedule, coordinator addresses, mnemonic confirmation, the GPU throttle (on a fake clock),
// error kinds, and the memory estimate.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, SETTINGS_SCHEMA, SettingsVersionError, UiDb, migrateSettings } from '../../renderer/state/db.ts';
import { checkConfirmation, coordinatorHttpUrl, coordinatorSocketUrl, runShapeOf, inSchedule, pauseReason, pickConfirmation, shouldPause } from '../../renderer/state/rules.ts';
import { GpuThrottle, type Clock } from '../../renderer/engine/throttle.ts';
import { isBlockedLink, isRetryable, toWireError } from '../../renderer/engine/errors.ts';
import { formatBytes, trainingMemory } from '../../renderer/engine/memory.ts';
import { retryDelayMs } from '../../renderer/engine/messages.ts';
import { CoordinatorError } from '../../src/net/signaling.ts';
import { WalletError } from '../../src/wallet/keys.ts';
import { NoGpuError } from '../../src/gpu/errors.ts';
import { freshDbName } from './fakes.ts';

describe('settings', () => {
  it('fills defaults for a missing record and for each bad field, keeping the good ones', () => {
    expect(migrateSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    const s = migrateSettings({ schema: 1, dutyCycle: 250, pauseWhenHidden: true, logLevel: 'loud', network: 'custom', coordinatorUrl: 'ws://x:1/ws', schedule: { enabled: true, from: '25:00', to: '06:30' } });
    expect(s).toMatchObject({ dutyCycle: 60, pauseWhenHidden: true, logLevel: 'info', network: 'custom', coordinatorUrl: 'ws://x:1/ws', schedule: { enabled: true, from: '22:00', to: '06:30' } });
  });

  it('refuses a record from a newer version, and the database then leaves it alone', async () => {
    expect(() => migrateSettings({ schema: SETTINGS_SCHEMA + 1 })).toThrow(SettingsVersionError);
    const name = freshDbName();
    const db = new UiDb(indexedDB, name);
    await db.saveSettings({ ...DEFAULT_SETTINGS, dutyCycle: 30 });
    expect((await db.loadSettings()).dutyCycle).toBe(30);
    // Written by "a newer Tessera": put a schema-2 record directly.
    const raw = await new Promise<IDBDatabase>((ok, fail) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    await new Promise<void>((ok) => {
      const tx = raw.transaction('settings', 'readwrite');
      tx.objectStore('settings').put({ schema: SETTINGS_SCHEMA + 1, dutyCycle: 55 }, 'current');
      tx.oncomplete = () => ok();
    });
    raw.close();
    await db.close();
    const again = new UiDb(indexedDB, name);
    await expect(again.loadSettings()).rejects.toThrow(/newer Tessera/);
    await again.saveSettings({ ...DEFAULT_SETTINGS, dutyCycle: 80 }); // refused quietly: nothing lost
    await again.close();
    const third = new UiDb(indexedDB, name);
    await expect(third.loadSettings()).rejects.toThrow(/schema 2/);
  });

  it('stores history and session across connections', async () => {
    const name = freshDbName();
    const db = new UiDb(indexedDB, name);
    expect(await db.loadHistory()).toEqual({ run: '', losses: [], rewards: [] });
    await db.saveHistory({ run: 'r', losses: [{ round: 0, step: 1, loss: 5, at: 1 }], rewards: [] });
    await db.saveSession({ contributing: true });
    await db.close();
    const again = new UiDb(indexedDB, name);
    expect((await again.loadHistory()).losses).toHaveLength(1);
    expect(await again.loadSession()).toEqual({ contributing: true });
  });
});

describe('rules', () => {
  it('schedules within a day and across midnight', () => {
    const at = (h: number, m = 0) => new Date(2026, 0, 1, h, m);
    const night = { enabled: true, from: '22:00', to: '07:00' };
    expect(inSchedule(night, at(23))).toBe(true);
    expect(inSchedule(night, at(3))).toBe(true);
    expect(inSchedule(night, at(7))).toBe(false);
    expect(inSchedule(night, at(12))).toBe(false);
    const day = { enabled: true, from: '09:00', to: '17:30' };
    expect(inSchedule(day, at(17, 29))).toBe(true);
    expect(inSchedule(day, at(17, 30))).toBe(false);
    expect(inSchedule({ ...day, enabled: false }, at(3))).toBe(true);
    const s = { ...DEFAULT_SETTINGS, schedule: day };
    expect(shouldPause(s, { hidden: false, onBattery: false }, false, at(3))).toBe(true);
    expect(pauseReason(s, { hidden: false, onBattery: false }, false, at(3))).toMatch(/outside the schedule/);
    expect(pauseReason(s, { hidden: false, onBattery: false }, true, at(3))).toBe('paused by you');
  });

  it("reads a saved daily from/to through the desktop's weekly rule: every night, from = to all day", () => {
    // A schema-1 record as the page has always stored it: the shape is unchanged, so it loads as it was.
    const saved = migrateSettings({ schema: 1, dutyCycle: 10, schedule: { enabled: true, from: '22:00', to: '07:00' } });
    expect(saved).toMatchObject({ dutyCycle: 10, schedule: { enabled: true, from: '22:00', to: '07:00' } });
    for (let day = 4; day < 11; day++) {
      // Sunday 2026-01-04 to Saturday: each night, whatever the weekday, including Saturday into Sunday.
      expect(inSchedule(saved.schedule, new Date(2026, 0, day, 23, 30))).toBe(true);
      expect(inSchedule(saved.schedule, new Date(2026, 0, day + 1, 6, 59))).toBe(true);
      expect(inSchedule(saved.schedule, new Date(2026, 0, day, 12))).toBe(false);
    }
    const allDay = { enabled: true, from: '08:00', to: '08:00' };
    expect([0, 8, 16, 23].every((h) => inSchedule(allDay, new Date(2026, 0, 4, h, 59)))).toBe(true);
  });

  it('reads coordinator addresses as a user types them', () => {
    expect(coordinatorSocketUrl('ws://host:8787/ws')).toBe('ws://host:8787/ws');
    expect(coordinatorSocketUrl('http://host:8787')).toBe('ws://host:8787/ws');
    expect(coordinatorSocketUrl('https://run.example.org/')).toBe('wss://run.example.org/ws');
    expect(coordinatorSocketUrl('host:8787')).toBe('ws://host:8787/ws');
    expect(coordinatorSocketUrl('ftp://host')).toBeNull();
    expect(coordinatorSocketUrl('')).toBeNull();
    expect(coordinatorSocketUrl('http://')).toBeNull();
    expect(coordinatorHttpUrl('wss://run.example.org/ws')).toBe('https://run.example.org');
    expect(coordinatorHttpUrl('ws://127.0.0.1:8781/ws')).toBe('http://127.0.0.1:8781');
  });

  it('reads the run shape from GET /run, refusing unknown models', () => {
    expect(runShapeOf({ model: 'small', batch: 8, seq: 512, run: 'x' })).toEqual({ model: 'small', batch: 8, seq: 512 });
    expect(runShapeOf({ model: 'tiny', batch: 2, seq: 32, innerSteps: 3 })).toEqual({ model: 'tiny', batch: 2, seq: 32, innerSteps: 3 });
    expect(runShapeOf({ model: 'toString', batch: 8, seq: 512 })).toBeNull();
    expect(runShapeOf({ model: 'tiny', batch: 0, seq: 32 })).toBeNull();
    expect(runShapeOf(null)).toBeNull();
  });

  it('asks back distinct words and checks them ignoring case and spaces', () => {
    const picks = pickConfirmation(12, 3);
    expect(new Set(picks).size).toBe(3);
    expect(picks.every((p) => p >= 0 && p < 12)).toBe(true);
    expect(checkConfirmation('a b c d', [1, 3], ['B ', ' d'])).toBe(true);
    expect(checkConfirmation('a b c d', [1, 3], ['b', 'c'])).toBe(false);
    expect(checkConfirmation('a b c d', [1, 3], ['b'])).toBe(false);
  });

  it('sorts engine errors into kinds', () => {
    expect(toWireError(new NoGpuError('none')).kind).toBe('no-webgpu');
    expect(toWireError(new WalletError('wrong password for x')).kind).toBe('wrong-password');
    expect(toWireError(new WalletError('damaged')).kind).toBe('wallet');
    expect(toWireError(new CoordinatorError('down', true)).kind).toBe('unreachable');
    expect(toWireError(new CoordinatorError('refused', false)).kind).toBe('refused');
    expect(isRetryable(new CoordinatorError('down', true))).toBe(true);
    expect(isRetryable(new TypeError('Failed to fetch'))).toBe(true);
    expect(isRetryable(new Error('bug'))).toBe(false);
    expect(isBlockedLink('not connected within 30000 ms')).toBe(true);
    expect(isBlockedLink('ERR_ICE_CONNECTION_FAILURE: Ice connection failed.')).toBe(true);
    expect(isBlockedLink('closed by the remote peer')).toBe(false);
    expect(isBlockedLink('cannot create a WebRTC connection: No WebRTC support')).toBe(false);
    expect([0, 1, 2, 5, 9].map(retryDelayMs)).toEqual([1000, 2000, 4000, 30_000, 30_000]);
  });

  it('estimates training memory from the model shape', () => {
    const tiny = trainingMemory('tiny', 2, 32);
    expect(tiny.parameters).toBeGreaterThan(50_000);
    expect(tiny.totalBytes).toBeGreaterThan(tiny.parameters * 7 * 4);
    expect(trainingMemory('base', 8, 1024).totalBytes).toBeGreaterThan(124e6 * 7 * 4);
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 2 ** 30)).toBe('3.0 GiB');
  });
});

describe('GPU throttle', () => {
  /** A clock that only moves when a sleeper is due or the test advances it. */
  const fakeClock = () => {
    let t = 0;
    const sleepers: { until: number; resolve: () => void }[] = [];
    const clock: Clock & { advance(ms: number): Promise<void>; t(): number } = {
      now: () => t,
      sleep: (ms, wake) =>
        new Promise<void>((resolve) => {
          const s = { until: t + ms, resolve };
          sleepers.push(s);
          wake(() => {
            sleepers.splice(sleepers.indexOf(s), 1);
            resolve();
          });
        }),
      async advance(ms) {
        t += ms;
        for (const s of [...sleepers]) if (s.until <= t) {
          sleepers.splice(sleepers.indexOf(s), 1);
          s.resolve();
        }
        await new Promise((r) => setTimeout(r, 0));
      },
      t: () => t,
    };
    return clock;
  };

  it('rests after GPU work so busy time is the budget, and holds while paused', async () => {
    const clock = fakeClock();
    const throttle = new GpuThrottle(clock);
    throttle.setPercent(25);
    let restDone = false;
    void throttle.rest(100).then(() => (restDone = true)); // 100 ms busy at 25%: 300 ms rest
    await clock.advance(299);
    expect(restDone).toBe(false);
    await clock.advance(1);
    expect(restDone).toBe(true);

    const seen: boolean[] = [];
    const paused = new GpuThrottle(clock, (p) => seen.push(p));
    paused.setPaused(true);
    let through = false;
    void paused.gate().then(() => (through = true));
    await clock.advance(120_000);
    expect(through).toBe(false);
    paused.setPaused(false);
    await clock.advance(0);
    expect(through).toBe(true);
    expect(seen).toEqual([true, false]);
    expect(() => throttle.setPercent(Number.NaN)).toThrow(/percent/);
  });

  it('reports the busy share of the last minute', async () => {
    const clock = fakeClock();
    const throttle = new GpuThrottle(clock);
    throttle.setPercent(50);
    await clock.advance(100); // 100 ms of GPU work just ended
    const rest = throttle.rest(100); // …so 100 ms of rest
    await clock.advance(100);
    await rest;
    expect(throttle.share).toBeCloseTo(0.5, 5);
    await clock.advance(120_000); // idle for two minutes: the window holds no work
    expect(throttle.share).toBe(0);
    throttle.resetShare();
    expect(throttle.share).toBe(0);
  });

  it('cuts a rest short when the budget changes', async () => {
    const clock = fakeClock();
    const throttle = new GpuThrottle(clock);
    throttle.setPercent(10);
    let done = false;
    void throttle.rest(1000).then(() => (done = true)); // 9 s rest
    await clock.advance(100);
    throttle.setPercent(100);
    await clock.advance(0);
    expect(done).toBe(true);
  });

  it("rests at most a minute after one long piece of GPU work, and holds the budget to 10–100% (the desktop's rule too)", async () => {
    const clock = fakeClock();
    const throttle = new GpuThrottle(clock);
    throttle.setPercent(3); // below the range: 10%
    let done = false;
    void throttle.rest(10 * 60_000).then(() => (done = true)); // 10 min at 10% would be 90 min of rest
    await clock.advance(59_999);
    expect(done).toBe(false);
    await clock.advance(1);
    expect(done).toBe(true);
    let short = false;
    void throttle.rest(1000).then(() => (short = true)); // 1 s at 10%: 9 s (at 3% it would be 32 s)
    await clock.advance(9000);
    expect(short).toBe(true);
  });
});
