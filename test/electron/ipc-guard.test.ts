import { describe, expect, it } from 'vitest';
import {
  validateCheckpointSaved, validateEngineReport, validateFailure, validateGpuReady, validateStepReport,
} from '../../electron/services/contract-validators.ts';
import { IpcGuard, noArgument, trustedOrigin, trustedPage, type IpcEventLike, type IpcMainLike } from '../../electron/services/ipc-guard.ts';

class FakeIpcMain implements IpcMainLike {
  handlers = new Map<string, (event: IpcEventLike, ...args: unknown[]) => unknown>();
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => unknown) {
    this.handlers.set(channel, listener);
  }
  call(channel: string, event: IpcEventLike, ...args: unknown[]) {
    return Promise.resolve(this.handlers.get(channel)!(event, ...args));
  }
}

const APP = 'app://tessera/index.html';

function eventFrom(url: string, id = 7, subframe = false): IpcEventLike {
  const mainFrame = { url };
  return { sender: { id, mainFrame }, senderFrame: subframe ? { url } : mainFrame };
}

function setup() {
  const ipc = new FakeIpcMain();
  const logs: string[] = [];
  const guard = new IpcGuard(ipc, trustedPage(APP), (m) => logs.push(m));
  const received: unknown[] = [];
  guard.handle('tessera:test', () => 7, (v) => { if (typeof v !== 'number') throw new Error('need a number'); return v; }, (v) => (received.push(v), v * 2));
  return { ipc, guard, logs, received };
}

describe('IpcGuard', () => {
  it('runs the handler for the owner window on the app page, with the validated argument', async () => {
    const { ipc, received } = setup();
    expect(await ipc.call('tessera:test', eventFrom(APP), 21)).toBe(42);
    expect(await ipc.call('tessera:test', eventFrom(`${APP}?role=training#x`), 1)).toBe(2);
    expect(received).toEqual([21, 1]);
  });

  it.each([
    ['another origin', eventFrom('https://evil.example/index.html')],
    ['another scheme', eventFrom('file:///index.html')],
    ['another page of the app host', eventFrom('app://tessera/other.html')],
    ['a look-alike host', eventFrom('app://tessera.evil/index.html')],
    ['a subframe', eventFrom(APP, 7, true)],
    ['another window', eventFrom(APP, 8)],
    ['a gone frame', { sender: { id: 7, mainFrame: null }, senderFrame: null }],
  ])('refuses a sender from %s, without running the handler', async (_what, event) => {
    const { ipc, guard, received, logs } = setup();
    await expect(ipc.call('tessera:test', event, 1)).rejects.toThrow(/^refused: /);
    expect(received).toEqual([]);
    expect(guard.refusals.get('tessera:test')).toBe(1);
    expect(logs[0]).toMatch(/IPC tessera:test refused/);
  });

  it('refuses a bad argument and extra arguments', async () => {
    const { ipc, received } = setup();
    await expect(ipc.call('tessera:test', eventFrom(APP), 'x')).rejects.toThrow('need a number');
    await expect(ipc.call('tessera:test', eventFrom(APP), 1, 2)).rejects.toThrow(/at most one argument/);
    expect(received).toEqual([]);
  });

  it('refuses when the owner window does not exist', async () => {
    const ipc = new FakeIpcMain();
    new IpcGuard(ipc, trustedPage(APP)).handle('c', () => null, noArgument, () => 1);
    await expect(ipc.call('c', eventFrom(APP))).rejects.toThrow(/does not own/);
  });

  it('trusts a dev server page by origin and path; trustedOrigin ignores the path', () => {
    const dev = trustedPage('http://localhost:5173/');
    expect(dev('http://localhost:5173/?role=training')).toBe(true);
    expect(dev('http://localhost:5174/')).toBe(false);
    expect(dev('not a url')).toBe(false);
    expect(trustedOrigin(APP)('app://tessera')).toBe(true);
    expect(trustedOrigin(APP)('app://other')).toBe(false);
  });
});

describe('contract validators', () => {
  it('accepts well-formed reports', () => {
    expect(validateStepReport({ round: 1, step: 2, loss: 3.5, durationMs: 10, tokensPerSecond: 100 })).toEqual({ round: 1, step: 2, loss: 3.5, durationMs: 10, tokensPerSecond: 100 });
    expect(validateEngineReport({ phase: 'waiting', round: null, step: null, loss: null, tokensPerSecond: null }).phase).toBe('waiting');
    expect(validateGpuReady({ adapterFound: true, adapterName: null })).toEqual({ adapterFound: true, adapterName: null });
    expect(validateCheckpointSaved({ requestId: null, round: 2, step: 0 })).toEqual({ requestId: null, round: 2, step: 0 });
  });

  it.each([
    [() => validateStepReport({ round: -1, step: 0, loss: 1, durationMs: 1, tokensPerSecond: 1 }), /round must be a whole number/],
    [() => validateStepReport({ round: 1, step: 0, loss: Number.NaN, durationMs: 1, tokensPerSecond: 1 }), /loss must be a finite number/],
    [() => validateStepReport({ round: 1, step: 0, loss: 1, durationMs: -5, tokensPerSecond: 1 }), /durationMs/],
    [() => validateStepReport(null), /step report must be an object/],
    [() => validateEngineReport({ phase: 'hacking', round: null, step: null, loss: null, tokensPerSecond: null }), /phase must be one of/],
    [() => validateGpuReady({ adapterFound: 'yes' }), /adapterFound/],
    [() => validateFailure({ kind: 'other', message: 'x' }), /kind must be/],
    [() => validateFailure({ kind: 'fatal', message: 'x'.repeat(3000) }), /at most 2000/],
  ])('refuses bad input %#', (call, message) => {
    expect(call).toThrow(message);
  });
});
