// What the desktop app's preloads put on `window` (electron/contract.ts), or null in a plain
// browser tab. The training window's API alone decides its role: there the page hosts only
// the engine (the shell also adds ?role=training, for people reading the URL).
import type { TesseraDesktopApi, TesseraTrainingApi, TesseraWindow } from '../../electron/contract.ts';

export function desktopApiOf(w: unknown): TesseraDesktopApi | null {
  return (w as TesseraWindow | null)?.tessera ?? null;
}

export function trainingApiOf(w: unknown): TesseraTrainingApi | null {
  return (w as TesseraWindow | null)?.tesseraTraining ?? null;
}
