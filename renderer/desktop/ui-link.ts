// The UI window's side of the desktop contract, as pure functions: the main process's status
// as the UI's live status, its pause reasons in words, and the settings both ways. In the
// desktop app the settings of record are the main process's (DesktopSettings, validated
// there, read by its good-citizen policy and the training window's orders); the UI's
// IndexedDB settings keep only what is the UI's own (the log level) and are never sent.
import type { DesktopSettings, DesktopStatus, PauseReason } from '../../electron/contract.ts';
import type { Settings } from '../state/db.ts';
import { coordinatorSocketUrl } from '../state/rules.ts';
import { IDLE, kept, type Activity, type RunStatus } from '../state/run-status.ts';

export const PAUSE_REASON_TEXT: Record<PauseReason, string> = {
  'user-paused': 'paused by you',
  'on-battery': 'on battery',
  'user-active': 'you are using the computer',
  'fullscreen-app': 'a full-screen app is running',
  'outside-schedule': 'outside the schedule',
  'system-sleep': 'the computer is going to sleep',
  restarting: 'restarting after a crash',
};

export function pauseReasonsText(reasons: readonly PauseReason[]): string | null {
  return reasons.length === 0 ? null : reasons.map((r) => PAUSE_REASON_TEXT[r]).join(', ');
}

export const TRAY_TEXT: Record<DesktopStatus['tray'], string> = { idle: 'Idle', training: 'Training', paused: 'Paused', error: 'Error' };

const ACTIVITY_OF_PHASE: Record<NonNullable<DesktopStatus['engine']>['phase'], Activity> = {
  connecting: 'connecting',
  syncing: 'syncing',
  training: 'training',
  exchanging: 'exchanging',
  waiting: 'waiting',
  stopped: 'idle',
};

/** The live status the UI shows, from the main process's status (the training window's report). */
export function runFromDesktop(prev: RunStatus, status: DesktopStatus): RunStatus {
  const e = status.engine;
  if (status.intent === 'stopped' && (!e || e.phase === 'stopped')) {
    return { ...IDLE, ...kept(prev) };
  }
  // Contributing, but the training page has not reported yet (starting, or restarting).
  const activity: Activity = e ? ACTIVITY_OF_PHASE[e.phase] : 'connecting';
  return {
    ...prev,
    activity: status.intent === 'finishing-round' && activity === 'waiting' ? 'stopping' : activity === 'idle' ? 'connecting' : activity,
    paused: status.pauseReasons.length > 0,
    stopAfterRound: status.intent === 'finishing-round',
    round: e?.round ?? prev.round,
    step: e?.step ?? prev.step,
    // A step the training window had not reported before: one more for this device's part.
    stepsDone: prev.stepsDone + (e && e.step !== null && e.step > 0 && (e.step !== prev.step || e.round !== prev.round) ? 1 : 0),
    lastLoss: e?.loss ?? prev.lastLoss,
    tokensPerSecond: e?.tokensPerSecond ?? prev.tokensPerSecond,
  };
}

/** The UI's settings with the training ones taken from the main process's. */
export function uiSettingsFrom(desktop: DesktopSettings, local: Settings): Settings {
  const first = desktop.schedule.windows[0];
  return {
    ...local,
    network: 'custom',
    coordinatorUrl: desktop.coordinatorUrl,
    dutyCycle: desktop.gpuDutyCyclePercent,
    pauseOnBattery: desktop.pauseOnBattery,
    // The UI window being hidden (closed to the tray) never holds training in the desktop app.
    pauseWhenHidden: false,
    schedule: { enabled: desktop.schedule.enabled, from: first?.start ?? local.schedule.from, to: first?.end ?? local.schedule.to },
  };
}

export type DesktopPatch = Partial<Omit<DesktopSettings, 'schemaVersion'>>;

const EVERY_DAY = [0, 1, 2, 3, 4, 5, 6];

/**
 * What a change of the UI's settings means for the main process's (empty when it concerns
 * only the UI). The UI edits the schedule's first window; any others are kept.
 */
export function desktopPatchOf(patch: Partial<Settings>, current: DesktopSettings): DesktopPatch {
  const out: DesktopPatch = {};
  if (patch.coordinatorUrl !== undefined) out.coordinatorUrl = coordinatorSocketUrl(patch.coordinatorUrl) ?? patch.coordinatorUrl.trim();
  if (patch.dutyCycle !== undefined) out.gpuDutyCyclePercent = patch.dutyCycle;
  if (patch.pauseOnBattery !== undefined) out.pauseOnBattery = patch.pauseOnBattery;
  if (patch.schedule) {
    const first = current.schedule.windows[0];
    const start = patch.schedule.from ?? first?.start ?? '22:00';
    const end = patch.schedule.to ?? first?.end ?? '07:00';
    out.schedule = { enabled: patch.schedule.enabled ?? current.schedule.enabled, windows: [{ days: first?.days ?? EVERY_DAY, start, end }, ...current.schedule.windows.slice(1)] };
  }
  return out;
}
