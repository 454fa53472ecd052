// Closing and quitting. Closing the window hides it: training goes on in the tray, and the
// first time a notice says so. Quitting (tray menu, Cmd-Q, the OS logging out) first asks
// the training page for a checkpoint, waits a bounded time, then really quits.

export interface ClosableWindow {
  hide(): void;
}

export interface CloseToTrayOptions {
  noticeShown: () => boolean;
  markNoticeShown: () => Promise<void>;
  notify: (title: string, body: string) => void;
  /** True once a real quit is under way: then the window may close. */
  quitting: () => boolean;
  log?: (message: string) => void;
}

export const TRAY_NOTICE = {
  title: 'Tessera keeps training',
  body: 'Tessera is still contributing in the background. Use the tray icon to show it again, pause, or quit.',
};

export class CloseToTray {
  constructor(private readonly options: CloseToTrayOptions) {}

  /** The window's 'close' handler. Returns whether the close was turned into a hide. */
  onClose(event: { preventDefault(): void }, window: ClosableWindow): boolean {
    if (this.options.quitting()) return false;
    event.preventDefault();
    window.hide();
    if (!this.options.noticeShown()) {
      this.options.notify(TRAY_NOTICE.title, TRAY_NOTICE.body);
      // If remembering fails, the notice shows again next launch: worth a log line, no more.
      this.options.markNoticeShown().catch((error: unknown) => this.options.log?.(`could not remember the tray notice: ${String(error)}`));
    }
    return true;
  }
}

export interface QuitFlowOptions {
  /** Saves a checkpoint (bounded); resolves whether it was saved. */
  saveCheckpoint: () => Promise<boolean>;
  /** app.quit(), called again once the checkpoint is saved. */
  quit: () => void;
  log?: (message: string) => void;
}

export class QuitFlow {
  private phase: 'running' | 'saving' | 'quitting' = 'running';

  constructor(private readonly options: QuitFlowOptions) {}

  get quitting(): boolean {
    return this.phase === 'quitting';
  }

  /** The app's 'before-quit' handler. */
  onBeforeQuit(event: { preventDefault(): void }): void {
    if (this.phase === 'quitting') return;
    event.preventDefault();
    if (this.phase === 'saving') return;
    this.phase = 'saving';
    void this.options.saveCheckpoint()
      .then((saved) => this.options.log?.(saved ? 'checkpoint saved before quitting' : 'no checkpoint confirmed before quitting; the last saved one will be used'))
      .catch((error: unknown) => this.options.log?.(`checkpoint before quitting failed: ${String(error)}`))
      .finally(() => {
        this.phase = 'quitting';
        this.options.quit();
      });
  }
}
