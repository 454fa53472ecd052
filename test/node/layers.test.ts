// The layers of src/ (docs/ARCHITECTURE.md, "Layers"): each folder imports only folders below
// it, held by lint; every folder is placed in a layer; no file takes part in an import cycle
// (type-only imports excepted: they vanish at run time); and a file one person cannot hold
// says at its top why it is one file.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');
const eslint = new ESLint({ cwd: ROOT });

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, filePath) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}
const importing = (path: string) => `import { x } from '${path}';\nexport const y = x;\n`;

describe('the layers of src/', () => {
  it('an import up the layers fails lint, naming both folders; one down passes', async () => {
    const up: [string, string, RegExp][] = [
      ['src/model/probe.ts', '../round/replica.ts', /src\/model must not import src\/round/],
      ['src/round/probe.ts', '../contributor/contributor.ts', /src\/round must not import src\/contributor/],
      ['src/net/probe.ts', '../round/replica.ts', /src\/net must not import src\/round/],
      ['src/protocol/probe.ts', '../net/envelope.ts', /src\/protocol must not import src\/net/],
      ['src/kernels/probe.ts', '../sparseloco/outer.ts', /src\/kernels must not import src\/sparseloco/],
      ['src/base/probe.ts', '../wallet/keys.ts', /src\/base must not import src\/wallet/],
      ['src/node/probe.ts', '../coordinator/server.ts', /src\/node must not import src\/coordinator/],
      ['src/coordinator/probe.ts', '../cli/cli.ts', /src\/coordinator must not import src\/cli/],
      ['src/contributor/probe.ts', '../node/dawn.ts', /node/],
    ];
    for (const [file, path, message] of up) {
      const messages = await restrictedImports(file, importing(path));
      expect(messages, `${file} → ${path}`).toHaveLength(1);
      expect(messages[0]).toMatch(message);
    }
    const down: [string, string][] = [
      ['src/contributor/probe.ts', '../round/replica.ts'],
      ['src/round/probe.ts', '../sparseloco/outer.ts'],
      ['src/net/probe.ts', '../protocol/messages.ts'],
      ['src/cli/probe.ts', '../coordinator/server.ts'],
      ['src/coordinator/probe.ts', '../round/replica.ts'],
    ];
    for (const [file, path] of down) expect(await restrictedImports(file, importing(path)), `${file} → ${path}`).toEqual([]);
  });

  it('every folder of src/ is placed in a layer (an unplaced folder would escape the rule)', async () => {
    const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
    expect(folders.length).toBeGreaterThan(10);
    for (const folder of folders) {
      expect(await restrictedImports(`src/${folder}/probe.ts`, importing('../../renderer/ui/App.tsx')), folder).toHaveLength(1);
    }
  });

  it('no source file over 400 lines without the reason written at its top', () => {
    const MAX_LINES = 400;
    const REASON = /^\/\/ Over ~400 lines on purpose: \S/m;
    const sources: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.tsx?$/.test(name)) sources.push(path);
      }
    };
    for (const top of ['src', 'renderer', 'electron']) walk(join(ROOT, top));
    const unexplained = sources.filter((f) => {
      const text = readFileSync(f, 'utf8');
      const header = text.split('\n').slice(0, 60).join('\n');
      return text.split('\n').length > MAX_LINES && !REASON.test(header);
    });
    expect(sources.length).toBeGreaterThan(150);
    expect(unexplained.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('no import cycle between files, type-only imports aside', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) files.push(path);
      }
    };
    walk(SRC);
    // `import type` / `export type` lines are erased by the compiler; the rest load at run time.
    const IMPORT = /^\s*(?:import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.\.?\/[^'"]+\.tsx?)['"]/gm;
    const edges = new Map(files.map((f) => [f, [...readFileSync(f, 'utf8').matchAll(IMPORT)].filter((m) => !m[1]).map((m) => normalize(join(dirname(f), m[2])))]));
    // Tarjan's strongly connected components: a component of more than one file is a cycle.
    let next = 0;
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const cycles: string[][] = [];
    const visit = (v: string) => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      for (const w of edges.get(v) ?? []) {
        if (!edges.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          component.push(relative(ROOT, w));
        } while (w !== v);
        if (component.length > 1) cycles.push(component);
      }
    };
    for (const f of files) if (!index.has(f)) visit(f);
    expect(files.length).toBeGreaterThan(100);
    expect(cycles).toEqual([]);
  });
});
