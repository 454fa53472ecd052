// Benchmark output: an aligned text table on stdout, JSON under test/bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type BenchRow = Record<string, string | number | null>;

export function formatCell(v: string | number | null): string {
  if (v === null) return '–';
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 0.01 ? v.toFixed(2) : v.toExponential(1);
}

export function printTable(title: string, rows: BenchRow[]): void {
  if (!rows.length) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c] ?? null)));
  const width = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(width[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(cols));
  console.log(width.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) console.log(line(row));
}

const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes results JSON to test/bench/results/NAME.json and, when $OUT is set, to $OUT too. */
export function writeResults(name: string, data: unknown): string {
  const text = JSON.stringify(data, null, 2) + '\n';
  // A bundled copy (gpu-pack) has no source tree: then only $OUT is written.
  const targets = [process.env.OUT, process.env.TESSERA_BENCH_NO_REPO ? undefined : RESULTS_DIR].filter(Boolean) as string[];
  for (const dir of targets) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), text);
  }
  return targets.map((d) => join(d, `${name}.json`)).join(', ');
}
