// Is another app full screen? Detectable on Linux under X11 through xprop (the active
// window's _NET_WM_STATE); Electron has no API for it, and on Windows, macOS and Wayland
// this probe says it cannot tell (the setting then has no effect, and the UI says so).
import type { FullscreenProbe } from './citizen-policy.ts';

/** Runs a program and resolves with its stdout (node:child_process execFile, promisified). */
export type RunProgram = (file: string, args: string[]) => Promise<string>;

export interface ProbeEnvironment {
  platform: string;
  env: Record<string, string | undefined>;
}

export function fullscreenDetectable({ platform, env }: ProbeEnvironment): boolean {
  return platform === 'linux' && Boolean(env.DISPLAY) && env.XDG_SESSION_TYPE !== 'wayland';
}

const ACTIVE_RE = /window id # (0x[0-9a-f]+)/i;

export class X11FullscreenProbe implements FullscreenProbe {
  readonly detectable: boolean;
  private failures = 0;

  constructor(private readonly run: RunProgram, environment: ProbeEnvironment) {
    this.detectable = fullscreenDetectable(environment);
  }

  async check(): Promise<boolean | null> {
    // After repeated failures (xprop not installed) stop spawning it every poll.
    if (!this.detectable || this.failures >= 3) return null;
    try {
      const active = ACTIVE_RE.exec(await this.run('xprop', ['-root', '_NET_ACTIVE_WINDOW']));
      if (!active || /^0x0+$/i.test(active[1])) return false;
      const state = await this.run('xprop', ['-id', active[1], '_NET_WM_STATE']);
      this.failures = 0;
      return state.includes('_NET_WM_STATE_FULLSCREEN');
    } catch {
      this.failures += 1;
      return null;
    }
  }
}

/** For platforms where nothing can tell. */
export const UNDETECTABLE_FULLSCREEN: FullscreenProbe = { detectable: false, check: async () => null };
