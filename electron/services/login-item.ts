// Start at login, hidden in the tray. Windows and macOS through app.setLoginItemSettings;
// Linux has no such API in Electron, so an XDG autostart entry (~/.config/autostart).
// A start at login passes --hidden, which opens no window (macOS: wasOpenedAtLogin).

export const HIDDEN_FLAG = '--hidden';

export interface LoginItemApp {
  setLoginItemSettings(settings: { openAtLogin: boolean; openAsHidden?: boolean; args?: string[]; path?: string }): void;
  getLoginItemSettings(options?: { args?: string[]; path?: string }): { openAtLogin: boolean; wasOpenedAtLogin?: boolean };
}

export interface AutostartFiles {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  writeFile(path: string, data: string, options: { mode: number }): Promise<void>;
  rm(path: string, options: { force: true }): Promise<void>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
}

export interface LoginItemEnvironment {
  platform: string;
  /** The program to start: process.execPath, or $APPIMAGE for an AppImage. */
  executable: string;
  /** Arguments before --hidden: the app's folder when run unpackaged (electron <path>). */
  launchArgs: string[];
  /** Linux: $XDG_CONFIG_HOME or ~/.config. */
  configHome: string;
}

/** A .desktop Exec value: the path in double quotes with \ " ` $ escaped (XDG spec). */
export function desktopExec(executable: string, args: readonly string[]): string {
  const quote = (s: string) => `"${s.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
  return [quote(executable), ...args].join(' ');
}

export function autostartEntry(executable: string, launchArgs: readonly string[]): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Tessera',
    'Comment=Contribute GPU time to Tessera (starts hidden in the tray)',
    `Exec=${desktopExec(executable, [...launchArgs.map((a) => desktopExec(a, [])), HIDDEN_FLAG])}`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

export class LoginItemService {
  constructor(
    private readonly app: LoginItemApp,
    private readonly files: AutostartFiles,
    private readonly environment: LoginItemEnvironment,
  ) {}

  get autostartPath(): string {
    return `${this.environment.configHome}/autostart/tessera.desktop`;
  }

  async apply(startAtLogin: boolean): Promise<void> {
    const { platform } = this.environment;
    if (platform === 'linux') {
      if (startAtLogin) {
        await this.files.mkdir(`${this.environment.configHome}/autostart`, { recursive: true });
        await this.files.writeFile(this.autostartPath, autostartEntry(this.environment.executable, this.environment.launchArgs), { mode: 0o644 });
      } else {
        await this.files.rm(this.autostartPath, { force: true });
      }
      return;
    }
    if (platform === 'win32') {
      this.app.setLoginItemSettings({ openAtLogin: startAtLogin, path: this.environment.executable, args: this.windowsArgs() });
      return;
    }
    // macOS: openAsHidden only works before macOS 13; later ones report wasOpenedAtLogin instead.
    this.app.setLoginItemSettings({ openAtLogin: startAtLogin, openAsHidden: startAtLogin });
  }

  async isEnabled(): Promise<boolean> {
    if (this.environment.platform === 'linux') {
      try {
        return (await this.files.readFile(this.autostartPath, 'utf8')).includes(HIDDEN_FLAG);
      } catch {
        return false;
      }
    }
    const options = this.environment.platform === 'win32' ? { path: this.environment.executable, args: this.windowsArgs() } : undefined;
    return this.app.getLoginItemSettings(options).openAtLogin;
  }

  private windowsArgs(): string[] {
    return [...this.environment.launchArgs.map((a) => `"${a}"`), HIDDEN_FLAG];
  }

  /** Whether this launch came from the login item, so no window should open. */
  startedHidden(argv: readonly string[]): boolean {
    if (argv.includes(HIDDEN_FLAG)) return true;
    return this.environment.platform === 'darwin' && this.app.getLoginItemSettings().wasOpenedAtLogin === true;
  }
}
