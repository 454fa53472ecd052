// Lint: TypeScript rules plus the import boundaries of docs/ARCHITECTURE.md. Imports point down:
// renderer and electron use src; src never imports renderer or electron; inside src each
// folder imports only the folders below it (ENGINE_LAYERS, then NODE_LAYERS); only the Node
// layers touch Node's modules (and Dawn, which is a Node addon).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// Bare module names only (a regex, not a gitignore-style group, so '../net/x.ts' and
// '@polkadot/util' are not mistaken for Node's 'net' and 'util').
const NODE_BUILTINS_RE = '^(node:.*|(fs|path|os|child_process|http|https|net|url|crypto|stream|events|worker_threads|module|util|zlib|process|buffer)(/.*)?)$';
const upward = (what) => [{ group: [`**/${what}/**`, `${what}/**`], message: `src/ must not import ${what}/: imports point down (docs/ARCHITECTURE.md).` }];

// src/'s folders, lowest first. Each may import itself and the folders before it, never one
// after it: the environment-free engine…
const ENGINE_LAYERS = ['base', 'wallet', 'gpu', 'kernels', 'model', 'train', 'sparseloco', 'pipeline', 'protocol', 'net', 'round', 'contributor'];
// …then the Node-only folders, which may also import the whole engine.
const NODE_LAYERS = ['node', 'coordinator', 'sim', 'cli'];
const above = (layers, i, from) => layers.slice(i + 1).map((to) => ({
  group: [`**/${to}/**`, `${to}/**`],
  message: `src/${from} must not import src/${to}: src/${to} is a layer above it; imports point down (docs/ARCHITECTURE.md, "Layers").`,
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.gpu/**', 'test/bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...ENGINE_LAYERS.map((layer, i) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      // @types/node reaches the engine's type-check through dependencies' types, so the
      // compiler alone does not stop Node globals here.
      'no-restricted-globals': ['error',
        ...['Buffer', 'process', 'require', '__dirname', '__filename', 'global'].map((name) => ({ name, message: 'The engine is environment-free: Node globals only in src/node, src/coordinator and src/cli.' })),
      ],
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'electron', message: 'Only electron/ imports electron.' },
          { name: 'react', message: 'React lives in renderer/.' },
          { name: 'webgpu', message: 'Dawn is Node-only: open it in src/node/dawn.ts.' },
        ],
        patterns: [
          ...upward('renderer'), ...upward('electron'), ...above(ENGINE_LAYERS, i, layer), ...NODE_LAYERS.flatMap((to) => upward(to)),
          { regex: NODE_BUILTINS_RE, message: 'The engine is environment-free: Node modules only in src/node, src/coordinator and src/cli.' },
        ],
      }],
    },
  })),
  ...NODE_LAYERS.map((layer, i) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'Only electron/ imports electron.' }],
        patterns: [...upward('renderer'), ...upward('electron'), ...above(NODE_LAYERS, i, layer)],
      }],
    },
  })),
  {
    // The desktop shell may use src/ and Node, and reaches the renderer only through the contract.
    files: ['electron/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/renderer/**', 'renderer/**'], message: 'electron/ reaches the renderer only through the preload contract (electron/contract.ts).' }],
      }],
    },
  },
  {
    // A sandboxed preload can load only 'electron' (the bundle inlines its own two files).
    files: ['electron/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/renderer/**', '**/src/**', '**/services/**'], message: 'A preload is one method per action: import only electron, ../channels.ts and ../contract.ts.' },
          { regex: NODE_BUILTINS_RE, message: 'A sandboxed preload cannot load Node modules.' },
        ],
      }],
    },
  },
  {
    // The renderer imports the contract: it stays types only, importing nothing.
    files: ['electron/contract.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: '.*', message: 'electron/contract.ts is types only and imports nothing (the renderer imports it).' }] }] },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'The renderer reaches the main process only through the preload API.' }],
        patterns: [
          // The one exception: the preload contract's types (electron/contract.ts imports nothing).
          { group: ['**/electron/**', 'electron/**', '!**/electron/contract.ts'], message: 'The renderer reaches electron/ only through the preload contract: import type from electron/contract.ts.' },
          ...NODE_LAYERS.flatMap((to) => upward(to)),
          { regex: NODE_BUILTINS_RE, message: 'The renderer runs in a browser: no Node modules.' },
        ],
      }],
    },
  },
  {
    // The renderer's build config runs in Node (Vite), not in the browser.
    files: ['renderer/vite.config.ts'],
    languageOptions: { globals: { ...globals.node } },
    rules: { 'no-restricted-imports': 'off' },
  },
);
