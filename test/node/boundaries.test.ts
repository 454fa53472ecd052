// The lint rule that keeps imports pointing down (DESIGN.md) actually fires.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

const eslint = new ESLint();

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import boundaries', () => {
  it('the engine may not use Node modules, Dawn, renderer or electron', async () => {
    const file = 'src/gpu/example.ts';
    expect(await restrictedImports(file, "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import * as fs from 'fs';\nexport const r = fs;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { create } from 'webgpu';\nexport const c = create;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { X } from '../../renderer/store.ts';\nexport const x = X;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { X } from '../node/dawn.ts';\nexport const x = X;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { Gpu } from './gpu.ts';\nexport const g = Gpu;\n")).toHaveLength(0);
  });

  it('src/node may use Node modules but not renderer or electron', async () => {
    const file = 'src/node/example.ts';
    expect(await restrictedImports(file, "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toHaveLength(0);
    expect(await restrictedImports(file, "import { app } from 'electron';\nexport const a = app;\n")).toHaveLength(1);
  });

  it('the renderer may not import electron or Node modules', async () => {
    const file = 'renderer/example.ts';
    expect(await restrictedImports(file, "import { ipcRenderer } from 'electron';\nexport const i = ipcRenderer;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n")).toHaveLength(1);
    expect(await restrictedImports(file, "import { Gpu } from '../src/gpu/gpu.ts';\nexport const g = Gpu;\n")).toHaveLength(0);
  });
});
