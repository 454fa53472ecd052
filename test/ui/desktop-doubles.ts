// Test doubles of the desktop app's preload APIs (electron/contract.ts): they record every
// call, answer as the main process would in the few ways the renderer depends on, and let the
// test push orders and statuses the way the main process does.
import type {
  DesktopSettings, DesktopStatus, SecretStorageInfo, StepReport, TesseraDesktopApi, TesseraTrainingApi, TrainingOrders,
} from '../../electron/contract.ts';

export const TRAIN: TrainingOrders = { run: 'train', coordinatorUrl: 'ws://127.0.0.1:8787/ws', resumeFromCheckpoint: false, dutyCyclePercent: 50, saveCheckpointRequest: null };

/** window.tesseraTraining: stepDone answers `restMs` and the current orders. */
export class FakeTrainingApi implements TesseraTrainingApi {
  readonly calls: { method: string; arg: unknown }[] = [];
  orders: TrainingOrders = { ...TRAIN };
  restMs = 120;
  secret: string | null = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
  private listeners = new Set<(o: TrainingOrders) => void>();

  private record(method: string, arg?: unknown): void {
    this.calls.push({ method, arg });
  }
  callsOf(method: string): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.arg);
  }
  /** The main process pushing new orders. */
  push(patch: Partial<TrainingOrders>): void {
    this.orders = { ...this.orders, ...patch };
    for (const fn of this.listeners) fn({ ...this.orders });
  }

  async ready(gpu: { adapterFound: boolean; adapterName: string | null }) {
    this.record('ready', gpu);
    return { ...this.orders };
  }
  async stepDone(report: StepReport) {
    this.record('stepDone', report);
    return { restMs: this.restMs, orders: { ...this.orders } };
  }
  async reportPhase(report: Parameters<TesseraTrainingApi['reportPhase']>[0]) {
    this.record('reportPhase', report);
  }
  async roundFinished(report: { round: number }) {
    this.record('roundFinished', report);
    return { ...this.orders };
  }
  async checkpointSaved(report: Parameters<TesseraTrainingApi['checkpointSaved']>[0]) {
    this.record('checkpointSaved', report);
    if (this.orders.saveCheckpointRequest === report.requestId) this.orders = { ...this.orders, saveCheckpointRequest: null };
  }
  async reportFailure(report: { kind: 'gpu-lost' | 'fatal'; message: string }) {
    this.record('reportFailure', report);
  }
  async loadWalletSecret() {
    this.record('loadWalletSecret');
    return this.secret;
  }
  onOrders(listener: (o: TrainingOrders) => void) {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
}

export const DESKTOP_SETTINGS: DesktopSettings = {
  schemaVersion: 1, coordinatorUrl: 'wss://run.example.org/ws', startAtLogin: false, pauseOnBattery: true, pauseWhenUserActive: false, userIdleMinutes: 5,
  pauseWhenFullscreen: true, schedule: { enabled: false, windows: [] }, gpuDutyCyclePercent: 100, gpuMode: 'auto', allowPlainTextSecrets: false,
};

export const STOPPED: DesktopStatus = {
  intent: 'stopped', tray: 'idle', pauseReasons: [], engine: null, gpu: { plan: 'Vulkan on (X11)', adapterFound: null, adapterName: null, message: null },
  lastCheckpoint: null, restarts: 0, error: null,
};

/** window.tessera: a small model of the main process (intent, user pause, settings, secret). */
export class FakeDesktopApi implements TesseraDesktopApi {
  readonly calls: { method: string; arg: unknown }[] = [];
  status: DesktopStatus = structuredClone(STOPPED);
  settings: DesktopSettings = structuredClone(DESKTOP_SETTINGS);
  storage: SecretStorageInfo = { available: true, backend: 'gnome_libsecret', warning: null };
  secret: string | null = null;
  private listeners = new Set<(s: DesktopStatus) => void>();

  private record(method: string, arg?: unknown): void {
    this.calls.push({ method, arg });
  }
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
  callsOf(method: string): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.arg);
  }
  /** The main process publishing a status change. */
  publish(patch: Partial<DesktopStatus>): void {
    this.status = { ...this.status, ...patch };
    for (const fn of this.listeners) fn(structuredClone(this.status));
  }
  private change(patch: Partial<DesktopStatus>): DesktopStatus {
    this.status = { ...this.status, ...patch };
    return structuredClone(this.status);
  }

  async getStatus() {
    this.record('getStatus');
    return structuredClone(this.status);
  }
  onStatus(listener: (s: DesktopStatus) => void) {
    this.record('onStatus');
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }
  async contribute() {
    this.record('contribute');
    return this.change({ intent: 'contributing', tray: 'training', pauseReasons: [] });
  }
  async pause() {
    this.record('pause');
    return this.change({ tray: 'paused', pauseReasons: ['user-paused', ...this.status.pauseReasons.filter((r) => r !== 'user-paused')] });
  }
  async resume() {
    this.record('resume');
    const pauseReasons = this.status.pauseReasons.filter((r) => r !== 'user-paused');
    return this.change({ pauseReasons, tray: pauseReasons.length ? 'paused' : 'training' });
  }
  async finishRoundThenStop() {
    this.record('finishRoundThenStop');
    return this.change({ intent: 'finishing-round' });
  }
  async getSettings() {
    this.record('getSettings');
    return structuredClone(this.settings);
  }
  async updateSettings(patch: Partial<DesktopSettings>) {
    this.record('updateSettings', patch);
    const p = patch.gpuDutyCyclePercent;
    if (p !== undefined && (p < 10 || p > 100)) throw new Error('gpuDutyCyclePercent must be an integer from 10 to 100');
    this.settings = { ...this.settings, ...patch };
    return structuredClone(this.settings);
  }
  async getCapabilities() {
    this.record('getCapabilities');
    return { fullscreenDetection: true, loginItem: true, secretStorage: { ...this.storage } };
  }
  async saveWalletSecret(secret: string) {
    this.record('saveWalletSecret', secret);
    if (this.storage.backend === 'basic_text' && !this.settings.allowPlainTextSecrets) throw new Error('not saved: plain text');
    this.secret = secret;
    return { ...this.storage };
  }
  async loadWalletSecret() {
    this.record('loadWalletSecret');
    return this.secret;
  }
  async deleteWalletSecret() {
    this.record('deleteWalletSecret');
    this.secret = null;
  }
}
