import { describe, expect, it } from 'vitest';
import { X11FullscreenProbe } from '../../electron/services/fullscreen-probe.ts';
import { gpuLaunchPlan, noAdapterMessage } from '../../electron/services/gpu-switches.ts';
import { autostartEntry, desktopExec, LoginItemService, type LoginItemApp } from '../../electron/services/login-item.ts';
import { MemoryFiles } from './doubles.ts';

class FakeLoginApp implements LoginItemApp {
  set: Array<Parameters<LoginItemApp['setLoginItemSettings']>[0]> = [];
  openAtLogin = false;
  wasOpenedAtLogin = false;
  setLoginItemSettings(s: Parameters<LoginItemApp['setLoginItemSettings']>[0]) {
    this.set.push(s);
    this.openAtLogin = s.openAtLogin;
  }
  getLoginItemSettings() {
    return { openAtLogin: this.openAtLogin, wasOpenedAtLogin: this.wasOpenedAtLogin };
  }
}

const env = (platform: string, launchArgs: string[] = []) => ({ platform, executable: '/opt/Tessera/tessera', launchArgs, configHome: '/home/u/.config' });

describe('LoginItemService', () => {
  it('Linux: writes an XDG autostart entry that starts hidden, and removes it', async () => {
    const files = new MemoryFiles();
    const service = new LoginItemService(new FakeLoginApp(), files, env('linux'));
    await service.apply(true);
    const entry = String(files.files.get('/home/u/.config/autostart/tessera.desktop')!.data);
    expect(entry).toContain('Exec="/opt/Tessera/tessera" --hidden\n');
    expect(entry).toMatch(/^\[Desktop Entry\]\nType=Application\n/);
    expect(await service.isEnabled()).toBe(true);
    await service.apply(false);
    expect(files.files.size).toBe(0);
    expect(await service.isEnabled()).toBe(false);
  });

  it('Linux, unpackaged: the entry runs electron with the app folder', () => {
    expect(autostartEntry('/usr/lib/electron', ['/home/u/my app'])).toContain('Exec="/usr/lib/electron" "/home/u/my app" --hidden');
    expect(desktopExec('/a "b" $c', [])).toBe('"/a \\"b\\" \\$c"');
  });

  it('Windows: a login item with --hidden; macOS: open as hidden', async () => {
    const win = new FakeLoginApp();
    await new LoginItemService(win, new MemoryFiles(), env('win32')).apply(true);
    expect(win.set).toEqual([{ openAtLogin: true, path: '/opt/Tessera/tessera', args: ['--hidden'] }]);
    const mac = new FakeLoginApp();
    const service = new LoginItemService(mac, new MemoryFiles(), env('darwin'));
    await service.apply(true);
    await service.apply(false);
    expect(mac.set).toEqual([{ openAtLogin: true, openAsHidden: true }, { openAtLogin: false, openAsHidden: false }]);
  });

  it('knows a hidden start: --hidden anywhere, or macOS opened at login', () => {
    const mac = new FakeLoginApp();
    const service = new LoginItemService(mac, new MemoryFiles(), env('darwin'));
    expect(service.startedHidden(['/app', '--hidden'])).toBe(true);
    expect(service.startedHidden(['/app'])).toBe(false);
    mac.wasOpenedAtLogin = true;
    expect(service.startedHidden(['/app'])).toBe(true);
    expect(new LoginItemService(mac, new MemoryFiles(), env('linux')).startedHidden(['/app'])).toBe(false);
  });
});

describe('WebGPU launch plan', () => {
  const linux = (env: Record<string, string>, argv: string[] = []) => ({ platform: 'linux', env, argv });

  it('Windows and macOS need no switches', () => {
    expect(gpuLaunchPlan('auto', { platform: 'win32', env: {}, argv: [] })).toMatchObject({ switches: [], relaunchWith: null });
    expect(gpuLaunchPlan('vulkan', { platform: 'darwin', env: {}, argv: [] }).switches).toEqual([]);
  });

  it('Linux X11: WebGPU with the Vulkan feature on', () => {
    expect(gpuLaunchPlan('auto', linux({ XDG_SESSION_TYPE: 'x11', DISPLAY: ':0' })).switches).toEqual([['enable-unsafe-webgpu'], ['enable-features', 'Vulkan']]);
  });

  it('Linux Wayland: Vulkan is not forced', () => {
    for (const env of [{ XDG_SESSION_TYPE: 'wayland' }, { WAYLAND_DISPLAY: 'wayland-0' }] as Array<Record<string, string>>) {
      const plan = gpuLaunchPlan('auto', linux(env));
      expect(plan.switches).toEqual([['enable-unsafe-webgpu']]);
      expect(plan.description).toMatch(/Wayland.*not forced/);
    }
  });

  it("'x11-vulkan' on Wayland relaunches through XWayland once, then runs with Vulkan", () => {
    const wayland = { XDG_SESSION_TYPE: 'wayland' };
    expect(gpuLaunchPlan('x11-vulkan', linux(wayland)).relaunchWith).toEqual(['--ozone-platform=x11']);
    const relaunched = gpuLaunchPlan('x11-vulkan', linux(wayland, ['/app', '--ozone-platform=x11']));
    expect(relaunched.relaunchWith).toBeNull();
    expect(relaunched.switches).toContainEqual(['enable-features', 'Vulkan']);
  });

  it('the no-adapter message points a Wayland user at the XWayland mode, others at drivers', () => {
    expect(noAdapterMessage('auto', linux({ XDG_SESSION_TYPE: 'wayland' }))).toMatch(/Vulkan through XWayland/);
    expect(noAdapterMessage('auto', linux({ DISPLAY: ':0' }))).toMatch(/mesa-vulkan-drivers/);
    expect(noAdapterMessage('auto', { platform: 'win32', env: {}, argv: [] })).toMatch(/Direct3D 12/);
  });
});

describe('X11 full-screen probe', () => {
  const x11 = { platform: 'linux', env: { DISPLAY: ':0', XDG_SESSION_TYPE: 'x11' } };

  it("reads the active window's _NET_WM_STATE", async () => {
    let state = '_NET_WM_STATE(ATOM) = _NET_WM_STATE_FULLSCREEN, _NET_WM_STATE_FOCUSED';
    const calls: string[][] = [];
    const probe = new X11FullscreenProbe(async (_file, args) => {
      calls.push(args);
      return args[0] === '-root' ? '_NET_ACTIVE_WINDOW(WINDOW): window id # 0x3a00007' : state;
    }, x11);
    expect(await probe.check()).toBe(true);
    state = '_NET_WM_STATE(ATOM) = _NET_WM_STATE_MAXIMIZED_VERT';
    expect(await probe.check()).toBe(false);
    expect(calls[1]).toEqual(['-id', '0x3a00007', '_NET_WM_STATE']);
  });

  it('no active window → not full screen; Wayland and other platforms cannot tell', async () => {
    const probe = new X11FullscreenProbe(async () => '_NET_ACTIVE_WINDOW(WINDOW): window id # 0x0', x11);
    expect(await probe.check()).toBe(false);
    const wayland = new X11FullscreenProbe(async () => '', { platform: 'linux', env: { DISPLAY: ':0', XDG_SESSION_TYPE: 'wayland' } });
    expect(wayland.detectable).toBe(false);
    expect(await wayland.check()).toBeNull();
    expect(new X11FullscreenProbe(async () => '', { platform: 'win32', env: {} }).detectable).toBe(false);
  });

  it('stops spawning xprop after it keeps failing (not installed)', async () => {
    let runs = 0;
    const probe = new X11FullscreenProbe(async () => { runs++; throw new Error('spawn xprop ENOENT'); }, x11);
    for (let i = 0; i < 5; i++) expect(await probe.check()).toBeNull();
    expect(runs).toBe(3);
  });
});
