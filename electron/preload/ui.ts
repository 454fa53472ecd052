// Preload of the UI window (sandboxed, context-isolated): window.tessera, one method per
// action of the contract. Nothing else of ipcRenderer reaches the page, and listeners never
// see the IPC event object.
import { contextBridge, ipcRenderer } from 'electron';
import { UI_CHANNELS } from '../channels.ts';
import type { DesktopStatus, TesseraDesktopApi } from '../contract.ts';

const api: TesseraDesktopApi = {
  getStatus: () => ipcRenderer.invoke(UI_CHANNELS.getStatus),
  onStatus: (listener) => {
    const relay = (_event: unknown, status: DesktopStatus) => listener(status);
    ipcRenderer.on(UI_CHANNELS.status, relay);
    return () => void ipcRenderer.removeListener(UI_CHANNELS.status, relay);
  },
  contribute: () => ipcRenderer.invoke(UI_CHANNELS.contribute),
  pause: () => ipcRenderer.invoke(UI_CHANNELS.pause),
  resume: () => ipcRenderer.invoke(UI_CHANNELS.resume),
  finishRoundThenStop: () => ipcRenderer.invoke(UI_CHANNELS.finishRoundThenStop),
  getSettings: () => ipcRenderer.invoke(UI_CHANNELS.getSettings),
  updateSettings: (patch) => ipcRenderer.invoke(UI_CHANNELS.updateSettings, patch),
  getCapabilities: () => ipcRenderer.invoke(UI_CHANNELS.getCapabilities),
  saveWalletSecret: (secret) => ipcRenderer.invoke(UI_CHANNELS.saveWalletSecret, secret),
  loadWalletSecret: () => ipcRenderer.invoke(UI_CHANNELS.loadWalletSecret),
  deleteWalletSecret: () => ipcRenderer.invoke(UI_CHANNELS.deleteWalletSecret),
};

contextBridge.exposeInMainWorld('tessera', api);
