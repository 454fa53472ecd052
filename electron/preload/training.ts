// Preload of the hidden training window (sandboxed, context-isolated): window.tesseraTraining.
// The page hosts only the engine; it reports to the main process and takes its orders.
import { contextBridge, ipcRenderer } from 'electron';
import { TRAINING_CHANNELS } from '../channels.ts';
import type { TesseraTrainingApi, TrainingOrders } from '../contract.ts';

const api: TesseraTrainingApi = {
  ready: (gpu) => ipcRenderer.invoke(TRAINING_CHANNELS.ready, gpu),
  stepDone: (report) => ipcRenderer.invoke(TRAINING_CHANNELS.stepDone, report),
  reportPhase: (report) => ipcRenderer.invoke(TRAINING_CHANNELS.reportPhase, report),
  roundFinished: (report) => ipcRenderer.invoke(TRAINING_CHANNELS.roundFinished, report),
  checkpointSaved: (report) => ipcRenderer.invoke(TRAINING_CHANNELS.checkpointSaved, report),
  reportFailure: (report) => ipcRenderer.invoke(TRAINING_CHANNELS.reportFailure, report),
  loadWalletSecret: () => ipcRenderer.invoke(TRAINING_CHANNELS.loadWalletSecret),
  onOrders: (listener) => {
    const relay = (_event: unknown, orders: TrainingOrders) => listener(orders);
    ipcRenderer.on(TRAINING_CHANNELS.orders, relay);
    return () => void ipcRenderer.removeListener(TRAINING_CHANNELS.orders, relay);
  },
};

contextBridge.exposeInMainWorld('tesseraTraining', api);
