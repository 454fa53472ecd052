// `npm run bench -- verdicts [--sizes 16,100,1000] [--rounds 12] [--seed 1]`: what keeping the
// validator's verdicts in the ledger costs (issue 19: bars and the copy history survive a
// restart). Per round size N: a scored round recorded with N rows as before (no verdicts) and
// with N bars decided and N copy sketches (1,320 slots, 5.3 KB each), the ledger's files after
// --rounds rounds (bounded: the sketches of the last HISTORY_ROUNDS rounds only), and a start's
// restore (Ledger.copySketches into a CopyHistory). CPU only. Writes results/verdicts.json.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ledger, type StoredSketch } from '../../src/coordinator/ledger.ts';
import { CopyHistory, HISTORY_ROUNDS } from '../../src/coordinator/copy-history.ts';
import { COPY_SKETCH } from '../../src/coordinator/copy-sketch.ts';
import { rng } from '../helpers/rng.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const SLOTS = COPY_SKETCH.bands * COPY_SKETCH.rows;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (address: string, round: number) => ({ address, gradient: 0.01, assigned: 0.01, copied: false, missing: false, invalid: false, synced: true, score: 0.01, ema: 0.01, assignedEma: 1, share: 0, reward: 0, round });

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Median ms of recording `rounds` rounds of N rows, with or without the verdicts; the ledger's bytes at the end; the restore's ms. */
function measure(n: number, rounds: number, verdicts: boolean, seed: number): { recordMs: number; bytes: number; restoreMs: number | null; kept: number } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-verdicts-'));
  try {
    const ledger = new Ledger(join(dir, 'ledger.sqlite'));
    const u = rng(seed);
    const senders = Array.from({ length: n }, (_, i) => `5Sender${String(i).padStart(6, '0')}`);
    const times: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const rows = senders.map((s) => row(s, round));
      const entries: StoredSketch[] = senders.map((sender) => ({ round, sender, elements: 110_592, sketch: Uint32Array.from({ length: SLOTS }, () => Math.floor(u() * 2 ** 32)) }));
      // A tenth barred, a tenth cleared, every round: the bars table's churn.
      const bars = new Map(senders.filter((_, i) => i % 10 < 2).map((s, i) => [s, i % 2 ? null : 'harmful'] as const));
      const t0 = performance.now();
      ledger.recordRound(round, 0, rows, verdicts ? { bars, sketches: { seed: 1, entries, keepFrom: round + 1 - HISTORY_ROUNDS } } : {});
      times.push(performance.now() - t0);
    }
    let restoreMs: number | null = null;
    let kept = 0;
    if (verdicts) {
      const t0 = performance.now();
      const stored = ledger.copySketches();
      kept = stored.length;
      new CopyHistory(new Uint8Array(32)).restore(stored);
      restoreMs = performance.now() - t0;
    }
    ledger.close();
    return { recordMs: median(times), bytes: dirBytes(dir), restoreMs, kept };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runVerdictsBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { sizes: { type: 'string', default: '16,100,1000' }, rounds: { type: 'string', default: '12' }, seed: { type: 'string', default: '1' } } });
  const sizes = values.sizes.split(',').map(Number);
  const rounds = Number(values.rounds);
  const rows: BenchRow[] = [];
  for (const n of sizes) {
    const before = measure(n, rounds, false, Number(values.seed));
    const after = measure(n, rounds, true, Number(values.seed));
    rows.push({
      N: n,
      'record ms (rows only)': before.recordMs,
      'record ms (+ bars, sketches)': after.recordMs,
      'ledger MB (rows only)': before.bytes / 2 ** 20,
      'ledger MB (+ verdicts)': after.bytes / 2 ** 20,
      'sketches kept': after.kept,
      'restore ms': after.restoreMs,
    });
  }
  printTable(`Verdicts in the ledger: ${rounds} rounds per size, sketches of the last ${HISTORY_ROUNDS} kept (median record time per round)`, rows);
  console.log(`wrote ${writeResults('verdicts', { date: new Date().toISOString(), rounds, historyRounds: HISTORY_ROUNDS, rows })}`);
  return 0;
}
