import { describe, expect, it } from 'vitest';
import type { DesktopStatus, TrainingOrders } from '../../electron/contract.ts';
import { CrashRestarter } from '../../electron/services/crash-restart.ts';
import { restAfterWork, MAX_REST_MS } from '../../src/contributor/availability.ts';
import { SuspensionBlocker, type PowerSaveBlockerLike } from '../../electron/services/suspension-blocker.ts';
import { TrainingSupervisor } from '../../electron/services/training-supervisor.ts';
import { FakeClock } from './doubles.ts';

class FakeBlocker implements PowerSaveBlockerLike {
  active = new Set<number>();
  starts = 0;
  private next = 1;
  start(type: 'prevent-app-suspension' | 'prevent-display-sleep') {
    expect(type).toBe('prevent-app-suspension');
    this.starts++;
    this.active.add(this.next);
    return this.next++;
  }
  stop(id: number) {
    return this.active.delete(id);
  }
  isStarted(id: number) {
    return this.active.has(id);
  }
}

function setup(duty = 100) {
  const clock = new FakeClock();
  const blocker = new FakeBlocker();
  const suspension = new SuspensionBlocker(blocker);
  const orders: TrainingOrders[] = [];
  const statuses: DesktopStatus[] = [];
  let windows = 0;
  const supervisor: TrainingSupervisor = new TrainingSupervisor({
    settings: () => ({ coordinatorUrl: 'ws://127.0.0.1:8787/ws', gpuDutyCyclePercent: duty }),
    pushOrders: (o) => orders.push(o),
    publish: (s) => {
      statuses.push(s);
      suspension.update(supervisor.activelyTraining());
    },
    ensureTrainingWindow: () => windows++,
    noAdapterMessage: () => 'no adapter: try X',
    gpuPlan: 'Vulkan on (X11)',
    now: () => clock.ms,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  return { clock, blocker, orders, statuses, supervisor, windows: () => windows };
}

const step = { round: 1, step: 3, loss: 4.2, durationMs: 200, tokensPerSecond: 900 };
const training = { phase: 'training' as const, round: 1, step: 0, loss: null, tokensPerSecond: null };

describe('TrainingSupervisor', () => {
  it('Contribute opens the training window and orders training once the page is ready', () => {
    const { supervisor, orders, windows } = setup();
    expect(supervisor.status()).toMatchObject({ intent: 'stopped', tray: 'idle' });
    supervisor.contribute();
    expect(windows()).toBe(1);
    expect(orders).toHaveLength(0); // no page yet
    expect(supervisor.pageLoaded({ adapterFound: true, adapterName: 'RTX' }).run).toBe('train');
    expect(supervisor.status()).toMatchObject({ tray: 'training', gpu: { adapterFound: true, adapterName: 'RTX', plan: 'Vulkan on (X11)' } });
  });

  it('on battery + user active → paused with both reasons; resumes when both clear', () => {
    const { supervisor, orders } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.setPolicyReasons(['on-battery', 'user-active']);
    expect(orders.at(-1)!.run).toBe('pause');
    expect(supervisor.status()).toMatchObject({ tray: 'paused', pauseReasons: ['on-battery', 'user-active'] });
    supervisor.setPolicyReasons([]);
    expect(orders.at(-1)!.run).toBe('train');
  });

  it('a user pause outlasts the policy clearing; Resume lifts it', () => {
    const { supervisor } = setup();
    supervisor.contribute();
    supervisor.pause();
    supervisor.setPolicyReasons([]);
    expect(supervisor.status().pauseReasons).toEqual(['user-paused']);
    supervisor.resume();
    expect(supervisor.status().tray).toBe('training');
  });

  it('holds the power-save blocker only while actually training', () => {
    const { supervisor, blocker } = setup();
    supervisor.contribute();
    expect(blocker.active.size).toBe(0); // no page yet
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.phase({ ...training, phase: 'connecting' });
    expect(blocker.active.size).toBe(0); // connecting is not GPU work
    supervisor.phase(training);
    expect(blocker.active.size).toBe(1);
    supervisor.stepDone(step);
    expect(blocker.starts).toBe(1); // held, not restarted per step
    supervisor.setPolicyReasons(['on-battery']);
    expect(blocker.active.size).toBe(0);
    supervisor.setPolicyReasons([]);
    expect(blocker.active.size).toBe(1);
    supervisor.pause();
    expect(blocker.active.size).toBe(0);
  });

  it('Finish round then stop: keeps training until the round ends, then stops', () => {
    const { supervisor, orders } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.finishRoundThenStop();
    expect(orders.at(-1)!.run).toBe('finish-round-then-stop');
    expect(supervisor.status().tray).toBe('training');
    expect(supervisor.roundFinished(1).run).toBe('stop');
    expect(supervisor.status()).toMatchObject({ intent: 'stopped', tray: 'idle' });
  });

  it('the duty-cycle cap sets the rest after each step', () => {
    expect(setup(100).supervisor.stepDone(step).restMs).toBe(0);
    expect(setup(50).supervisor.stepDone(step).restMs).toBe(200);
    expect(setup(25).supervisor.stepDone(step).restMs).toBe(600);
    expect(restAfterWork(10 * 60_000, 10)).toBe(MAX_REST_MS);
    expect(restAfterWork(Number.NaN, 50)).toBe(0);
  });

  it('no WebGPU adapter → error state with the platform message, orders stop', () => {
    const { supervisor } = setup();
    supervisor.contribute();
    expect(supervisor.pageLoaded({ adapterFound: false, adapterName: null }).run).toBe('stop');
    expect(supervisor.status()).toMatchObject({ tray: 'error', error: 'no adapter: try X', gpu: { adapterFound: false, message: 'no adapter: try X' } });
    // Pressing Contribute again does not pretend: the message stays until the GPU mode changes.
    expect(supervisor.contribute()).toMatchObject({ tray: 'error', error: 'no adapter: try X' });
  });

  it('after giving up on crashes, Contribute clears the error and starts again', () => {
    const { supervisor, windows } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.pageLost();
    supervisor.fail('training failed 6 times');
    expect(supervisor.status().tray).toBe('error');
    expect(supervisor.contribute()).toMatchObject({ tray: 'training', error: null });
    expect(windows()).toBe(2);
  });

  it('quit asks for a checkpoint and waits for it', async () => {
    const { supervisor, orders } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.stepDone(step);
    const quitting = supervisor.prepareToQuit(15_000);
    const request = orders.at(-1)!.saveCheckpointRequest;
    expect(request).not.toBeNull();
    supervisor.checkpointSaved({ requestId: request, round: 1, step: 3 });
    expect(await quitting).toBe(true);
    expect(supervisor.status()).toMatchObject({ intent: 'stopped', lastCheckpoint: { round: 1, step: 3 } });
    expect(orders.at(-1)!.saveCheckpointRequest).toBeNull();
  });

  it('quit gives up waiting after the timeout; a stale acknowledgement does not count', async () => {
    const { supervisor, orders, clock } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.stepDone(step);
    const quitting = supervisor.prepareToQuit(15_000);
    const request = orders.at(-1)!.saveCheckpointRequest!;
    supervisor.checkpointSaved({ requestId: request + 1, round: 1, step: 3 });
    clock.advance(15_000);
    expect(await quitting).toBe(false);
  });

  it('nothing trained yet → nothing to save, quit is immediate', async () => {
    const { supervisor } = setup();
    expect(await supervisor.prepareToQuit()).toBe(true);
  });

  it('a lost page fails a pending save, and orders wait for the new page', async () => {
    const { supervisor, orders } = setup();
    supervisor.contribute();
    supervisor.pageLoaded({ adapterFound: true, adapterName: null });
    supervisor.stepDone(step);
    const saving = supervisor.requestCheckpoint(10_000);
    supervisor.pageLost();
    expect(await saving).toBe(false);
    const before = orders.length;
    supervisor.setRestarting(true);
    expect(orders.length).toBe(before);
    expect(supervisor.status()).toMatchObject({ tray: 'paused', pauseReasons: ['restarting'] });
    supervisor.setRestarting(false);
    expect(supervisor.pageLoaded({ adapterFound: true, adapterName: null })).toMatchObject({ run: 'train', resumeFromCheckpoint: true });
    expect(supervisor.status().restarts).toBe(1);
  });
});

describe('CrashRestarter', () => {
  function restarter(max = 3) {
    const clock = new FakeClock();
    let restarts = 0;
    let gaveUp: string | null = null;
    const r = new CrashRestarter({
      now: () => clock.ms, setTimeout: clock.setTimeout, restart: () => restarts++, giveUp: (m) => (gaveUp = m), maxRestarts: max, windowMs: 60_000, baseDelayMs: 1_000,
    });
    return { r, clock, restarts: () => restarts, gaveUp: () => gaveUp };
  }

  it('restarts after a crash with a doubling delay', () => {
    const { r, clock, restarts } = restarter();
    expect(r.failed('crashed')).toBe(1_000);
    expect(r.failed('crashed')).toBeNull(); // one already scheduled
    clock.advance(1_000);
    expect(restarts()).toBe(1);
    expect(r.failed('gpu-lost')).toBe(2_000);
    clock.advance(2_000);
    expect(restarts()).toBe(2);
  });

  it('a clean exit (our own close) is not a crash', () => {
    const { r, clock, restarts } = restarter();
    expect(r.failed('clean-exit')).toBeNull();
    clock.advance(60_000);
    expect(restarts()).toBe(0);
  });

  it('gives up after too many failures in the window, and counts afresh after it', () => {
    const { r, clock, gaveUp } = restarter(2);
    r.failed('crashed'); clock.advance(1_000);
    r.failed('oom'); clock.advance(2_000);
    expect(r.failed('gpu-lost', 'GPU process crashed')).toBeNull();
    expect(gaveUp()).toMatch(/3 times.*gpu-lost, GPU process crashed.*Contribute/);
    clock.advance(61_000);
    expect(r.failed('crashed')).toBe(1_000);
  });
});
