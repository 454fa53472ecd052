// The preload bundles as Electron would load them: sandboxed preloads may require only
// 'electron', so each bundle runs here in a bare vm context with a test double of it, and
// the test checks what reaches the page (exactly the contract's methods, one channel each).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildElectron } from '../../electron/build.ts';
import { TRAINING_CHANNELS, UI_CHANNELS } from '../../electron/channels.ts';

let outdir = '';
let built: Awaited<ReturnType<typeof buildElectron>>;

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), 'tessera-electron-'));
  built = await buildElectron(outdir);
});
afterAll(() => rm(outdir, { recursive: true, force: true }));

interface Loaded {
  exposed: Map<string, Record<string, (...args: unknown[]) => unknown>>;
  invoked: Array<[string, unknown[]]>;
  emit: (channel: string, payload: unknown) => void;
  listenerCount: (channel: string) => number;
  required: string[];
}

async function loadPreload(file: string): Promise<Loaded> {
  const code = await readFile(file, 'utf8');
  const exposed = new Map<string, Record<string, (...args: unknown[]) => unknown>>();
  const invoked: Array<[string, unknown[]]> = [];
  const listeners = new Map<string, Array<(...args: unknown[]) => void>>();
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: Record<string, (...args: unknown[]) => unknown>) => exposed.set(key, api) },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => (invoked.push([channel, args]), Promise.resolve(`answer:${channel}`)),
      on: (channel: string, fn: (...args: unknown[]) => void) => void listeners.set(channel, [...(listeners.get(channel) ?? []), fn]),
      removeListener: (channel: string, fn: (...args: unknown[]) => void) => void listeners.set(channel, (listeners.get(channel) ?? []).filter((f) => f !== fn)),
    },
  };
  const module = { exports: {} };
  const require = (name: string) => {
    required.push(name);
    if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
    return electron;
  };
  runInNewContext(code, { require, module, exports: module.exports });
  return {
    exposed, invoked, required,
    emit: (channel, payload) => (listeners.get(channel) ?? []).forEach((fn) => fn({ sender: 'the IPC event' }, payload)),
    listenerCount: (channel) => (listeners.get(channel) ?? []).length,
  };
}

describe('preload bundles', () => {
  it('the UI preload exposes window.tessera with one method per UI channel, requiring only electron', async () => {
    const p = await loadPreload(built.preloads[0]);
    expect([...p.exposed.keys()]).toEqual(['tessera']);
    expect(p.required).toEqual(['electron']);
    const api = p.exposed.get('tessera')!;
    const { status: _push, ...invokable } = UI_CHANNELS;
    expect(Object.keys(api).sort()).toEqual([...Object.keys(invokable), 'onStatus'].sort());
    for (const [method, channel] of Object.entries(invokable)) {
      expect(await api[method]('arg')).toBe(`answer:${channel}`);
    }
    expect(p.invoked.map(([c]) => c)).toEqual(Object.values(invokable));
    // Methods without an argument pass it on unchanged: the main process refuses extras.
    expect(p.invoked.find(([c]) => c === UI_CHANNELS.updateSettings)![1]).toEqual(['arg']);
  });

  it('status pushes reach the listener without the IPC event; unsubscribe detaches it', async () => {
    const p = await loadPreload(built.preloads[0]);
    const seen: unknown[][] = [];
    const off = p.exposed.get('tessera')!.onStatus((...args: unknown[]) => seen.push(args)) as () => void;
    p.emit(UI_CHANNELS.status, { tray: 'training' });
    expect(seen).toEqual([[{ tray: 'training' }]]);
    off();
    expect(p.listenerCount(UI_CHANNELS.status)).toBe(0);
  });

  it('the training preload exposes window.tesseraTraining with one method per training channel', async () => {
    const p = await loadPreload(built.preloads[1]);
    expect([...p.exposed.keys()]).toEqual(['tesseraTraining']);
    const api = p.exposed.get('tesseraTraining')!;
    const { orders: _push, ...invokable } = TRAINING_CHANNELS;
    expect(Object.keys(api).sort()).toEqual([...Object.keys(invokable), 'onOrders'].sort());
    for (const [method, channel] of Object.entries(invokable)) expect(await api[method]({})).toBe(`answer:${channel}`);
    const orders: unknown[] = [];
    api.onOrders((o: unknown) => orders.push(o));
    p.emit(TRAINING_CHANNELS.orders, { run: 'pause' });
    expect(orders).toEqual([{ run: 'pause' }]);
  });

  it('the main bundle imports only electron and Node built-ins', async () => {
    const code = await readFile(built.main, 'utf8');
    const imports = [...code.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports).toContain('electron');
    expect(imports.filter((name) => name !== 'electron' && !name.startsWith('node:'))).toEqual([]);
  });
});
