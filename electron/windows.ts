// The two windows. The UI window is an ordinary, throttled-when-hidden window; the training
// window is never shown and keeps full speed in the background. Both are sandboxed and
// context-isolated with one preload each; navigation guards are added app-wide in main.ts.
import { BrowserWindow } from 'electron';
import { APP_ICON, TRAINING_PRELOAD, UI_PRELOAD } from './paths.ts';
import { secureWebPreferences } from './services/window-security.ts';

export interface PageUrls {
  ui: string;
  training: string;
}

export function createUiWindow(urls: PageUrls, show: boolean): BrowserWindow {
  const window = new BrowserWindow({
    width: 1100,
    height: 760,
    minWidth: 360,
    minHeight: 480,
    show: false,
    title: 'Tessera',
    icon: APP_ICON,
    backgroundColor: '#14161c',
    webPreferences: secureWebPreferences(UI_PRELOAD, 'ui'),
  });
  if (show) window.once('ready-to-show', () => window.show());
  void window.loadURL(urls.ui);
  return window;
}

export function createTrainingWindow(urls: PageUrls): BrowserWindow {
  const window = new BrowserWindow({
    show: false,
    skipTaskbar: true,
    focusable: false,
    title: 'Tessera training',
    webPreferences: secureWebPreferences(TRAINING_PRELOAD, 'training'),
  });
  void window.loadURL(urls.training);
  return window;
}
