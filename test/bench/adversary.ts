// `npm run bench -- adversary [--honest 3] [--rounds 6] [--inner-steps 2] [--batch 2] [--seq 32] [--attacks scale1000,signflip,stale,hugetable[,shrink,alternate]] [--shrink-by 0.001] [--alone-from FILE] [--reference-from FILE] [--label NAME] [--log FILE] [--software]`:
// issue 19's "the model" measured. One attacker among honest `tiny` replicas, all in this
// process (test/coordinator/adversary-swarm.ts: the coordinator's frame check, gather-K with the
// validator's bars, every replica's outer step, the real validator and ledger; its verdict on a
// round reaches the coordinator before the next commit). Per attack: the consensus model's
// held-out loss after the last round against the same run with the attacker honest (the issue's
// goal: within 1%) and against the honest members alone (the attack's own damage, without the
// attacker's lost contribution), and the attacker's share of the rewards (goal: 0; the stale
// attack's first round is honest work, so its share after round 0 is shown too), credited (earned
// or still in escrow at the end, not forfeited) and under the rule before escrow in the same run;
// the honest members' pay, credited against that rule (the cost of escrow and unpaid bars). Writes
// results/adversary.json (adversary-NAME.json with --label). Minutes on SwiftShader: one run per attack plus two references.
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { ATTACKS, BENCH_ONLY_ATTACKS, alternateAttacks, runAdversarySwarm, type Attack, type MemberPay, type SwarmResult, type SwarmSetup } from '../coordinator/adversary-swarm.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

export async function runAdversaryBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      honest: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '6' },
      'inner-steps': { type: 'string', default: '2' },
      batch: { type: 'string', default: '2' },
      seq: { type: 'string', default: '32' },
      attacks: { type: 'string', default: ATTACKS.join(',') },
      label: { type: 'string' },
      'shrink-by': { type: 'string' },
      'alone-from': { type: 'string' },
      'reference-from': { type: 'string' },
      software: { type: 'boolean' },
      log: { type: 'string' },
    },
  });
  const setup: SwarmSetup = { honest: Number(values.honest), rounds: Number(values.rounds), innerSteps: Number(values['inner-steps']), batch: Number(values.batch), seq: Number(values.seq), lr: 1e-2, evalBatches: 8, seed: 3, ...(values['shrink-by'] ? { shrinkBy: Number(values['shrink-by']) } : {}) };
  if (setup.shrinkBy !== undefined && !(setup.shrinkBy > 0)) throw new RangeError(`--shrink-by: a positive factor, got '${values['shrink-by']}'`);
  const attacks = values.attacks!.split(',').filter(Boolean) as Exclude<Attack, 'none'>[];
  const known = [...ATTACKS, ...BENCH_ONLY_ATTACKS];
  for (const a of attacks) if (!known.includes(a)) throw new RangeError(`--attacks: unknown attack '${a}' (known: ${known.join(', ')})`);
  const gpu = await openNodeGpu(values.software ? { adapter: 'software' } : {});
  const dataRoot = mkdtempSync(join(tmpdir(), 'tessera-bench-adversary-'));
  const runs: SwarmResult[] = [];
  try {
    const run = async (label: string, list: Attack[]) => {
      // --log FILE: the swarm's lines (each validator verdict with its trial numbers), a run's label before each.
      const logTo = values.log;
      const r = await runAdversarySwarm(gpu, setup, list, dataRoot, logTo ? (line) => appendFileSync(logTo, `${label}\t${line}\n`) : undefined);
      runs.push(r);
      console.log(`${label}: held-out ${r.curve.map((x) => x.toFixed(4)).join(' ')} (${r.seconds.toFixed(0)} s)`);
      return r;
    };
    // A reference run taken from an earlier results file (same setup; the code change must not touch it: say why where it is recorded).
    const reuse = (file: string, label: string, list: Attack[]): SwarmResult => {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { setup: SwarmSetup; runs: SwarmResult[] };
      const { shrinkBy: _a, ...ours } = setup;
      const { shrinkBy: _b, ...theirs } = saved.setup;
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) throw new RangeError(`${file}: its setup ${JSON.stringify(saved.setup)} is not this run's ${JSON.stringify(setup)}`);
      const r = saved.runs.find((x) => JSON.stringify(x.attacks) === JSON.stringify(list));
      if (!r) throw new RangeError(`${file} has no '${label}' run`);
      runs.push(r);
      console.log(`${label} (from ${file}): held-out ${r.curve.map((x) => x.toFixed(4)).join(' ')}`);
      return r;
    };
    const alone = values['alone-from'] ? reuse(values['alone-from'], 'honest alone', []) : await run('honest alone', []);
    const reference = values['reference-from'] ? reuse(values['reference-from'], 'attacker honest', ['none']) : await run('attacker honest', ['none']);
    const rows: BenchRow[] = [];
    const row = (label: string, r: SwarmResult): BenchRow => {
      const a = r.attackers.find((x) => x.attack !== 'none') ?? r.attackers[0];
      // The honest members' pay (credited, not forfeited) against the rule before escrow in the same run; the worst member's change.
      const honestPay = r.pay?.filter((p) => p.address.startsWith('honest-'));
      const credited = (p: MemberPay) => p.earned + p.pending;
      const sum = (f: (p: MemberPay) => number) => (honestPay ? Number(honestPay.reduce((n, p) => n + f(p), 0).toFixed(2)) : null);
      return {
        run: label,
        'held-out': Number(r.final.toFixed(4)),
        'vs attacker honest %': Number((100 * (r.final / reference.final - 1)).toFixed(2)),
        'vs honest alone %': Number((100 * (r.final / alone.final - 1)).toFixed(2)),
        'attacker share %': a ? Number((100 * a.share).toFixed(2)) : null,
        'on probation %': a?.shareOnProbation !== undefined ? Number((100 * a.shareOnProbation).toFixed(2)) : null,
        'before escrow %': a?.shareBeforeEscrow !== undefined ? Number((100 * a.shareBeforeEscrow).toFixed(2)) : null,
        'share after r0 %': a ? Number((100 * a.shareAfterFirst).toFixed(2)) : null,
        committed: a ? `[${a.committed.join(',')}]` : '–',
        // Committed rounds in which it attacked (the alternating attacker sends honest work in odd rounds).
        'attacks applied': a && a.attack !== 'none' ? a.committed.filter((round) => a.attack !== 'alternate' || alternateAttacks(round)).length : null,
        refused: a ? `[${a.refused.join(',')}]` : '–',
        'honest paid': sum(credited),
        'honest before': sum((p) => p.beforeEscrow),
        'honest forfeited': sum((p) => p.forfeited),
        'worst honest vs before %': honestPay?.length ? Number(Math.min(...honestPay.map((p) => 100 * (credited(p) / p.beforeEscrow - 1))).toFixed(2)) : null,
        'max |w|': Number(r.maxAbsWeight.toFixed(3)),
        unscored: r.unscored.length,
        s: Math.round(r.seconds),
      };
    };
    rows.push(row('honest alone', alone), row('attacker honest', reference));
    for (const attack of attacks) rows.push(row(attack, await run(attack, [attack])));
    printTable(`One attacker among ${setup.honest} honest tiny replicas, ${setup.rounds} rounds × ${setup.innerSteps} inner steps (batch ${setup.batch} × ${setup.seq})`, rows);
    console.log(`\nwrote ${writeResults(values.label ? `adversary-${values.label}` : 'adversary', { setup, rows, runs })}`);
    return 0;
  } finally {
    rmSync(dataRoot, { recursive: true, force: true });
    gpu.destroy();
  }
}
