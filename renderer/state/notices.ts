// The store's slice for what the page tells the user and whether it is waiting: the notice
// banner (its texts are human.ts's) and the busy flag around engine calls. Part of the one
// store (store.ts composes the slices).
import { noticeOfError, type Notice } from './human.ts';
import type { AppState } from './store.ts';

export interface NoticesState {
  busy: boolean;
  notice: Notice | null;
}

export interface NoticesActions {
  dismissNotice(): void;
}

export function noticesStarting(): NoticesState {
  return { busy: false, notice: null };
}

/** Runs one engine call with the busy flag set; a failure becomes the notice. */
export function busyRunner(set: (patch: Partial<AppState>) => void) {
  return async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    set({ busy: true, notice: null });
    try {
      return await work();
    } catch (e) {
      set({ notice: noticeOfError(e) });
      return undefined;
    } finally {
      set({ busy: false });
    }
  };
}

export function noticesActions(set: (patch: Partial<AppState>) => void): NoticesActions {
  return {
    dismissNotice() {
      set({ notice: null });
    },
  };
}
