// Good-citizen policy: when the user wants to contribute, should training run right now?
// A pure decision over what the machine reports, and a monitor that polls Electron's
// powerMonitor (through a narrow interface) and a full-screen probe, and reports changes.
import type { DesktopSettings, PauseReason } from '../contract.ts';
import { scheduleAllows } from '../../src/contributor/availability.ts';

export interface MachineSnapshot {
  onBattery: boolean;
  /** Seconds since the last keyboard or mouse input. */
  idleSeconds: number;
  /** The screen is locked: nobody is at the machine, whatever the idle time says. */
  locked: boolean;
  /** null where it cannot be detected. */
  fullscreenApp: boolean | null;
  now: Date;
  /** Between powerMonitor 'suspend' and the settle delay after 'resume'. */
  sleeping: boolean;
}

type PolicySettings = Pick<DesktopSettings, 'pauseOnBattery' | 'pauseWhenUserActive' | 'userIdleMinutes' | 'pauseWhenFullscreen' | 'schedule'>;

/** The reasons to hold training back, in a fixed order; empty means train. */
export function pauseReasons(settings: PolicySettings, machine: MachineSnapshot): PauseReason[] {
  const reasons: PauseReason[] = [];
  if (machine.sleeping) reasons.push('system-sleep');
  if (settings.pauseOnBattery && machine.onBattery) reasons.push('on-battery');
  // Active = recent input. Resuming therefore waits a whole threshold of no input.
  if (settings.pauseWhenUserActive && !machine.locked && machine.idleSeconds < settings.userIdleMinutes * 60) reasons.push('user-active');
  if (settings.pauseWhenFullscreen && machine.fullscreenApp === true) reasons.push('fullscreen-app');
  if (!scheduleAllows(settings.schedule, machine.now)) reasons.push('outside-schedule');
  return reasons;
}

/** The part of Electron's powerMonitor the monitor uses. */
export interface PowerSource {
  isOnBatteryPower(): boolean;
  getSystemIdleTime(): number;
  getSystemIdleState(idleThreshold: number): 'active' | 'idle' | 'locked' | 'unknown';
  on(event: 'suspend' | 'resume' | 'on-ac' | 'on-battery' | 'lock-screen' | 'unlock-screen', listener: () => void): unknown;
}

export interface FullscreenProbe {
  /** false when this platform cannot tell. */
  readonly detectable: boolean;
  /** Whether another app is full screen; null when the check failed. */
  check(): Promise<boolean | null>;
}

export interface Clock {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface CitizenMonitorOptions {
  power: PowerSource;
  fullscreen: FullscreenProbe;
  clock: Clock;
  settings: () => PolicySettings;
  /** Called with the new reasons whenever they change. */
  onChange: (reasons: PauseReason[]) => void;
  /** Before a suspend: save work now (the machine may not come back soon). */
  onSuspend: () => void;
  pollMs?: number;
  /** After resume, wait this long before training again (drivers and network come back). */
  resumeSettleMs?: number;
}

export class CitizenMonitor {
  private reasons: PauseReason[] = [];
  private sleeping = false;
  private settleTimer: unknown = null;
  private pollTimer: unknown = null;
  private lastFullscreen: boolean | null = null;

  constructor(private readonly options: CitizenMonitorOptions) {}

  get current(): PauseReason[] {
    return [...this.reasons];
  }

  start(): void {
    const { power, clock } = this.options;
    power.on('suspend', () => this.suspended());
    power.on('resume', () => this.resumed());
    for (const event of ['on-ac', 'on-battery', 'lock-screen', 'unlock-screen'] as const) power.on(event, () => void this.evaluate());
    this.pollTimer = clock.setInterval(() => void this.evaluate(), this.options.pollMs ?? 5_000);
    void this.evaluate();
  }

  stop(): void {
    this.options.clock.clearInterval(this.pollTimer);
    this.options.clock.clearTimeout(this.settleTimer);
  }

  /** Takes a fresh snapshot and reports the reasons if they changed. */
  async evaluate(): Promise<PauseReason[]> {
    const { power, fullscreen, clock, settings } = this.options;
    const policy = settings();
    if (policy.pauseWhenFullscreen && fullscreen.detectable) this.lastFullscreen = await fullscreen.check();
    const snapshot: MachineSnapshot = {
      onBattery: power.isOnBatteryPower(),
      idleSeconds: power.getSystemIdleTime(),
      locked: power.getSystemIdleState(policy.userIdleMinutes * 60) === 'locked',
      fullscreenApp: policy.pauseWhenFullscreen ? this.lastFullscreen : null,
      now: clock.now(),
      sleeping: this.sleeping,
    };
    const next = pauseReasons(policy, snapshot);
    if (next.join() !== this.reasons.join()) {
      this.reasons = next;
      this.options.onChange([...next]);
    }
    return [...next];
  }

  private suspended(): void {
    this.options.clock.clearTimeout(this.settleTimer);
    this.sleeping = true;
    this.options.onSuspend();
    void this.evaluate();
  }

  private resumed(): void {
    this.options.clock.clearTimeout(this.settleTimer);
    this.settleTimer = this.options.clock.setTimeout(() => {
      this.sleeping = false;
      void this.evaluate();
    }, this.options.resumeSettleMs ?? 10_000);
  }
}
