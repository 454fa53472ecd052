// IPC channel names, one per preload method. Shared by the preloads and the main process.
export const UI_CHANNELS = {
  getStatus: 'tessera:ui:get-status',
  contribute: 'tessera:ui:contribute',
  pause: 'tessera:ui:pause',
  resume: 'tessera:ui:resume',
  finishRoundThenStop: 'tessera:ui:finish-round-then-stop',
  getSettings: 'tessera:ui:get-settings',
  updateSettings: 'tessera:ui:update-settings',
  getCapabilities: 'tessera:ui:get-capabilities',
  saveWalletSecret: 'tessera:ui:save-wallet-secret',
  loadWalletSecret: 'tessera:ui:load-wallet-secret',
  deleteWalletSecret: 'tessera:ui:delete-wallet-secret',
  /** main → UI window push. */
  status: 'tessera:ui:status',
} as const;

export const TRAINING_CHANNELS = {
  ready: 'tessera:training:ready',
  stepDone: 'tessera:training:step-done',
  reportPhase: 'tessera:training:report-phase',
  roundFinished: 'tessera:training:round-finished',
  checkpointSaved: 'tessera:training:checkpoint-saved',
  reportFailure: 'tessera:training:report-failure',
  loadWalletSecret: 'tessera:training:load-wallet-secret',
  /** main → training window push. */
  orders: 'tessera:training:orders',
} as const;
