// Where the app's files are at run time. main.mjs and the preloads are bundled into
// dist/electron/ (electron/build.ts); the renderer build (npm run build:web) is dist/web/; icons are in
// public/. The same layout holds inside the packaged app (electron-builder.yml).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUNDLE_DIR = dirname(fileURLToPath(import.meta.url));
export const APP_ROOT = join(BUNDLE_DIR, '..', '..');
/** TESSERA_RENDERER_ROOT serves another renderer build (the end-to-end test's fixture page). */
export const RENDERER_ROOT = process.env.TESSERA_RENDERER_ROOT ?? join(APP_ROOT, 'dist', 'web');
export const ICON_DIR = join(APP_ROOT, 'public');
export const UI_PRELOAD = join(BUNDLE_DIR, 'preload-ui.cjs');
export const TRAINING_PRELOAD = join(BUNDLE_DIR, 'preload-training.cjs');
export const APP_ICON = join(ICON_DIR, 'icon.png');

export function trayIconPath(state: string): string {
  return join(ICON_DIR, `tray-${state}.png`);
}
