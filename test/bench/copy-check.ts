// `npm run bench -- copy-check [--sizes 50,100,300,1000] [--reps 3] [--hot-share 0.3] [--max-exact-seconds 60]`:
// the validator's copy check, the exact pairwise check (findCopiesPairwise, O(N²) overlaps)
// against the sketch (findCopies: MinHash/LSH candidates, each confirmed exactly), on seeded
// synthetic rounds shaped like real updates (test/coordinator/copy-rounds.ts): the tensors of
// one `base` block (4 × 768², 3 × 768×2048: 7.1M elements, 110,592 indices an update at 64
// per 4096), honest updates overlapping naturally (--hot-share: each chunk's picks from a
// shared set with this probability, so honest pairs overlap ≈ share² + 1.6%), and per 100
// updates 2 copies each at overlap 0.45, 0.6 and 1.0 and 2 near-misses at 0.3. The two run
// interleaved rep by rep (alternating which goes first); the exact side is skipped where its
// estimate (pairs × the last measured time per pair) is over --max-exact-seconds, and the
// sketch's flags are then checked against the planted copies instead. Both scale with the
// update's size: the exact check as N² × k, the sketch as N × k.
//
// --measure-honest [--replicas 4] [--inner-steps 30] [--rounds 6]: no synthetic rounds; train
// `tiny` replicas with SparseLoCo on this machine's adapter and report the top-k overlap of
// every pair of honest updates per round (test/bench/copy-overlap.ts), which --hot-share models.
import { parseArgs } from 'node:util';
import { COPY_SKETCH, candidateProbability, jaccardOfEqualSets } from '../../src/coordinator/copy-sketch.ts';
import { COPY_OVERLAP, detectCopies, findCopiesPairwise, indexOverlap } from '../../src/coordinator/scoring.ts';
import { syntheticRound, uniform } from '../coordinator/copy-rounds.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const BASE_BLOCK = [768 * 768, 768 * 768, 768 * 768, 768 * 768, 768 * 2048, 768 * 2048, 768 * 2048];
const PLANTED_PER_100 = 2;
const PLANTED_OVERLAPS = [0.45, 0.6, 1, 0.3];
/** Honest pairs sampled to report the synthetic rounds' natural overlap. */
const OVERLAP_SAMPLE = 300;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const setKey = (s: Set<string>) => [...s].sort().join('\n');

function time<T>(run: () => T): { ms: number; result: T } {
  const t0 = performance.now();
  const result = run();
  return { ms: performance.now() - t0, result };
}

async function measureHonest(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'measure-honest': { type: 'boolean' }, replicas: { type: 'string', default: '4' }, 'inner-steps': { type: 'string', default: '30' }, rounds: { type: 'string', default: '6' }, seed: { type: 'string', default: '1' } } });
  const { measureHonestOverlap } = await import('./copy-overlap.ts');
  const o = { replicas: Number(values.replicas), innerSteps: Number(values['inner-steps']), rounds: Number(values.rounds), seed: Number(values.seed) };
  const rounds = await measureHonestOverlap(o, (l) => console.log(l));
  const rows: BenchRow[] = rounds.map((r) => ({ round: r.round, pairs: r.pairs.length, 'mean overlap': r.pairs.reduce((s, p) => s + p, 0) / r.pairs.length, 'max overlap': Math.max(...r.pairs), 'P(candidate) at max': candidateProbability(jaccardOfEqualSets(Math.max(...r.pairs))) }));
  printTable(`Honest top-k overlap: ${o.replicas} replicas of tiny, H = ${o.innerSteps}, SparseLoCo k = 64 per 4096`, rows);
  const all = rounds.flatMap((r) => r.pairs);
  console.log(`\nall rounds: mean ${(all.reduce((s, p) => s + p, 0) / all.length).toFixed(4)}, max ${Math.max(...all).toFixed(4)} (copy threshold ${COPY_OVERLAP})`);
  console.log(`wrote ${writeResults('copy-check-honest', { date: new Date().toISOString(), settings: o, rounds })}`);
  return 0;
}

export async function runCopyCheckBench(argv: string[]): Promise<number> {
  if (argv.includes('--measure-honest')) return measureHonest(argv);
  const { values } = parseArgs({ args: argv, options: { sizes: { type: 'string', default: '50,100,300,1000' }, reps: { type: 'string', default: '3' }, 'hot-share': { type: 'string', default: '0.3' }, 'max-exact-seconds': { type: 'string', default: '60' }, seed: { type: 'string', default: '17' } } });
  const sizes = values.sizes.split(',').map(Number);
  const reps = Number(values.reps);
  const hotShare = Number(values['hot-share']);
  const maxExactMs = Number(values['max-exact-seconds']) * 1000;
  const seed = Number(values.seed);
  const rows: BenchRow[] = [];
  const json: Record<string, unknown>[] = [];
  let msPerPair: number | null = null;
  for (const n of sizes) {
    const perKind = Math.max(1, Math.round((n * PLANTED_PER_100) / 100));
    const copies = PLANTED_OVERLAPS.map((overlap) => ({ overlap, count: perKind }));
    const honest = n - perKind * PLANTED_OVERLAPS.length;
    const { updates, planted } = syntheticRound({ seed: seed + n, honest, tensors: BASE_BLOCK, hotShare, copies, simultaneous: 0.25 });
    const honestUpdates = updates.filter((u) => u.sender.startsWith('honest-'));
    const pick = uniform(seed);
    const natural = Array.from({ length: OVERLAP_SAMPLE }, () => {
      const a = Math.floor(pick() * honestUpdates.length);
      const b = (a + 1 + Math.floor(pick() * (honestUpdates.length - 1))) % honestUpdates.length;
      return indexOverlap(honestUpdates[a].indices, honestUpdates[b].indices);
    });
    const pairs = (n * (n - 1)) / 2;
    const runExact = msPerPair === null || pairs * msPerPair <= maxExactMs;
    const exactMs: number[] = [];
    const sketchMs: number[] = [];
    let exact: Set<string> | null = null;
    let check = detectCopies([]);
    for (let rep = 0; rep < reps; rep++) {
      const runs = [
        () => {
          const t = time(() => findCopiesPairwise(updates));
          exactMs.push(t.ms);
          exact = t.result;
        },
        () => {
          const t = time(() => detectCopies(updates));
          sketchMs.push(t.ms);
          check = t.result;
        },
      ];
      if (!runExact) runs.shift();
      else if (rep % 2 === 1) runs.reverse();
      for (const run of runs) run();
      console.log(`N = ${n} rep ${rep + 1}/${reps}: ${runExact ? `exact ${exactMs[rep].toFixed(0)} ms, ` : ''}sketch ${sketchMs[rep].toFixed(0)} ms`);
    }
    if (runExact) msPerPair = median(exactMs) / pairs;
    const above = planted.filter((p) => p.overlap > COPY_OVERLAP);
    const plantedFound = above.filter((p) => check.copied.has(p.sender)).length;
    const flagsEqual = exact ? setKey(exact) === setKey(check.copied) : null;
    const estimateS = msPerPair !== null ? (pairs * msPerPair) / 1000 : null;
    rows.push({
      N: n,
      'ms exact': runExact ? median(exactMs) : `skipped (~${estimateS!.toFixed(0)} s)`,
      'ms sketch': median(sketchMs),
      'exact / sketch': runExact ? median(exactMs) / median(sketchMs) : null,
      pairs,
      'pairs confirmed': check.confirmed,
      'screened out': check.screened,
      'false candidates': check.rejected,
      flagged: check.copied.size,
      'planted > 0.4 found': `${plantedFound}/${above.length}`,
      'flags equal?': flagsEqual === null ? 'not run' : flagsEqual ? 'yes' : 'NO',
    });
    json.push({ n, honest, copies, indicesPerUpdate: updates[0].indices.reduce((s, t) => s + t.length, 0), exactMs, sketchMs, exactSkipped: !runExact, exactEstimateSeconds: runExact ? null : estimateS, pairs, confirmed: check.confirmed, rejected: check.rejected, screened: check.screened, flagged: [...check.copied].sort(), exactFlagged: exact ? [...(exact as Set<string>)].sort() : null, flagsEqual, plantedAboveThreshold: above.length, plantedFound, naturalOverlap: { mean: natural.reduce((s, x) => s + x, 0) / natural.length, max: Math.max(...natural) } });
    if (flagsEqual === false) console.error(`N = ${n}: the sketch's flags differ from the exact check's`);
  }
  const meanNatural = (json.map((j) => (j.naturalOverlap as { mean: number }).mean).reduce((s, x) => s + x, 0) / json.length).toFixed(3);
  printTable(`Copy check: exact pairwise vs sketch (r = ${COPY_SKETCH.rows}, b = ${COPY_SKETCH.bands}), ${BASE_BLOCK.length} tensors, 110,592 indices an update, honest overlap ≈ ${meanNatural}, median of ${reps}`, rows);
  console.log(`\nwrote ${writeResults('copy-check', { date: new Date().toISOString(), sketch: COPY_SKETCH, hotShare, reps, tensors: BASE_BLOCK, sizes: json })}`);
  return rows.some((r) => r['flags equal?'] === 'NO') ? 1 : 0;
}
