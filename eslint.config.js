// Lint: TypeScript rules plus the import boundaries of DESIGN.md. Imports point down:
// renderer and electron use src; src never imports renderer or electron; only src/node and
// src/coordinator touch Node's modules (and Dawn, which is a Node addon).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// Bare module names only (a regex, not a gitignore-style group, so '../net/x.ts' and
// '@polkadot/util' are not mistaken for Node's 'net' and 'util').
const NODE_BUILTINS_RE = '^(node:.*|(fs|path|os|child_process|http|https|net|url|crypto|stream|events|worker_threads|module|util|zlib|process|buffer)(/.*)?)$';
const upward = (what) => [{ group: [`**/${what}/**`, `${what}/**`], message: `src/ must not import ${what}/: imports point down (DESIGN.md).` }];

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
  {
    files: ['src/**/*.ts'],
    ignores: ['src/node/**', 'src/coordinator/**'],
    rules: {
      // @types/node reaches the engine's type-check through dependencies' types, so the
      // compiler alone does not stop Node globals here.
      'no-restricted-globals': ['error',
        ...['Buffer', 'process', 'require', '__dirname', '__filename', 'global'].map((name) => ({ name, message: 'The engine is environment-free: Node globals only in src/node and src/coordinator.' })),
      ],
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'electron', message: 'Only electron/ imports electron.' },
          { name: 'react', message: 'React lives in renderer/.' },
          { name: 'webgpu', message: 'Dawn is Node-only: open it in src/node/dawn.ts.' },
        ],
        patterns: [
          ...upward('renderer'), ...upward('electron'), ...upward('node'), ...upward('coordinator'),
          { regex: NODE_BUILTINS_RE, message: 'The engine is environment-free: Node modules only in src/node and src/coordinator.' },
        ],
      }],
    },
  },
  {
    files: ['src/node/**/*.ts', 'src/coordinator/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'Only electron/ imports electron.' }],
        patterns: [...upward('renderer'), ...upward('electron')],
      }],
    },
  },
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
          ...upward('node'), ...upward('coordinator'),
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
