// End to end: the real Electron app, driven by playwright-core's _electron, with a fixture
// page in place of the renderer build. Runs only where the Electron binary is installed
// (`npx electron --version` works); on machines without it the suite is skipped, saying why.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildElectron } from '../../electron/build.ts';
import type { TesseraWindow } from '../../electron/contract.ts';

/** The page's globals the test reads (this file is type-checked without the DOM library). */
type PageGlobals = Required<TesseraWindow> & {
  require?: unknown;
  process?: unknown;
  location: { href: string; origin: string };
  document: { getElementById(id: string): { textContent: string | null } | null };
  open(url: string): unknown;
};

const HERE = dirname(fileURLToPath(import.meta.url));

/** Why the Electron binary cannot run here, or null when it can. */
export function electronSkipReason(): string | null {
  try {
    const binary = createRequire(import.meta.url)('electron') as string;
    return existsSync(binary) ? null : `the Electron binary ${binary} is missing`;
  } catch (error) {
    return `the Electron binary is not installed (${(error as Error).message.split('\n')[0]}); run \`node node_modules/electron/install.js\` where downloads are allowed`;
  }
}

const skipReason = electronSkipReason();
if (skipReason) console.log(`Electron end-to-end tests skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('desktop app (Electron end to end)', () => {
  let app: ElectronApplication;
  let ui: Page;
  let profile: string;
  let closed = false;
  const mainOutput: string[] = [];

  beforeAll(async () => {
    const built = await buildElectron();
    profile = await mkdtemp(join(tmpdir(), 'tessera-profile-'));
    app = await _electron.launch({
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), built.main],
      env: { ...process.env, TESSERA_RENDERER_ROOT: resolve(HERE, 'fixture-renderer'), TESSERA_USER_DATA: profile } as Record<string, string>,
      timeout: 30_000,
    });
    app.process().stdout?.on('data', (chunk: Buffer) => mainOutput.push(chunk.toString()));
    ui = await app.firstWindow();
    await ui.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('role')?.textContent === 'ui');
  }, 60_000);

  afterAll(async () => {
    if (!closed) await app?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('the UI page gets window.tessera and nothing of Node', async () => {
    const seen = await ui.evaluate(() => {
      const page = globalThis as unknown as PageGlobals;
      return {
        methods: Object.keys(page.tessera).sort(),
        training: typeof page.tesseraTraining,
        require: typeof page.require,
        process: typeof page.process,
        origin: page.location.origin === 'null' ? page.location.href.split('/').slice(0, 3).join('/') : page.location.origin,
      };
    });
    expect(seen.methods).toEqual(['contribute', 'deleteWalletSecret', 'finishRoundThenStop', 'getCapabilities', 'getSettings', 'getStatus', 'loadWalletSecret', 'onStatus', 'pause', 'resume', 'saveWalletSecret', 'updateSettings']);
    expect(seen).toMatchObject({ training: 'undefined', require: 'undefined', process: 'undefined', origin: 'app://tessera' });
  });

  it('Contribute opens the hidden training window: unthrottled, it reports its GPU and takes orders', async () => {
    const windowsNow = () => app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().map((w) => ({
      url: w.webContents.getURL(), visible: w.isVisible(), throttled: w.webContents.getBackgroundThrottling(),
    })));
    expect(await windowsNow()).toHaveLength(1); // no training window before Contribute
    const status = await ui.evaluate(() => (globalThis as unknown as PageGlobals).tessera.contribute());
    expect(status.intent).toBe('contributing');
    await expect.poll(async () => (await windowsNow()).length).toBe(2);
    const windows = await windowsNow();
    expect(windows.find((w) => w.url.includes('role=training'))).toMatchObject({ visible: false, throttled: false });
    expect(windows.find((w) => !w.url.includes('role=training'))).toMatchObject({ visible: true, throttled: true });
    // The fixture's training page called ready(): its IPC sender passed the checks.
    await expect.poll(() => ui.evaluate(async () => (await (globalThis as unknown as PageGlobals).tessera.getStatus()).gpu.adapterFound)).not.toBeNull();
  });

  it('bad settings are refused with the field named; good ones persist', async () => {
    const refused = await ui.evaluate(() => (globalThis as unknown as PageGlobals).tessera.updateSettings({ gpuDutyCyclePercent: 3 }).then(() => 'accepted', (e: Error) => e.message));
    expect(refused).toMatch(/gpuDutyCyclePercent must be a whole number from 10 to 100/);
    const saved = await ui.evaluate(() => (globalThis as unknown as PageGlobals).tessera.updateSettings({ gpuDutyCyclePercent: 60 }));
    expect(saved.gpuDutyCyclePercent).toBe(60);
  });

  it('navigation and new windows are denied', async () => {
    await ui.evaluate(() => {
      const page = globalThis as unknown as PageGlobals;
      page.open('https://example.org');
      page.location.href = 'https://example.org';
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(ui.url()).toMatch(/^app:\/\/tessera\/index\.html/);
    expect(await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().length)).toBe(2);
  });

  it('closing the window keeps the app (and training) running in the tray', async () => {
    await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().find((w) => !w.webContents.getURL().includes('role=training'))!.close());
    const windows = await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().map((w) => w.isVisible()));
    expect(windows).toEqual([false, false]);
  });

  it('quitting asks the training page for a checkpoint first', async () => {
    const training = app.windows().find((page) => page.url().includes('role=training'))!;
    await training.evaluate(() => (globalThis as unknown as PageGlobals).tesseraTraining.stepDone({ round: 0, step: 1, loss: 5, durationMs: 10, tokensPerSecond: 100 }));
    closed = true;
    await app.close();
    expect(mainOutput.join('')).toContain('checkpoint saved before quitting');
  });
});

describe.skipIf(skipReason === null)('desktop app (Electron end to end): skipped', () => {
  it.skip(`skipped: ${skipReason}`, () => {});
});
