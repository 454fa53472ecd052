// The lint lines around electron/: only electron/ imports 'electron'; the renderer reaches it
// only through the contract's types; preloads load nothing but 'electron' and the contract.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('electron/ import boundaries', () => {
  it('the renderer may import the contract types, nothing else of electron/', async () => {
    const file = 'renderer/ui/desktop.ts';
    expect(await restrictedImports(file, "import type { TesseraWindow } from '../../electron/contract.ts';\nexport type W = TesseraWindow;\n")).toEqual([]);
    expect(await restrictedImports(file, "import { UI_CHANNELS } from '../../electron/channels.ts';\nexport const c = UI_CHANNELS;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { ipcRenderer } from 'electron';\nexport const i = ipcRenderer;\n")).toHaveLength(1);
  });

  it('the main process may use Node and src/, not the renderer', async () => {
    const file = 'electron/services/example.ts';
    expect(await restrictedImports(file, "import { app } from 'electron';\nimport { join } from 'node:path';\nexport const a = [app, join];\n")).toEqual([]);
    expect(await restrictedImports(file, "import { X } from '../../renderer/state/db.ts';\nexport const x = X;\n")).toHaveLength(1);
  });

  it('a preload imports only electron, channels and the contract', async () => {
    const file = 'electron/preload/example.ts';
    expect(await restrictedImports(file, "import { ipcRenderer } from 'electron';\nimport { UI_CHANNELS } from '../channels.ts';\nexport const x = [ipcRenderer, UI_CHANNELS];\n")).toEqual([]);
    expect(await restrictedImports(file, "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { SecretStore } from '../services/secret-store.ts';\nexport const s = SecretStore;\n")).toHaveLength(1);
  });

  it('the contract imports nothing; src/ never imports electron', async () => {
    expect(await restrictedImports('electron/contract.ts', "import type { X } from './channels.ts';\nexport type Y = X;\n")).toHaveLength(1);
    expect(await restrictedImports('src/train/example.ts', "import { app } from 'electron';\nexport const a = app;\n")).toHaveLength(1);
  });
});
