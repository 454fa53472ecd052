// A test double of the 'electron' module for main-wiring.test.ts: just enough of app,
// BrowserWindow, ipcMain, Tray, powerMonitor and the rest for electron/main.ts to start, with
// every call recorded in `fake` so the test can drive the app and see what it did.
import { EventEmitter } from 'node:events';

type Handler = (event: unknown, ...args: unknown[]) => unknown;

export const fake = {
  userData: '',
  switches: [] as Array<[string, string | undefined]>,
  schemes: [] as unknown[],
  protocolHandlers: new Map<string, (request: { url: string }) => Promise<Response>>(),
  ipcHandlers: new Map<string, Handler>(),
  windows: [] as FakeBrowserWindow[],
  trays: [] as FakeTray[],
  notifications: [] as Array<{ title: string; body: string }>,
  errors: [] as string[],
  quits: 0,
  blockers: new Set<number>(),
  permissionRequest: null as null | ((contents: { getURL(): string }, permission: string, callback: (granted: boolean) => void) => void),
};

class FakeApp extends EventEmitter {
  isPackaged = false;
  commandLine = { appendSwitch: (name: string, value?: string) => void fake.switches.push([name, value]) };
  requestSingleInstanceLock = () => true;
  getPath = (_name: string) => fake.userData;
  setPath = (_name: string, path: string) => void (fake.userData = path);
  whenReady = () => Promise.resolve();
  relaunch = () => {};
  exit = () => {};
  quit = () => {
    fake.quits++;
    let prevented = false;
    this.emit('before-quit', { preventDefault: () => (prevented = true) });
    if (!prevented) this.emit('will-quit');
  };
  setAppUserModelId = () => {};
  setLoginItemSettings = () => {};
  getLoginItemSettings = () => ({ openAtLogin: false, wasOpenedAtLogin: false });
}
export const app = new FakeApp();

let nextId = 1;
class FakeWebContents extends EventEmitter {
  id = nextId++;
  url = '';
  sent: Array<[string, unknown]> = [];
  openHandler: ((details: { url: string }) => unknown) | null = null;
  constructor(readonly window: FakeBrowserWindow) {
    super();
  }
  get mainFrame() {
    return this.frame;
  }
  frame = { url: '' };
  send = (channel: string, payload: unknown) => void this.sent.push([channel, payload]);
  setWindowOpenHandler = (handler: (details: { url: string }) => unknown) => void (this.openHandler = handler);
  getURL = () => this.url;
  reload = () => {};
}

export class FakeBrowserWindow extends EventEmitter {
  webContents: FakeWebContents;
  visible = false;
  destroyed = false;
  constructor(readonly options: { show?: boolean; webPreferences: Record<string, unknown> }) {
    super();
    this.webContents = new FakeWebContents(this);
    fake.windows.push(this);
    app.emit('web-contents-created', {}, this.webContents);
  }
  static getAllWindows = () => fake.windows.filter((w) => !w.destroyed);
  loadURL = async (url: string) => {
    this.webContents.url = url;
    this.webContents.frame = { url };
    this.emit('ready-to-show');
  };
  show = () => void (this.visible = true);
  hide = () => void (this.visible = false);
  focus = () => {};
  isDestroyed = () => this.destroyed;
  destroy = () => {
    this.destroyed = true;
    this.emit('closed');
  };
  /** What the user's close button does. */
  close = () => {
    let prevented = false;
    this.emit('close', { preventDefault: () => (prevented = true) });
    if (!prevented) this.destroy();
  };
}
export const BrowserWindow = FakeBrowserWindow;

export class FakeTray {
  image: unknown = null;
  tooltip = '';
  menu: Array<{ label: string; enabled: boolean; click: () => void }> = [];
  listeners = new EventEmitter();
  constructor(image: unknown) {
    this.image = image;
    fake.trays.push(this);
  }
  setImage = (image: unknown) => void (this.image = image);
  setToolTip = (text: string) => void (this.tooltip = text);
  setContextMenu = (menu: FakeTray['menu']) => void (this.menu = menu);
  on = (event: string, listener: () => void) => this.listeners.on(event, listener);
}
export const Tray = FakeTray;

export const Menu = { buildFromTemplate: (items: unknown[]) => items };
export const nativeImage = { createFromPath: (path: string) => ({ path }) };
export class Notification {
  static isSupported = () => true;
  constructor(private readonly options: { title: string; body: string }) {}
  show = () => void fake.notifications.push(this.options);
}
export const dialog = { showErrorBox: (title: string, body: string) => void fake.errors.push(`${title}: ${body}`) };
export const ipcMain = { handle: (channel: string, handler: Handler) => void fake.ipcHandlers.set(channel, handler) };
export const powerMonitor = Object.assign(new EventEmitter(), {
  isOnBatteryPower: () => false,
  getSystemIdleTime: () => 3600,
  getSystemIdleState: () => 'idle' as const,
});
let blockerId = 1;
export const powerSaveBlocker = {
  start: () => (fake.blockers.add(blockerId), blockerId++),
  stop: (id: number) => fake.blockers.delete(id),
  isStarted: (id: number) => fake.blockers.has(id),
};
export const protocol = {
  registerSchemesAsPrivileged: (schemes: unknown[]) => void fake.schemes.push(...schemes),
  handle: (scheme: string, handler: (request: { url: string }) => Promise<Response>) => void fake.protocolHandlers.set(scheme, handler),
};
export const safeStorage = {
  isEncryptionAvailable: () => true,
  encryptString: (text: string) => Buffer.from(text, 'utf8').reverse(),
  decryptString: (data: Buffer) => Buffer.from(data).reverse().toString('utf8'),
  getSelectedStorageBackend: () => 'gnome_libsecret',
};
export const session = {
  defaultSession: {
    webRequest: { onHeadersReceived: () => {} },
    setPermissionRequestHandler: (handler: typeof fake.permissionRequest) => void (fake.permissionRequest = handler),
    setPermissionCheckHandler: () => {},
  },
};
export const shell = { openExternal: async () => {} };
