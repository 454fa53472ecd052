import { describe, expect, it } from 'vitest';
import type { PauseReason } from '../../electron/contract.ts';
import { CitizenMonitor, pauseReasons, type MachineSnapshot } from '../../electron/services/citizen-policy.ts';
import { DEFAULT_SETTINGS } from '../../electron/services/settings.ts';
import { UNDETECTABLE_FULLSCREEN } from '../../electron/services/fullscreen-probe.ts';
import { FakeClock, FakePower, flush } from './doubles.ts';

const policy = { ...DEFAULT_SETTINGS, pauseOnBattery: true, pauseWhenUserActive: true, userIdleMinutes: 5, pauseWhenFullscreen: true };
const idleMachine: MachineSnapshot = { onBattery: false, idleSeconds: 3600, locked: false, fullscreenApp: false, now: new Date(2026, 0, 5, 12, 0), sleeping: false };

describe('pauseReasons (the good-citizen decision)', () => {
  it('trains on mains power with nobody at the machine', () => {
    expect(pauseReasons(policy, idleMachine)).toEqual([]);
  });

  it('on battery and the user active → paused, for both reasons', () => {
    expect(pauseReasons(policy, { ...idleMachine, onBattery: true, idleSeconds: 10 })).toEqual(['on-battery', 'user-active']);
  });

  it('the user is active until the idle time reaches the threshold they set', () => {
    expect(pauseReasons(policy, { ...idleMachine, idleSeconds: 5 * 60 - 1 })).toEqual(['user-active']);
    expect(pauseReasons(policy, { ...idleMachine, idleSeconds: 5 * 60 })).toEqual([]);
    expect(pauseReasons({ ...policy, userIdleMinutes: 30 }, { ...idleMachine, idleSeconds: 10 * 60 })).toEqual(['user-active']);
  });

  it('a locked screen counts as away even with recent input', () => {
    expect(pauseReasons(policy, { ...idleMachine, idleSeconds: 2, locked: true })).toEqual([]);
  });

  it('each pause is off when its setting is off', () => {
    const lax = { ...policy, pauseOnBattery: false, pauseWhenUserActive: false, pauseWhenFullscreen: false };
    expect(pauseReasons(lax, { ...idleMachine, onBattery: true, idleSeconds: 0, fullscreenApp: true })).toEqual([]);
  });

  it('a full-screen app pauses only when detected (null = cannot tell)', () => {
    expect(pauseReasons(policy, { ...idleMachine, fullscreenApp: true })).toEqual(['fullscreen-app']);
    expect(pauseReasons(policy, { ...idleMachine, fullscreenApp: null })).toEqual([]);
  });

  it('outside the schedule pauses; inside trains', () => {
    const nights = { ...policy, schedule: { enabled: true, windows: [{ days: [1], start: '22:00', end: '07:00' }] } };
    expect(pauseReasons(nights, { ...idleMachine, now: new Date(2026, 0, 5, 12, 0) })).toEqual(['outside-schedule']); // Monday noon
    expect(pauseReasons(nights, { ...idleMachine, now: new Date(2026, 0, 5, 23, 0) })).toEqual([]); // Monday 23:00
    expect(pauseReasons(nights, { ...idleMachine, now: new Date(2026, 0, 6, 6, 59) })).toEqual([]); // Tuesday morning
  });

  it('sleep pauses whatever else holds', () => {
    expect(pauseReasons(policy, { ...idleMachine, sleeping: true })).toEqual(['system-sleep']);
  });
});

describe('CitizenMonitor (polling powerMonitor)', () => {
  function setup(settings = policy) {
    const power = new FakePower();
    const clock = new FakeClock();
    const changes: PauseReason[][] = [];
    let suspends = 0;
    const monitor = new CitizenMonitor({
      power, clock, fullscreen: UNDETECTABLE_FULLSCREEN, settings: () => settings,
      onChange: (r) => changes.push(r), onSuspend: () => suspends++, pollMs: 5_000, resumeSettleMs: 10_000,
    });
    return { power, clock, changes, monitor, suspends: () => suspends };
  }

  it('reports only changes, and resumes once input has been idle for the threshold', async () => {
    const { power, clock, changes, monitor } = setup();
    power.idleSeconds = 20;
    monitor.start();
    await flush();
    expect(changes).toEqual([['user-active']]);
    clock.advance(5_000);
    await flush();
    expect(changes).toHaveLength(1); // still active: no repeat
    power.idleSeconds = 300;
    clock.advance(5_000);
    await flush();
    expect(changes).toEqual([['user-active'], []]);
  });

  it('unplugging re-evaluates at once, without waiting for the poll', async () => {
    const { power, changes, monitor } = setup();
    power.idleSeconds = 3600;
    monitor.start();
    await flush();
    power.onBattery = true;
    power.emit('on-battery');
    await flush();
    expect(changes.at(-1)).toEqual(['on-battery']);
  });

  it('suspend saves work and pauses; resume waits the settle delay before training again', async () => {
    const { power, clock, changes, monitor, suspends } = setup();
    power.idleSeconds = 3600;
    monitor.start();
    await flush();
    power.emit('suspend');
    await flush();
    expect(suspends()).toBe(1);
    expect(changes.at(-1)).toEqual(['system-sleep']);
    power.emit('resume');
    clock.advance(9_999);
    await flush();
    expect(monitor.current).toEqual(['system-sleep']);
    clock.advance(1);
    await flush();
    expect(monitor.current).toEqual([]);
    expect(changes.at(-1)).toEqual([]);
  });

  it('asks the full-screen probe only when the setting is on and the platform can tell', async () => {
    const power = new FakePower();
    power.idleSeconds = 3600;
    let checks = 0;
    const probe = { detectable: true, check: async () => (checks++, true) };
    const run = async (settings: typeof policy) => {
      const monitor = new CitizenMonitor({ power, clock: new FakeClock(), fullscreen: probe, settings: () => settings, onChange: () => {}, onSuspend: () => {} });
      return monitor.evaluate();
    };
    expect(await run(policy)).toEqual(['fullscreen-app']);
    expect(await run({ ...policy, pauseWhenFullscreen: false })).toEqual([]);
    expect(checks).toBe(1);
  });

  it('stop() clears its timers', async () => {
    const { clock, monitor } = setup();
    monitor.start();
    await flush();
    expect(clock.pending).toBe(1);
    monitor.stop();
    expect(clock.pending).toBe(0);
  });
});
