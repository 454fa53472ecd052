// electron/main.ts wired to a test double of the 'electron' module (fake-electron.ts): the
// app starts, and the test drives it as the user, the pages and the OS would — Contribute,
// the training page's reports, a crash, closing the window, quitting — checking that the
// services are connected to the right Electron objects. The real-Electron version of this
// is app.e2e.test.ts (skipped where no Electron binary exists).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TRAINING_CHANNELS, UI_CHANNELS } from '../../electron/channels.ts';
import type { DesktopStatus, TrainingOrders } from '../../electron/contract.ts';
import { gpuLaunchPlan } from '../../electron/services/gpu-switches.ts';
import { DEFAULT_SETTINGS } from '../../electron/services/settings.ts';
import { app, fake, type FakeBrowserWindow } from './fake-electron.ts';

vi.mock('electron', () => import('./fake-electron.ts'));

type Contents = FakeBrowserWindow['webContents'];
const call = (channel: string, contents: Contents, ...args: unknown[]) =>
  Promise.resolve(fake.ipcHandlers.get(channel)!({ sender: contents, senderFrame: contents.mainFrame }, ...args));
const live = () => fake.windows.filter((w) => !w.destroyed);
const uiWindow = () => live().find((w) => !w.webContents.url.includes('role=training'))!;
const trainingWindow = () => live().find((w) => w.webContents.url.includes('role=training'));
const lastSent = <T>(contents: Contents, channel: string) => contents.sent.filter(([c]) => c === channel).at(-1)?.[1] as T;
const tray = () => fake.trays[0];
const until = async (what: string, test: () => boolean) => {
  for (let i = 0; i < 200 && !test(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!test()) throw new Error(`timed out waiting for ${what}`);
};

let dir = '';
const saved = { ...process.env };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-main-'));
  fake.userData = join(dir, 'user-data');
  process.env.TESSERA_RENDERER_ROOT = resolve(import.meta.dirname, 'fixture-renderer');
  process.env.XDG_CONFIG_HOME = join(dir, 'config');
  delete process.env.TESSERA_RENDERER_URL;
  delete process.env.TESSERA_USER_DATA;
  await import('../../electron/main.ts');
  await until('the UI window', () => fake.windows.length === 1 && fake.ipcHandlers.size > 0);
});

afterAll(async () => {
  app.emit('will-quit');
  process.env = saved;
  await rm(dir, { recursive: true, force: true });
});

describe('electron/main.ts wiring (with an Electron test double)', () => {
  it('starts with the platform WebGPU switches, the app:// scheme, one secure UI window and an idle tray', async () => {
    const plan = gpuLaunchPlan('auto', { platform: process.platform, env: process.env, argv: process.argv });
    expect(fake.switches).toEqual(plan.switches.map(([name, value]) => [name, value]));
    expect(fake.schemes).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } }]);
    expect(live()).toHaveLength(1);
    const ui = uiWindow();
    expect(ui.webContents.url).toBe('app://tessera/index.html');
    expect(ui.visible).toBe(true);
    expect(ui.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, backgroundThrottling: true });
    expect(String(ui.options.webPreferences.preload)).toMatch(/preload-ui\.cjs$/);
    expect((tray().image as { path: string }).path).toMatch(/public\/tray-idle\.png$/);
    expect(tray().menu.map((i) => i.label)).toEqual(['Show Tessera', 'Start contributing', 'Finish round then stop', 'Quit (saves a checkpoint first)']);
    expect(fake.errors).toEqual([]);
    // A GPU process crash while not contributing restarts nothing.
    app.emit('child-process-gone', {}, { type: 'GPU', reason: 'crashed', exitCode: 1 });
    expect(live()).toHaveLength(1);
  });

  it('serves the renderer over app:// with the CSP naming the coordinator', async () => {
    const page = await fake.protocolHandlers.get('app')!({ url: 'app://tessera/index.html' });
    expect(await page.text()).toContain('Tessera fixture');
    expect(page.headers.get('content-security-policy')).toContain('connect-src \'self\' ws://127.0.0.1:8787 http://127.0.0.1:8787');
  });

  it('guards every window: navigation and new windows denied, no permissions', () => {
    const contents = uiWindow().webContents;
    let prevented = false;
    contents.emit('will-navigate', { url: 'https://evil.example', preventDefault: () => (prevented = true) });
    expect(prevented).toBe(true);
    expect(contents.openHandler!({ url: 'https://evil.example' })).toEqual({ action: 'deny' });
    let granted: boolean | null = null;
    fake.permissionRequest!({ getURL: () => 'app://tessera/index.html' }, 'media', (g) => (granted = g));
    expect(granted).toBe(false);
  });

  it('answers the UI window and refuses anyone else', async () => {
    const status = (await call(UI_CHANNELS.getStatus, uiWindow().webContents)) as DesktopStatus;
    expect(status).toMatchObject({ intent: 'stopped', tray: 'idle' });
    const stranger = { id: 999, mainFrame: { url: 'https://evil.example/' } } as unknown as Contents;
    await expect(call(UI_CHANNELS.contribute, stranger)).rejects.toThrow(/refused/);
    await expect(call(UI_CHANNELS.getStatus, uiWindow().webContents, 'extra')).rejects.toThrow(/no argument/);
  });

  it('Contribute opens the hidden, unthrottled training window; its page gets orders', async () => {
    await call(UI_CHANNELS.contribute, uiWindow().webContents);
    const training = trainingWindow()!;
    expect(training.webContents.url).toBe('app://tessera/index.html?role=training');
    expect(training.visible).toBe(false);
    expect(training.options.webPreferences).toMatchObject({ sandbox: true, contextIsolation: true, backgroundThrottling: false });
    expect(String(training.options.webPreferences.preload)).toMatch(/preload-training\.cjs$/);
    const orders = (await call(TRAINING_CHANNELS.ready, training.webContents, { adapterFound: true, adapterName: 'Test GPU' })) as TrainingOrders;
    expect(orders).toMatchObject({ run: 'train', coordinatorUrl: 'ws://127.0.0.1:8787/ws', dutyCyclePercent: DEFAULT_SETTINGS.gpuDutyCyclePercent });
    // The training window may not use the UI's channels.
    await expect(call(UI_CHANNELS.pause, training.webContents)).rejects.toThrow(/does not own/);
    expect(lastSent<DesktopStatus>(uiWindow().webContents, UI_CHANNELS.status)).toMatchObject({ tray: 'training', gpu: { adapterName: 'Test GPU' } });
  });

  it('the training window reads the wallet secret the UI window saved (it signs with the same hotkey)', async () => {
    const training = trainingWindow()!.webContents;
    await call(UI_CHANNELS.saveWalletSecret, uiWindow().webContents, 'legal winner thank year wave sausage worth useful legal winner thank yellow');
    expect(await call(TRAINING_CHANNELS.loadWalletSecret, training)).toBe('legal winner thank year wave sausage worth useful legal winner thank yellow');
    const stranger = { id: 999, mainFrame: { url: 'https://evil.example/' } } as unknown as Contents;
    await expect(call(TRAINING_CHANNELS.loadWalletSecret, stranger)).rejects.toThrow(/refused/);
  });

  it('holds the power-save blocker while steps run; a pause from the tray releases it', async () => {
    const training = trainingWindow()!.webContents;
    await call(TRAINING_CHANNELS.stepDone, training, { round: 0, step: 1, loss: 5.5, durationMs: 30, tokensPerSecond: 800 });
    expect(fake.blockers.size).toBe(1);
    expect((tray().image as { path: string }).path).toMatch(/tray-training\.png$/);
    tray().menu.find((i) => i.label === 'Pause')!.click();
    expect(fake.blockers.size).toBe(0);
    expect(lastSent<TrainingOrders>(training, TRAINING_CHANNELS.orders).run).toBe('pause');
    expect((tray().image as { path: string }).path).toMatch(/tray-paused\.png$/);
    tray().menu.find((i) => i.label === 'Resume')!.click();
    expect(lastSent<TrainingOrders>(training, TRAINING_CHANNELS.orders).run).toBe('train');
  });

  it('a crashed training renderer is replaced, and the new page resumes from its checkpoint', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const crashed = trainingWindow()!;
      crashed.webContents.emit('render-process-gone', {}, { reason: 'crashed', exitCode: 139 });
      expect(crashed.destroyed).toBe(true);
      expect(lastSent<DesktopStatus>(uiWindow().webContents, UI_CHANNELS.status).pauseReasons).toContain('restarting');
      vi.advanceTimersByTime(2_000);
    } finally {
      vi.useRealTimers();
    }
    const fresh = trainingWindow()!;
    expect(fresh).toBeDefined();
    const orders = (await call(TRAINING_CHANNELS.ready, fresh.webContents, { adapterFound: true, adapterName: 'Test GPU' })) as TrainingOrders;
    expect(orders).toMatchObject({ run: 'train', resumeFromCheckpoint: true });
    expect(((await call(UI_CHANNELS.getStatus, uiWindow().webContents)) as DesktopStatus).restarts).toBe(1);
  });

  it('settings: bad fields refused by name; start at login writes the autostart entry', async () => {
    await expect(call(UI_CHANNELS.updateSettings, uiWindow().webContents, { gpuDutyCyclePercent: 3 })).rejects.toThrow(/gpuDutyCyclePercent/);
    await call(UI_CHANNELS.updateSettings, uiWindow().webContents, { startAtLogin: true, gpuDutyCyclePercent: 50 });
    if (process.platform === 'linux') expect(await readFile(join(dir, 'config', 'autostart', 'tessera.desktop'), 'utf8')).toMatch(/--hidden/);
    expect(JSON.parse(await readFile(join(fake.userData, 'desktop-settings.json'), 'utf8'))).toMatchObject({ gpuDutyCyclePercent: 50, startAtLogin: true });
    expect(lastSent<TrainingOrders>(trainingWindow()!.webContents, TRAINING_CHANNELS.orders)).toMatchObject({ run: 'train', dutyCyclePercent: 50 });
    const rest = (await call(TRAINING_CHANNELS.stepDone, trainingWindow()!.webContents, { round: 0, step: 2, loss: 5.4, durationMs: 40, tokensPerSecond: 800 })) as { restMs: number };
    expect(rest.restMs).toBe(40);
  });

  it('closing the window keeps training in the tray, with the notice only once', async () => {
    uiWindow().close();
    expect(uiWindow().visible).toBe(false);
    expect(live()).toHaveLength(2);
    app.emit('second-instance', {}, ['/opt/tessera', '--hidden']); // the login item again: stays hidden
    expect(uiWindow().visible).toBe(false);
    app.emit('second-instance', {}, ['/opt/tessera']); // the user starts it again: shows
    expect(uiWindow().visible).toBe(true);
    uiWindow().close();
    tray().menu[0].click(); // Show
    expect(uiWindow().visible).toBe(true);
    uiWindow().close();
    expect(fake.notifications.map((n) => n.title)).toEqual(['Tessera keeps training']);
    await until('the notice remembered', () => existsSync(join(fake.userData, 'tray-notice-shown')));
  });

  it('Quit saves a checkpoint first, then quits and releases everything', async () => {
    tray().menu.find((i) => i.label.startsWith('Quit'))!.click();
    const training = trainingWindow()!.webContents;
    const request = lastSent<TrainingOrders>(training, TRAINING_CHANNELS.orders).saveCheckpointRequest;
    expect(request).not.toBeNull();
    expect(fake.quits).toBe(1); // held until the checkpoint is saved
    await call(TRAINING_CHANNELS.checkpointSaved, training, { requestId: request, round: 0, step: 2 });
    await until('the real quit', () => fake.quits === 2);
    expect(fake.blockers.size).toBe(0);
  });
});
