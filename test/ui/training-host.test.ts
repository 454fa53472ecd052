// The desktop training window's host (renderer/desktop/training-host.ts) on a scripted engine
// and a recording window.tesseraTraining: it says ready with what the GPU check found, starts
// on 'train', holds the engine after each step until stepDone has answered and its restMs has
// passed, obeys pause / resume / finish / stop orders pushed later, answers a checkpoint
// request, and reports phases, rounds and a lost GPU.
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../renderer/engine/messages.ts';
import { NO_SECRET_MESSAGE, TrainingHost } from '../../renderer/desktop/training-host.ts';
import { GpuThrottle } from '../../renderer/engine/throttle.ts';
import { FakeTrainingApi } from './desktop-doubles.ts';
import { ADDRESS, MNEMONIC, ScriptedEngine, joined, settle } from './fakes.ts';

function setUp(o: { adapter?: boolean } = {}) {
  const api = new FakeTrainingApi();
  const engine = new ScriptedEngine();
  const slept: number[] = [];
  engine.answer('useSecret', { name: 'default', address: ADDRESS });
  engine.answer('releaseStep', {});
  if (o.adapter === false) engine.answer('checkGpu', { available: false, adapter: '', isSoftware: false, maxBufferBytes: 0, needBytes: 1, largestTensorBytes: 1, model: 'tiny', problem: 'WebGPU is not available' });
  // Stopping now ends the contribution as the worker does: the contributor saves and says so.
  engine.answer('stop', ({ mode }) => {
    if (mode === 'now') queueMicrotask(() => engine.emit({ event: 'stopped', round: 4, saved: true }, { event: 'ended', error: null }));
    return {};
  });
  const host = new TrainingHost({ api, engine, sleep: async (ms) => void slept.push(ms) });
  return { api, engine, host, slept };
}

const step = (round: number, n: number, loss: number): EngineEvent[] => [
  { event: 'step', round, step: n, loss, tokensPerSecond: 640 },
  { event: 'held', busyMs: 25 },
];

/** Ready, trained up to a round: the engine is running. */
async function running() {
  const t = setUp();
  await t.host.start();
  t.engine.emit({ event: 'connecting', url: 'ws://127.0.0.1:8787/ws', attempt: 0 }, joined('r', 4), { event: 'synced', round: 4, source: 'coordinator', weightsHash: 'h' }, { event: 'round', round: 4, members: 1 });
  await settle();
  return t;
}

describe('the training window host', () => {
  it('says ready with the adapter, and starts the engine with the saved secret on a train order', async () => {
    const { api, engine, host } = setUp();
    await host.start();
    expect(api.callsOf('ready')).toEqual([{ adapterFound: true, adapterName: 'google swiftshader [software: CPU speeds]' }]);
    expect(engine.callsOf('useSecret')).toEqual([{ secret: MNEMONIC }]);
    expect(engine.callsOf('start')).toEqual([{ coordinator: 'ws://127.0.0.1:8787/ws', dutyCycle: 100, paused: false, holdEachStep: true }]);
  });

  it('reports no adapter, and a missing wallet secret as a failure without starting', async () => {
    const { api, engine, host } = setUp({ adapter: false });
    api.secret = null;
    await host.start();
    expect(api.callsOf('ready')).toEqual([{ adapterFound: false, adapterName: null }]);
    expect(api.callsOf('reportFailure')).toEqual([{ kind: 'fatal', message: NO_SECRET_MESSAGE }]);
    expect(engine.callsOf('start')).toEqual([]);
  });

  it('after each step: stepDone with the loss and GPU time, rests restMs, then releases the engine', async () => {
    const { api, engine, slept } = await running();
    engine.emit(...step(4, 1, 5.25));
    await settle();
    expect(api.callsOf('stepDone')).toEqual([{ round: 4, step: 1, loss: 5.25, durationMs: 25, tokensPerSecond: 640 }]);
    expect(slept).toEqual([120]);
    expect(engine.callsOf('releaseStep')).toHaveLength(1);
    expect(api.callsOf('reportPhase').map((r) => (r as { phase: string }).phase)).toEqual(['connecting', 'syncing', 'waiting', 'training']);
  });

  it('a pushed pause holds the engine; a step then in flight stays held; resume lets it go', async () => {
    const { api, engine } = await running();
    api.push({ run: 'pause' });
    await settle();
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }]);
    engine.emit(...step(4, 1, 5.2)); // finished before the pause reached the GPU
    await settle();
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }]); // stepDone's orders say pause too: still held
    api.push({ run: 'train' });
    await settle();
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }, { paused: false }]);
  });

  it('finish-round-then-stop stops after the round, which it reports; a stop order stops now', async () => {
    const { api, engine } = await running();
    api.push({ run: 'finish-round-then-stop' });
    await settle();
    expect(engine.callsOf('stop')).toEqual([{ mode: 'after-round' }]);
    engine.emit({ event: 'commit', round: 4, trained: true, loss: 5, included: 1, fromPeers: 0, fetched: 0, bytesUp: 10, bytesDown: 10, peers: 0, rejected: {}, weightsHash: 'h' });
    await settle();
    expect(api.callsOf('roundFinished')).toEqual([{ round: 4 }]);
    engine.emit({ event: 'stopped', round: 5, saved: true }, { event: 'ended', error: null });
    await settle();
    expect(api.callsOf('reportPhase').at(-1)).toMatchObject({ phase: 'stopped' });

    const again = await running();
    again.api.push({ run: 'stop' });
    await settle();
    expect(again.engine.callsOf('stop')).toEqual([{ mode: 'now' }]);
  });

  it('answers a checkpoint request: stops (the contributor saves), reports the round, then obeys the orders', async () => {
    const { api, engine } = await running();
    api.push({ saveCheckpointRequest: 7 });
    await settle(10);
    expect(engine.callsOf('stop')).toEqual([{ mode: 'now' }]);
    expect(api.callsOf('checkpointSaved')).toEqual([{ requestId: 7, round: 4, step: null }]);
    expect(engine.callsOf('start')).toHaveLength(2); // still 'train': carries on from the checkpoint
    api.push({ run: 'stop', saveCheckpointRequest: 7 }); // the same request again is not answered twice
    await settle(10);
    expect(api.callsOf('checkpointSaved')).toHaveLength(1);
  });

  it('reports a lost GPU device, and a fatal engine error', async () => {
    const { api, engine } = await running();
    engine.emit({ event: 'ended', error: { kind: 'gpu-lost', message: 'the GPU device was lost (destroyed)' } });
    await settle();
    expect(api.callsOf('reportFailure')).toEqual([{ kind: 'gpu-lost', message: 'the GPU device was lost (destroyed)' }]);
    const other = await running();
    other.engine.emit({ event: 'ended', error: { kind: 'run-config', message: 'unknown model' } });
    await settle();
    expect(other.api.callsOf('reportFailure')).toEqual([{ kind: 'fatal', message: 'unknown model' }]);
  });
});

describe('the engine throttle, held after a step (holdEachStep)', () => {
  it('holds GPU work until released, independently of a pause, and hands over each step\'s GPU time once', async () => {
    const throttle = new GpuThrottle();
    await throttle.rest(30);
    await throttle.rest(20);
    expect(throttle.takeBusyMs()).toBe(50);
    expect(throttle.takeBusyMs()).toBe(0);

    throttle.hold();
    let through = false;
    void throttle.gate().then(() => (through = true));
    await settle();
    expect(through).toBe(false);
    throttle.setPaused(true);
    throttle.release();
    await settle();
    expect(through).toBe(false); // released, but paused
    throttle.setPaused(false);
    await settle();
    expect(through).toBe(true);
  });
});
