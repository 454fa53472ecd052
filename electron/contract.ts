// The preload contract: the only way the renderer reaches the main process. Types only, so
// renderer/ can `import type` them without pulling in electron. Two APIs, one per window:
//   window.tessera          the UI window (TesseraDesktopApi)
//   window.tesseraTraining  the hidden training window (TesseraTrainingApi); its presence
//                           tells the page to host only the engine, without the UI.
// Both windows load the same renderer build (index.html); the training window adds
// ?role=training to the URL as well.

/** Why training is not running right now, when the user wants it to. */
export type PauseReason =
  | 'user-paused'
  | 'on-battery'
  | 'user-active'
  | 'fullscreen-app'
  | 'outside-schedule'
  | 'system-sleep'
  | 'restarting';

/** What the tray icon shows. */
export type TrayState = 'idle' | 'training' | 'paused' | 'error';

/**
 * A weekly time window in local time. end < start crosses midnight (22:00–07:00). The same shape
 * as src/contributor/availability.ts's ScheduleWindow, which evaluates it (this file imports
 * nothing, so it spells the type out; test/electron/settings.test.ts checks the two agree).
 */
export interface ScheduleWindow {
  /** Days on which the window starts: 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** 'HH:MM', 24-hour. */
  start: string;
  end: string;
}

/** How the app asks Chromium for WebGPU on Linux (ignored on Windows and macOS). */
export type GpuMode = 'auto' | 'vulkan' | 'x11-vulkan' | 'no-vulkan';

export interface DesktopSettings {
  schemaVersion: 1;
  /** The coordinator's WebSocket URL (ws:// or wss://); the CSP allows only its origin. */
  coordinatorUrl: string;
  /** Start (hidden, in the tray) when the user logs in. */
  startAtLogin: boolean;
  pauseOnBattery: boolean;
  /** Pause while the user is at the machine: input idle time below userIdleMinutes. */
  pauseWhenUserActive: boolean;
  userIdleMinutes: number;
  /** Pause while another app is full screen (detectable on Linux/X11 only). */
  pauseWhenFullscreen: boolean;
  /** When enabled, train only inside these windows. */
  schedule: { enabled: boolean; windows: ScheduleWindow[] };
  /** Train at most this share of wall time (10–100). */
  gpuDutyCyclePercent: number;
  gpuMode: GpuMode;
  /** The user read the plain-text warning (Linux without a keyring) and saves secrets anyway. */
  allowPlainTextSecrets: boolean;
}

/** What the training page last told the main process about the engine. */
export interface EngineReport {
  phase: 'connecting' | 'syncing' | 'training' | 'exchanging' | 'waiting' | 'stopped';
  round: number | null;
  step: number | null;
  loss: number | null;
  tokensPerSecond: number | null;
}

export interface GpuSupport {
  /** The switches chosen at launch, in words ("Vulkan on (X11)", "default"). */
  plan: string;
  /** null until the training page has asked for an adapter. */
  adapterFound: boolean | null;
  adapterName: string | null;
  /** What to do when no adapter was found; null when one was. */
  message: string | null;
}

export interface SecretStorageInfo {
  available: boolean;
  /** Linux backend name ('gnome_libsecret', 'kwallet5', 'basic_text', …); 'os' elsewhere. */
  backend: string;
  /** Set when secrets would be stored readable by anyone with the file. */
  warning: string | null;
}

export interface Capabilities {
  fullscreenDetection: boolean;
  loginItem: boolean;
  secretStorage: SecretStorageInfo;
}

export interface DesktopStatus {
  /** What the user asked for. */
  intent: 'stopped' | 'contributing' | 'finishing-round';
  tray: TrayState;
  /** Empty while training runs (or while stopped). */
  pauseReasons: PauseReason[];
  engine: EngineReport | null;
  gpu: GpuSupport;
  lastCheckpoint: { round: number | null; step: number | null; at: number } | null;
  /** Training restarts after crashes or GPU loss since launch. */
  restarts: number;
  error: string | null;
}

/** window.tessera, in the UI window. Each method is one action; each returns fresh state. */
export interface TesseraDesktopApi {
  getStatus(): Promise<DesktopStatus>;
  /** Called on every status change; returns the unsubscribe function. */
  onStatus(listener: (status: DesktopStatus) => void): () => void;
  contribute(): Promise<DesktopStatus>;
  pause(): Promise<DesktopStatus>;
  resume(): Promise<DesktopStatus>;
  finishRoundThenStop(): Promise<DesktopStatus>;
  getSettings(): Promise<DesktopSettings>;
  /** Validated in the main process; a bad field rejects with a message naming it. */
  updateSettings(patch: Partial<Omit<DesktopSettings, 'schemaVersion'>>): Promise<DesktopSettings>;
  getCapabilities(): Promise<Capabilities>;
  /** Encrypts with the OS keychain (safeStorage) and stores it in the app's data folder. */
  saveWalletSecret(secret: string): Promise<SecretStorageInfo>;
  loadWalletSecret(): Promise<string | null>;
  deleteWalletSecret(): Promise<void>;
}

/** What the training page must do now. */
export interface TrainingOrders {
  run: 'train' | 'pause' | 'finish-round-then-stop' | 'stop';
  coordinatorUrl: string;
  /** True after a crash, a GPU loss or a restart: load the last checkpoint first. */
  resumeFromCheckpoint: boolean;
  dutyCyclePercent: number;
  /** A checkpoint request to answer with checkpointSaved(id); null when none is pending. */
  saveCheckpointRequest: number | null;
}

export interface StepReport {
  round: number;
  step: number;
  loss: number;
  /** GPU time of the step just finished, in milliseconds. */
  durationMs: number;
  tokensPerSecond: number;
}

/** window.tesseraTraining, in the hidden training window. */
export interface TesseraTrainingApi {
  /** First call: what the page found (adapter or not); answers with the first orders. */
  ready(gpu: { adapterFound: boolean; adapterName: string | null }): Promise<TrainingOrders>;
  /** After every inner step: wait restMs (the duty-cycle cap) before the next, then obey orders. */
  stepDone(report: StepReport): Promise<{ restMs: number; orders: TrainingOrders }>;
  reportPhase(report: EngineReport): Promise<void>;
  roundFinished(report: { round: number }): Promise<TrainingOrders>;
  checkpointSaved(report: { requestId: number | null; round: number | null; step: number | null }): Promise<void>;
  /** A lost GPU device or a fatal engine error; the main process restarts from the last checkpoint. */
  reportFailure(report: { kind: 'gpu-lost' | 'fatal'; message: string }): Promise<void>;
  /**
   * The wallet secret the UI window saved (saveWalletSecret), or null: the training window
   * signs with the same hotkey and has no one to type a password.
   */
  loadWalletSecret(): Promise<string | null>;
  /** Orders pushed when they change (pause, resume, save a checkpoint); returns unsubscribe. */
  onOrders(listener: (orders: TrainingOrders) => void): () => void;
}

/** What the preloads add to `window`; e.g. `(window as unknown as TesseraWindow).tessera`. */
export interface TesseraWindow {
  tessera?: TesseraDesktopApi;
  tesseraTraining?: TesseraTrainingApi;
}
