// The tray icon and its menu, as a function of the app's status. Electron's Tray, Menu and
// nativeImage come in through narrow interfaces so the menu logic is tested without them.
import type { DesktopStatus, PauseReason, TrayState } from '../contract.ts';

export interface TrayMenuItem {
  label: string;
  enabled: boolean;
  click: () => void;
}

export interface TrayLike<Image, Menu> {
  setImage(image: Image): void;
  setToolTip(text: string): void;
  setContextMenu(menu: Menu): void;
  on(event: 'click', listener: () => void): unknown;
}

export interface TrayActions {
  show(): void;
  pause(): void;
  resume(): void;
  contribute(): void;
  finishRoundThenStop(): void;
  quit(): void;
}

const REASON_WORDS: Record<PauseReason, string> = {
  'user-paused': 'paused by you',
  'on-battery': 'on battery',
  'user-active': 'you are using the computer',
  'fullscreen-app': 'a full-screen app is running',
  'outside-schedule': 'outside the schedule',
  'system-sleep': 'the computer is asleep',
  restarting: 'restarting after a crash',
};

export function describePause(reasons: readonly PauseReason[]): string {
  return reasons.map((r) => REASON_WORDS[r]).join(', ');
}

export function trayTooltip(status: DesktopStatus): string {
  switch (status.tray) {
    case 'error': return `Tessera — error: ${status.error ?? 'unknown'}`;
    case 'paused': return `Tessera — paused (${describePause(status.pauseReasons) || 'waiting'})`;
    case 'training': {
      const round = status.engine?.round;
      return `Tessera — ${status.intent === 'finishing-round' ? 'finishing this round' : 'training'}${round != null ? `, round ${round}` : ''}`;
    }
    case 'idle': return 'Tessera — not contributing';
  }
}

/** The menu for a status: Show, Pause/Resume (or Start), Finish round then stop, Quit. */
export function trayMenu(status: DesktopStatus, actions: TrayActions): TrayMenuItem[] {
  const userPaused = status.pauseReasons.includes('user-paused');
  const toggle: TrayMenuItem = status.intent === 'stopped'
    ? { label: 'Start contributing', enabled: status.tray !== 'error', click: actions.contribute }
    : userPaused
      ? { label: 'Resume', enabled: true, click: actions.resume }
      : { label: 'Pause', enabled: true, click: actions.pause };
  return [
    { label: 'Show Tessera', enabled: true, click: actions.show },
    toggle,
    { label: 'Finish round then stop', enabled: status.intent === 'contributing', click: actions.finishRoundThenStop },
    { label: 'Quit (saves a checkpoint first)', enabled: true, click: actions.quit },
  ];
}

export class TrayController<Image, Menu> {
  private shownState: TrayState | null = null;

  constructor(
    private readonly tray: TrayLike<Image, Menu>,
    private readonly icons: (state: TrayState) => Image,
    private readonly buildMenu: (items: TrayMenuItem[]) => Menu,
    private readonly actions: TrayActions,
  ) {
    tray.on('click', actions.show);
  }

  get state(): TrayState | null {
    return this.shownState;
  }

  update(status: DesktopStatus): void {
    if (status.tray !== this.shownState) {
      this.tray.setImage(this.icons(status.tray));
      this.shownState = status.tray;
    }
    this.tray.setToolTip(trayTooltip(status));
    this.tray.setContextMenu(this.buildMenu(trayMenu(status, this.actions)));
  }
}
