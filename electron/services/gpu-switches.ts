// WebGPU in Electron's renderer, per platform. Windows and macOS: Chromium enables it by
// default (D3D12, Metal). Linux: WebGPU needs Dawn's Vulkan backend, which Electron leaves
// off unless the 'Vulkan' feature is switched on; but on a native Wayland session Chromium
// refuses Vulkan ("--ozone-platform=wayland is not compatible with Vulkan") and the GPU
// process can fail to draw any window. So: X11 → Vulkan on; Wayland → Vulkan off, unless the
// user picks 'x11-vulkan' (run through XWayland with Vulkan on). When the page then finds no
// adapter, noAdapterMessage() says what to try.
import type { GpuMode } from '../contract.ts';

export interface GpuEnvironment {
  platform: string;
  env: Record<string, string | undefined>;
  argv: readonly string[];
}

export interface GpuLaunchPlan {
  /** [switch, value?] pairs for app.commandLine.appendSwitch, before 'ready'. */
  switches: Array<[string, string?]>;
  /** In words, for the UI. */
  description: string;
  /** Set when the ozone platform must change, which only works as a launch argument. */
  relaunchWith: string[] | null;
}

export function isWaylandSession({ env, argv }: Pick<GpuEnvironment, 'env' | 'argv'>): boolean {
  if (argv.some((a) => a === '--ozone-platform=x11')) return false;
  return env.XDG_SESSION_TYPE === 'wayland' || Boolean(env.WAYLAND_DISPLAY);
}

export function gpuLaunchPlan(mode: GpuMode, environment: GpuEnvironment): GpuLaunchPlan {
  if (environment.platform !== 'linux') {
    return { switches: [], description: `default WebGPU (${environment.platform === 'darwin' ? 'Metal' : 'Direct3D 12'})`, relaunchWith: null };
  }
  const webgpu: [string, string?] = ['enable-unsafe-webgpu'];
  const vulkan: [string, string?] = ['enable-features', 'Vulkan'];
  const wayland = isWaylandSession(environment);
  if (mode === 'no-vulkan') return { switches: [webgpu], description: 'WebGPU without Vulkan (your choice)', relaunchWith: null };
  if (mode === 'x11-vulkan') {
    const needsRelaunch = wayland && !environment.argv.includes('--ozone-platform=x11');
    return {
      switches: [webgpu, vulkan, ['ozone-platform', 'x11']],
      description: 'Vulkan on, through XWayland (your choice)',
      relaunchWith: needsRelaunch ? ['--ozone-platform=x11'] : null,
    };
  }
  if (mode === 'vulkan' || !wayland) return { switches: [webgpu, vulkan], description: wayland ? 'Vulkan on under Wayland (your choice)' : 'Vulkan on (X11)', relaunchWith: null };
  return { switches: [webgpu], description: 'Wayland session: Vulkan not forced', relaunchWith: null };
}

/** The message for the UI when WebGPU found no adapter under this plan and mode. */
export function noAdapterMessage(mode: GpuMode, environment: GpuEnvironment): string {
  if (environment.platform === 'linux') {
    const wayland = isWaylandSession(environment);
    if (wayland && (mode === 'auto' || mode === 'no-vulkan')) {
      return 'WebGPU found no GPU adapter. On a Wayland session Tessera does not force Vulkan, because that can stop windows from drawing. ' +
        "Settings → GPU mode → 'Vulkan through XWayland' restarts Tessera through XWayland with Vulkan on. " +
        'Also check that Vulkan drivers are installed (vulkaninfo; mesa-vulkan-drivers or the NVIDIA driver).';
    }
    return 'WebGPU found no GPU adapter with Vulkan on. Install Vulkan drivers (mesa-vulkan-drivers for AMD and Intel, the proprietary driver for NVIDIA) and check `vulkaninfo`; ' +
      'the headless `tessera contribute` command is an alternative on servers.';
  }
  return 'WebGPU found no GPU adapter. Update your graphics driver (WebGPU needs Direct3D 12 on Windows, Metal on macOS 11+), then restart Tessera.';
}
