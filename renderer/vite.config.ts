// Vite build of the contributor page (renderer/) and its engine worker, into dist/web.
// simple-peer's dependencies expect Node's `Buffer`, `process` and `global`: the npm browser
// packages stand in (aliases) and a banner module makes them globals, in the page and the
// worker alike. WGSL imports are text (vite.wgsl.ts).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { wgslText } from '../vite.wgsl.ts';

const require = createRequire(import.meta.url);
const HERE = fileURLToPath(new URL('.', import.meta.url));
const GLOBALS = fileURLToPath(new URL('./engine/node-globals.ts', import.meta.url));

/** Imports the globals module first in every entry (page and worker). */
function nodeGlobals(): Plugin {
  return {
    name: 'tessera-node-globals',
    transform(code, id) {
      if (!/renderer\/(main\.tsx|engine\/worker\.ts)$/.test(id)) return null;
      return { code: `import ${JSON.stringify(GLOBALS)};\n${code}`, map: null };
    },
  };
}

const alias = {
  buffer: require.resolve('buffer/'),
  events: require.resolve('events/'),
  process: require.resolve('process/browser.js'),
};

export default defineConfig({
  root: HERE,
  base: './',
  plugins: [react(), wgslText(), nodeGlobals()],
  resolve: { alias },
  define: { global: 'globalThis' },
  worker: { format: 'es', plugins: () => [wgslText(), nodeGlobals()] },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'chrome120',
    // No source maps in a build that ships (3.4 MB of our source, served to anyone who
    // loads the page): TESSERA_SOURCEMAPS=1 npm run build:web makes them for debugging.
    sourcemap: process.env.TESSERA_SOURCEMAPS === '1',
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: false,
  },
  logLevel: 'warn',
});
