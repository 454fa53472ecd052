// The Electron main process: wires the services in services/ to Electron's objects. All the
// decisions live in those services (unit-tested in Node); this file only connects them.
import { app, BrowserWindow, dialog, ipcMain, Menu, nativeImage, Notification, powerMonitor, powerSaveBlocker, protocol, safeStorage, session, shell, Tray } from 'electron';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TRAINING_CHANNELS, UI_CHANNELS } from './channels.ts';
import type { DesktopSettings, GpuMode } from './contract.ts';
import { registerIpc } from './ipc-handlers.ts';
import { APP_ROOT, RENDERER_ROOT, trayIconPath } from './paths.ts';
import { CloseToTray, QuitFlow } from './services/app-lifecycle.ts';
import { APP_SCHEME, appProtocolHandler, TRAINING_PAGE_URL, UI_PAGE_URL } from './services/app-protocol.ts';
import { CitizenMonitor, type Clock, type PowerSource } from './services/citizen-policy.ts';
import { CrashRestarter, type GoneReason } from './services/crash-restart.ts';
import { X11FullscreenProbe } from './services/fullscreen-probe.ts';
import { gpuLaunchPlan, noAdapterMessage } from './services/gpu-switches.ts';
import { IpcGuard, trustedOrigin, trustedPage } from './services/ipc-guard.ts';
import { HIDDEN_FLAG, LoginItemService } from './services/login-item.ts';
import { SecretStore } from './services/secret-store.ts';
import { DEFAULT_SETTINGS, parseSettingsFile, SettingsStore } from './services/settings.ts';
import { SuspensionBlocker } from './services/suspension-blocker.ts';
import { TrainingSupervisor } from './services/training-supervisor.ts';
import { TrayController } from './services/tray-controller.ts';
import { contentSecurityPolicy, guardWebContents, permissionAllowed } from './services/window-security.ts';
import { createTrainingWindow, createUiWindow, type PageUrls } from './windows.ts';

const log = (message: string) => console.log(`[tessera] ${message}`);
const DEV_URL = process.env.TESSERA_RENDERER_URL ?? null;
const urls: PageUrls = DEV_URL
  ? { ui: DEV_URL, training: `${DEV_URL}${DEV_URL.includes('?') ? '&' : '?'}role=training` }
  : { ui: UI_PAGE_URL, training: TRAINING_PAGE_URL };
// TESSERA_USER_DATA: a separate profile (tests, a second installation on one account).
if (process.env.TESSERA_USER_DATA) app.setPath('userData', process.env.TESSERA_USER_DATA);
const userData = app.getPath('userData');
const settingsPath = join(userData, 'desktop-settings.json');
const environment = { platform: process.platform, env: process.env, argv: process.argv };

/** The GPU mode must be known before 'ready' (command-line switches), so it is read synchronously. */
function gpuModeAtLaunch(): GpuMode {
  try {
    return parseSettingsFile(readFileSync(settingsPath, 'utf8')).gpuMode;
  } catch {
    return DEFAULT_SETTINGS.gpuMode;
  }
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  const gpuMode = gpuModeAtLaunch();
  const plan = gpuLaunchPlan(gpuMode, environment);
  if (plan.relaunchWith) {
    app.relaunch({ args: [...process.argv.slice(1), ...plan.relaunchWith] });
    app.exit(0);
  } else {
    for (const [name, value] of plan.switches) app.commandLine.appendSwitch(name, value);
    protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } }]);
    void app.whenReady().then(() => start(plan.description, gpuMode)).catch((error: unknown) => {
      dialog.showErrorBox('Tessera could not start', String((error as Error)?.stack ?? error));
      app.exit(1);
    });
  }
}

async function start(gpuPlan: string, gpuMode: GpuMode): Promise<void> {
  await mkdir(userData, { recursive: true });
  // Windows shows notifications only for an app with a user model id (electron-builder's appId).
  if (process.platform === 'win32') app.setAppUserModelId('org.tessera.desktop');
  const settingsStore = new SettingsStore({ readFile, writeFile, rename }, settingsPath);
  const loaded = await settingsStore.load();
  if (loaded.problem) log(loaded.problem);
  const settings = (): DesktopSettings => settingsStore.current;

  if (!DEV_URL && !existsSync(join(RENDERER_ROOT, 'index.html'))) {
    dialog.showErrorBox('Tessera: the UI is not built', `No ${join(RENDERER_ROOT, 'index.html')}. Run \`npm run build:web\` first, or set TESSERA_RENDERER_URL to the Vite dev server's URL.`);
  }

  // Content and permissions: our pages only, with the CSP; nothing may navigate or open windows.
  const isTrustedPage = trustedPage(urls.ui);
  const csp = () => contentSecurityPolicy(settings().coordinatorUrl, DEV_URL);
  protocol.handle(APP_SCHEME, appProtocolHandler(RENDERER_ROOT, { readFile }, csp));
  if (DEV_URL) {
    const devOrigin = new URL(DEV_URL).origin;
    session.defaultSession.webRequest.onHeadersReceived({ urls: [`${devOrigin}/*`] }, (details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp()] } });
    });
  }
  const isAppOrigin = trustedOrigin(urls.ui);
  session.defaultSession.setPermissionRequestHandler((contents, permission, callback) => callback(permissionAllowed(permission, contents.getURL(), isAppOrigin)));
  session.defaultSession.setPermissionCheckHandler((_contents, permission, origin) => permissionAllowed(permission, origin, isAppOrigin));
  app.on('web-contents-created', (_event, contents) => guardWebContents(contents, { openExternal: (url) => void shell.openExternal(url), log }));

  let uiWindow: BrowserWindow | null = null;
  let trainingWindow: BrowserWindow | null = null;

  // Services.
  const blocker = new SuspensionBlocker(powerSaveBlocker);
  const clock: Clock = {
    now: () => new Date(),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    setInterval: (fn, ms) => setInterval(fn, ms),
    clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
  };
  const supervisor: TrainingSupervisor = new TrainingSupervisor({
    settings,
    pushOrders: (orders) => trainingWindow?.webContents.send(TRAINING_CHANNELS.orders, orders),
    publish: (status) => {
      uiWindow?.webContents.send(UI_CHANNELS.status, status);
      tray.update(status);
      blocker.update(supervisor.activelyTraining());
    },
    ensureTrainingWindow: () => {
      // Absent at the first Contribute, or after the restarter gave up: counting starts afresh.
      if (trainingWindow || restarter.restarting) return;
      restarter.reset();
      openTrainingWindow();
    },
    noAdapterMessage: () => noAdapterMessage(gpuMode, environment),
    gpuPlan,
    now: Date.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  const restarter = new CrashRestarter({
    now: Date.now,
    setTimeout: clock.setTimeout,
    restart: () => {
      if (!trainingWindow) openTrainingWindow();
      supervisor.setRestarting(false);
    },
    giveUp: (message) => supervisor.fail(message),
  });
  const quitFlow = new QuitFlow({ saveCheckpoint: () => supervisor.prepareToQuit(), quit: () => app.quit(), log });
  const noticeFlag = join(userData, 'tray-notice-shown');
  let noticeShown = existsSync(noticeFlag);
  const closeToTray = new CloseToTray({
    noticeShown: () => noticeShown,
    markNoticeShown: async () => {
      noticeShown = true;
      await writeFile(noticeFlag, new Date().toISOString());
    },
    notify: (title, body) => {
      if (Notification.isSupported()) new Notification({ title, body }).show();
    },
    quitting: () => quitFlow.quitting,
    log,
  });
  const tray = new TrayController(
    new Tray(nativeImage.createFromPath(trayIconPath('idle'))),
    (state) => nativeImage.createFromPath(trayIconPath(state)),
    (items) => Menu.buildFromTemplate(items.map(({ label, enabled, click }) => ({ label, enabled, click }))),
    {
      show: () => showUi(),
      pause: () => supervisor.pause(),
      resume: () => supervisor.resume(),
      contribute: () => supervisor.contribute(),
      finishRoundThenStop: () => supervisor.finishRoundThenStop(),
      quit: () => app.quit(),
    },
  );
  const power: PowerSource = {
    isOnBatteryPower: () => powerMonitor.isOnBatteryPower(),
    getSystemIdleTime: () => powerMonitor.getSystemIdleTime(),
    getSystemIdleState: (threshold) => powerMonitor.getSystemIdleState(threshold),
    on: (event, listener) => powerMonitor.on(event as 'suspend', listener),
  };
  const run = promisify(execFile);
  const fullscreen = new X11FullscreenProbe(async (file, args) => (await run(file, args, { timeout: 2_000 })).stdout, environment);
  const monitor = new CitizenMonitor({
    power,
    fullscreen,
    clock,
    settings,
    onChange: (reasons) => supervisor.setPolicyReasons(reasons),
    // Save before sleeping: the machine may not come back soon, or at all.
    onSuspend: () => void supervisor.requestCheckpoint(5_000),
  });
  const secrets = new SecretStore(safeStorage, { readFile, writeFile, rename, rm }, join(userData, 'wallet-secret.bin'), process.platform, () => settings().allowPlainTextSecrets);
  const loginItem = new LoginItemService(app, { mkdir, writeFile, rm, readFile }, {
    platform: process.platform,
    executable: process.env.APPIMAGE ?? process.execPath,
    launchArgs: app.isPackaged ? [] : [APP_ROOT],
    configHome: process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'),
  });

  function showUi(): void {
    if (!uiWindow) openUiWindow(true);
    else {
      uiWindow.show();
      uiWindow.focus();
    }
  }

  function openUiWindow(show: boolean): void {
    const window = createUiWindow(urls, show);
    uiWindow = window;
    window.on('close', (event) => closeToTray.onClose(event, window));
    window.on('closed', () => (uiWindow = null));
    window.webContents.on('render-process-gone', (_event, details) => {
      log(`UI renderer gone (${details.reason}); reloading it`);
      if (details.reason !== 'clean-exit') window.webContents.reload();
    });
    window.webContents.on('did-finish-load', () => window.webContents.send(UI_CHANNELS.status, supervisor.status()));
  }

  function openTrainingWindow(): void {
    const window = createTrainingWindow(urls);
    trainingWindow = window;
    window.webContents.on('render-process-gone', (_event, details) => trainingGone(window, details.reason, `exit code ${details.exitCode}`));
    window.on('closed', () => {
      if (trainingWindow === window) trainingWindow = null;
    });
  }

  function trainingGone(window: BrowserWindow | null, reason: GoneReason, detail: string): void {
    if (quitFlow.quitting) return;
    log(`training stopped (${reason}${detail ? `, ${detail}` : ''}); restarting from the last checkpoint`);
    supervisor.pageLost();
    if (window && trainingWindow === window) {
      trainingWindow = null;
      if (!window.isDestroyed()) window.destroy();
    }
    if (restarter.failed(reason, detail) !== null) supervisor.setRestarting(true);
  }

  // A GPU process crash loses every WebGPU device: the training page restarts from its checkpoint.
  app.on('child-process-gone', (_event, details) => {
    if (details.type === 'GPU' && details.reason !== 'clean-exit' && trainingWindow) trainingGone(trainingWindow, 'gpu-lost', `GPU process ${details.reason}`);
  });

  registerIpc(new IpcGuard(ipcMain, isTrustedPage, log), {
    supervisor,
    secrets,
    settings,
    updateSettings: async (patch) => {
      const before = settings();
      const after = await settingsStore.update(patch);
      if (after.startAtLogin !== before.startAtLogin) await loginItem.apply(after.startAtLogin);
      void monitor.evaluate();
      supervisor.refresh(); // the orders carry the duty cycle and the coordinator URL
      if (after.coordinatorUrl !== before.coordinatorUrl) {
        // The CSP names the coordinator: pages reload to get the new one (after saving work).
        await supervisor.requestCheckpoint(10_000);
        supervisor.pageLost();
        trainingWindow?.webContents.reload();
        uiWindow?.webContents.reload();
      }
      if (after.gpuMode !== before.gpuMode) {
        // Chromium's GPU switches apply at launch only.
        app.relaunch();
        app.quit();
      }
      return after;
    },
    capabilities: () => ({ fullscreenDetection: fullscreen.detectable, loginItem: true, secretStorage: secrets.info() }),
    trainingFailed: (kind, message) => trainingGone(trainingWindow, kind, message),
    uiWindowId: () => uiWindow?.webContents.id ?? null,
    trainingWindowId: () => trainingWindow?.webContents.id ?? null,
  });

  // Starting Tessera again shows the window — unless it is the login item's hidden start.
  app.on('second-instance', (_event, argv) => {
    if (!argv.includes(HIDDEN_FLAG)) showUi();
  });
  app.on('activate', () => showUi());
  app.on('before-quit', (event) => quitFlow.onBeforeQuit(event));
  app.on('window-all-closed', () => {
    // Stay in the tray: quitting is the tray menu's job.
  });
  app.on('will-quit', () => {
    monitor.stop();
    blocker.update(false);
  });

  // The training window opens on Contribute (supervisor.contribute → ensureTrainingWindow).
  const hidden = loginItem.startedHidden(process.argv);
  openUiWindow(!hidden);
  monitor.start();
  tray.update(supervisor.status());
  // Started at login: the user asked to contribute in the background.
  if (hidden) supervisor.contribute();
}
