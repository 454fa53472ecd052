// Binds each preload method to its service, through the IpcGuard: the UI channels answer
// only the UI window, the training channels only the training window.
import { TRAINING_CHANNELS, UI_CHANNELS } from './channels.ts';
import type { Capabilities, DesktopSettings } from './contract.ts';
import {
  validateCheckpointSaved, validateEngineReport, validateFailure, validateGpuReady, validateRoundFinished, validateSecret, validateStepReport,
} from './services/contract-validators.ts';
import { noArgument, type IpcGuard } from './services/ipc-guard.ts';
import type { SecretStore } from './services/secret-store.ts';
import type { TrainingSupervisor } from './services/training-supervisor.ts';

export interface IpcServices {
  supervisor: TrainingSupervisor;
  secrets: SecretStore;
  settings: () => DesktopSettings;
  updateSettings: (patch: unknown) => Promise<DesktopSettings>;
  capabilities: () => Capabilities;
  /** The training page reported a lost GPU device or a fatal error. */
  trainingFailed: (kind: 'gpu-lost' | 'fatal', message: string) => void;
  uiWindowId: () => number | null;
  trainingWindowId: () => number | null;
}

const anything = (value: unknown) => value;

export function registerIpc(guard: IpcGuard, s: IpcServices): void {
  const ui = s.uiWindowId;
  guard.handle(UI_CHANNELS.getStatus, ui, noArgument, () => s.supervisor.status());
  guard.handle(UI_CHANNELS.contribute, ui, noArgument, () => s.supervisor.contribute());
  guard.handle(UI_CHANNELS.pause, ui, noArgument, () => s.supervisor.pause());
  guard.handle(UI_CHANNELS.resume, ui, noArgument, () => s.supervisor.resume());
  guard.handle(UI_CHANNELS.finishRoundThenStop, ui, noArgument, () => s.supervisor.finishRoundThenStop());
  guard.handle(UI_CHANNELS.getSettings, ui, noArgument, () => s.settings());
  // The patch is checked field by field in applySettingsPatch (unknown fields refused).
  guard.handle(UI_CHANNELS.updateSettings, ui, anything, (patch) => s.updateSettings(patch));
  guard.handle(UI_CHANNELS.getCapabilities, ui, noArgument, () => s.capabilities());
  guard.handle(UI_CHANNELS.saveWalletSecret, ui, validateSecret, (secret) => s.secrets.save(secret));
  guard.handle(UI_CHANNELS.loadWalletSecret, ui, noArgument, () => s.secrets.load());
  guard.handle(UI_CHANNELS.deleteWalletSecret, ui, noArgument, () => s.secrets.remove());

  const training = s.trainingWindowId;
  guard.handle(TRAINING_CHANNELS.ready, training, validateGpuReady, (gpu) => s.supervisor.pageLoaded(gpu));
  guard.handle(TRAINING_CHANNELS.stepDone, training, validateStepReport, (report) => s.supervisor.stepDone(report));
  guard.handle(TRAINING_CHANNELS.reportPhase, training, validateEngineReport, (report) => s.supervisor.phase(report));
  guard.handle(TRAINING_CHANNELS.roundFinished, training, validateRoundFinished, ({ round }) => s.supervisor.roundFinished(round));
  guard.handle(TRAINING_CHANNELS.checkpointSaved, training, validateCheckpointSaved, (report) => s.supervisor.checkpointSaved(report));
  guard.handle(TRAINING_CHANNELS.reportFailure, training, validateFailure, ({ kind, message }) => s.trainingFailed(kind, message));
  guard.handle(TRAINING_CHANNELS.loadWalletSecret, training, noArgument, () => s.secrets.load());
}
