// The desktop app's hidden training window, without Electron: the renderer build (Vite) is
// loaded with ?role=training in headless Chromium (WebGPU on SwiftShader), and an init script
// installs window.tesseraTraining the way the training preload does, each method calling this
// test (exposeFunction) where a small model of the main process answers and records. The page
// must really train against a local coordinator: ready with the adapter, stepDone with real
// losses from the engine, restMs waited between steps, a pushed pause stops the steps, a
// pushed train order resumes them, a checkpoint request before a stop is answered. Then the
// UI window the same way (window.tessera): unlocked from the saved secret without a password,
// Contribute and Pause go to the main process, its pushed status shows the pause reasons.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import type { DesktopSettings, DesktopStatus, StepReport, TrainingOrders } from '../../electron/contract.ts';
import { readRunFile } from '../../src/cli/coordinator-command.ts';
import { LOCAL_RUN, startWeb, type StartedWeb } from '../../src/cli/web-command.ts';
import { REPO_ROOT, browserSkipReason, launchChromium, type Browser, type Page } from './harness.ts';

const skip = browserSkipReason();
if (skip) console.warn(skip);

const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const REST_MS = 400;

interface Call {
  method: string;
  arg: unknown;
  at: number;
}

describe.skipIf(skip !== null)('the desktop app\'s two windows in Chromium, with the preload APIs played by the test', () => {
  let work: string;
  let web: StartedWeb;
  let browser: Browser;
  let page: Page;
  const calls: Call[] = [];
  const pageErrors: string[] = [];
  let orders: TrainingOrders;
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  const callsOf = <T>(method: string) => calls.filter((c) => c.method === method).map((c) => c.arg as T);
  const steps = () => callsOf<StepReport>('stepDone');
  /** The main process pushing new orders to the page (webContents.send in the shell). */
  const push = (patch: Partial<TrainingOrders>) => {
    orders = { ...orders, ...patch };
    return page.evaluate((o) => (globalThis as unknown as { __tesseraOrders(o: unknown): void }).__tesseraOrders(o), orders);
  };
  const until = async (what: string, ok: () => boolean, timeoutMs = 60_000) => {
    const end = Date.now() + timeoutMs;
    while (!ok()) {
      if (pageErrors.length) throw new Error(`page error while waiting for ${what}: ${pageErrors[0]}`);
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (calls: ${calls.map((c) => c.method).join(', ')})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tessera-e2e-training-'));
    const dist = join(work, 'dist');
    const built = build({ configFile: join(REPO_ROOT, 'renderer/vite.config.ts'), build: { outDir: dist, emptyOutDir: true, sourcemap: false }, logLevel: 'warn' });
    // Long rounds: a pause in the middle of one must not meet its deadline during the test.
    const config = readRunFile(undefined, { ...LOCAL_RUN, run: 'e2e-training-window', innerSteps: 4, roundSeconds: 90 });
    [, browser] = await Promise.all([built, launchChromium()]);
    web = await startWeb({ port: 0, config, staticDir: dist, stateDir: join(work, 'state'), validate: false, software: true, log: (l) => console.log(`[coordinator] ${elapsed()} ${l}`) });
    orders = { run: 'train', coordinatorUrl: web.coordinator.server.url, resumeFromCheckpoint: false, dutyCyclePercent: 50, saveCheckpointRequest: null };
    console.log(`built and serving at ${elapsed()}`);
  });

  afterAll(async () => {
    await browser?.close();
    await web?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    console.log(`stopped at ${elapsed()}`);
  });

  it('trains under the main process\'s orders: ready, steps with real losses, rest, pause, resume, checkpoint, stop', { timeout: 120_000 }, async () => {
    const context = await browser.newContext();
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => console.log(`[page] ${m.text()}`));
    await context.exposeFunction('__tesseraTrainingCall', (method: string, arg: unknown) => {
      calls.push({ method, arg, at: performance.now() });
      switch (method) {
        case 'ready':
        case 'roundFinished':
          return orders;
        case 'stepDone':
          return { restMs: REST_MS, orders };
        case 'loadWalletSecret':
          return MNEMONIC;
        default:
          return null;
      }
    });
    // What electron/preload/training.ts exposes, over the test's function instead of IPC.
    await context.addInitScript(() => {
      const g = globalThis as unknown as Record<string, unknown> & { __tesseraTrainingCall(method: string, arg?: unknown): Promise<unknown> };
      const call = (method: string) => (arg?: unknown) => g.__tesseraTrainingCall(method, arg);
      let listener: ((o: unknown) => void) | null = null;
      g.__tesseraOrders = (o: unknown) => listener?.(o);
      g.tesseraTraining = {
        ready: call('ready'),
        stepDone: call('stepDone'),
        reportPhase: call('reportPhase'),
        roundFinished: call('roundFinished'),
        checkpointSaved: call('checkpointSaved'),
        reportFailure: call('reportFailure'),
        loadWalletSecret: call('loadWalletSecret'),
        onOrders: (fn: (o: unknown) => void) => {
          listener = fn;
          return () => (listener = null);
        },
      };
    });
    await page.goto(`${web.web.url}/index.html?role=training`);

    await until('ready', () => callsOf('ready').length > 0, 30_000);
    expect(callsOf('ready')[0]).toMatchObject({ adapterFound: true });
    expect(String((callsOf<{ adapterName: string }>('ready')[0]).adapterName)).toMatch(/swiftshader/i);
    expect(await page.locator('#root').innerText()).toMatch(/hidden window trains/);

    await until('two inner steps', () => steps().length >= 2, 90_000);
    console.log(`two steps at ${elapsed()}: ${steps().map((s) => `r${s.round} s${s.step} loss ${s.loss.toFixed(3)}`).join('; ')}`);
    for (const s of steps()) {
      expect(Number.isFinite(s.loss) && s.loss > 0).toBe(true);
      expect(s.durationMs).toBeGreaterThan(0);
    }
    // restMs is waited between one step's answer and the next step's GPU work.
    const [a, b] = calls.filter((c) => c.method === 'stepDone');
    expect(b.at - a.at).toBeGreaterThanOrEqual(REST_MS);
    expect(callsOf<{ phase: string }>('reportPhase').map((p) => p.phase)).toContain('training');

    await push({ run: 'pause' });
    const atPause = steps().length;
    await new Promise((r) => setTimeout(r, 2_500)); // a step already on the GPU may still finish…
    const settled = steps().length;
    expect(settled).toBeLessThanOrEqual(atPause + 1);
    await new Promise((r) => setTimeout(r, 3_000)); // …but then nothing
    expect(steps().length).toBe(settled);

    await push({ run: 'train' });
    await until('a step after resuming', () => steps().length > settled, 60_000);
    console.log(`resumed at ${elapsed()}`);

    console.log(`paused after ${atPause} step(s); ${settled} when the GPU work in flight had finished; none after`);

    // Quitting: the main process asks for a checkpoint (the contributor saves it to IndexedDB as it stops), then stops.
    await push({ run: 'stop', saveCheckpointRequest: 1 });
    await until('the checkpoint', () => callsOf('checkpointSaved').length > 0, 30_000);
    expect(callsOf<{ requestId: number; round: unknown }>('checkpointSaved')[0]).toMatchObject({ requestId: 1, round: expect.any(Number) });
    await until('stopped', () => callsOf<{ phase: string }>('reportPhase').some((p) => p.phase === 'stopped'), 30_000);
    expect(callsOf('reportFailure')).toEqual([]);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it('the UI window (window.tessera) opens unlocked from the saved secret and drives training through the main process', { timeout: 60_000 }, async () => {
    const uiCalls: string[] = [];
    let status: DesktopStatus = {
      intent: 'stopped', tray: 'idle', pauseReasons: [], engine: null, gpu: { plan: 'Vulkan on (X11)', adapterFound: true, adapterName: 'SwiftShader', message: null }, lastCheckpoint: null, restarts: 1, error: null,
    };
    const settings: DesktopSettings = {
      schemaVersion: 1, coordinatorUrl: web.coordinator.server.url, startAtLogin: false, pauseOnBattery: true, pauseWhenUserActive: true, userIdleMinutes: 5, pauseWhenFullscreen: false,
      schedule: { enabled: false, windows: [] }, gpuDutyCyclePercent: 100, gpuMode: 'auto', allowPlainTextSecrets: false,
    };
    const context = await browser.newContext();
    const ui = await context.newPage();
    ui.on('pageerror', (e) => pageErrors.push(e.message));
    await context.exposeFunction('__tesseraUiCall', (method: string) => {
      uiCalls.push(method);
      if (method === 'contribute') status = { ...status, intent: 'contributing', tray: 'training' };
      if (method === 'pause') status = { ...status, tray: 'paused', pauseReasons: ['user-paused'] };
      switch (method) {
        case 'getSettings':
          return settings;
        case 'getCapabilities':
          return { fullscreenDetection: false, loginItem: true, secretStorage: { available: true, backend: 'gnome_libsecret', warning: null } };
        case 'loadWalletSecret':
          return MNEMONIC;
        default:
          return status;
      }
    });
    // What electron/preload/ui.ts exposes, over the test's function instead of IPC.
    await context.addInitScript(() => {
      const g = globalThis as unknown as Record<string, unknown> & { __tesseraUiCall(method: string, arg?: unknown): Promise<unknown> };
      const call = (method: string) => (arg?: unknown) => g.__tesseraUiCall(method, arg);
      let listener: ((s: unknown) => void) | null = null;
      g.__tesseraStatus = (s: unknown) => listener?.(s);
      const methods = ['getStatus', 'contribute', 'pause', 'resume', 'finishRoundThenStop', 'getSettings', 'updateSettings', 'getCapabilities', 'saveWalletSecret', 'loadWalletSecret', 'deleteWalletSecret'];
      g.tessera = {
        ...Object.fromEntries(methods.map((m) => [m, call(m)])),
        onStatus: (fn: (s: unknown) => void) => {
          listener = fn;
          return () => (listener = null);
        },
      };
    });
    await ui.goto(`${web.web.url}/index.html`);
    // No password asked: the secret came from the keychain. Contribute waits for the page's GPU check.
    await ui.getByRole('button', { name: 'Contribute' }).and(ui.locator(':enabled')).waitFor({ timeout: 30_000 });
    await ui.getByRole('button', { name: 'Contribute' }).click();
    await ui.getByRole('button', { name: 'Pause' }).waitFor();
    expect(uiCalls).toContain('contribute');
    await ui.getByRole('button', { name: 'Pause' }).click();
    status = { ...status, pauseReasons: ['user-paused', 'on-battery'], engine: { phase: 'training', round: 2, step: 1, loss: 5.5, tokensPerSecond: 700 } };
    await ui.evaluate((s) => (globalThis as unknown as { __tesseraStatus(s: unknown): void }).__tesseraStatus(s), status);
    await ui.getByText('Training is held: paused by you, on battery.').waitFor({ timeout: 10_000 });
    expect(await ui.getByTestId('tray-state').innerText()).toBe('Paused');
    expect(await ui.getByTestId('restarts').innerText()).toBe('1');
    expect(await ui.getByRole('button', { name: 'Stop now' }).count()).toBe(0);
    expect(uiCalls).toEqual(expect.arrayContaining(['getStatus', 'getSettings', 'getCapabilities', 'loadWalletSecret', 'pause']));
    expect(pageErrors).toEqual([]);
    console.log(`UI window checked at ${elapsed()}`);
    await context.close();
  });
});
