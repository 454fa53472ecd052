// One attacker in a swarm of `tiny` replicas, all in this process (shared by the adversary test
// and `npm run bench -- adversary`): what the coordinator, the validator and the replicas do with
// a round, without the network. Each round every member trains on its own assigned batches and
// compresses its update; the attacker then changes its bytes (validly encoded); the coordinator's
// frame check refuses what it refuses; gather-K (with the validator's standings and bars) picks
// the commit; every replica applies it; the validator scores the round (the real Validator and
// recordScores, a real ledger) and its verdict reaches the coordinator before the next commit —
// the validator keeping up, as it does at this size. Same seeds, same data: a run with the
// attacker honest ('none') is the reference the others are measured against.
import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { toHex } from '../../src/base/hex.ts';
import { gatherK } from '../../src/coordinator/gather.ts';
import { Ledger, type Standing } from '../../src/coordinator/ledger.ts';
import { clipFloorOf, samplingOptions } from '../../src/coordinator/scoring.ts';
import { FLOORED_BELOW } from '../../src/sparseloco/aggregate.ts';
import { Validator, recordScores, type ClosedRound } from '../../src/coordinator/validator.ts';
import { parameterLayout } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { loadOrBuildShard } from '../../src/node/corpus.ts';
import type { CommitEntry } from '../../src/protocol/messages.ts';
import { parseRunConfig, runModel, type RunConfig } from '../../src/protocol/run-config.ts';
import { ModelReplica } from '../../src/round/replica.ts';
import { UPDATE_HEADER_BYTES, UpdateError, decodeUpdate } from '../../src/sparseloco/wire.ts';
import { evalBatches, splitShard } from '../../src/train/sampler.ts';

/** What the attacker does to its own (honestly trained) update before sending it. */
export type Attack = 'none' | 'scale1000' | 'signflip' | 'stale' | 'hugetable' | 'shrink' | 'alternate';

export const ATTACKS: readonly Exclude<Attack, 'none'>[] = ['scale1000', 'signflip', 'stale', 'hugetable'];
/**
 * Attacks the bench can run that the adversary test does not: 'shrink' scales the update by
 * SHRINK_BY, so beside one honest update (a two-update commit, whose clip bound is the smaller
 * norm) it shrinks the honest one to its own size — a known weakness (test/bench/RESULTS.md).
 */
export const BENCH_ONLY_ATTACKS: readonly Exclude<Attack, 'none'>[] = ['shrink', 'alternate'];
/** The shrink attack's factor (the bench's --shrink-by sets it: 1e-3 by default; 1/9 is just over the undersize bar). */
export const SHRINK_BY = 1e-3;
/**
 * 'alternate' sign-flips its update in even rounds and sends honest work in odd ones: a bar
 * that lifts after one clean evaluation lets every attack after the first be applied.
 */
export const alternateAttacks = (round: number) => round % 2 === 0;

/** The attacker's address for an attack (several attackers may share a run, one attack each). */
export const attackerOf = (attack: Attack) => `attacker-${attack}`;

export interface SwarmSetup {
  honest: number;
  rounds: number;
  innerSteps: number;
  batch: number;
  seq: number;
  lr: number;
  evalBatches: number;
  seed: number;
  /** The shrink attack's factor (SHRINK_BY when absent). */
  shrinkBy?: number;
}

export interface AttackerResult {
  attack: Attack;
  /** Share of all rewards credited (earned or still in escrow, not forfeited) that went to the attacker. */
  share: number;
  /** Of `share`, what is still held on probation at the end (barred rounds: forfeited by its next offence). */
  shareOnProbation: number;
  /** The same under the rule before escrow (recomputed from the same run's rows: the reward rule does not change training). */
  shareBeforeEscrow: number;
  /** Its share of the rewards of the rounds after its first (the rounds it attacked; the stale attack's first is honest). */
  shareAfterFirst: number;
  /** Rounds whose commit included its update. */
  committed: number[];
  /** Rounds the coordinator refused its update (frame check). */
  refused: number[];
  /** Rounds after which the validator barred it. */
  barred: number[];
  /** The verdicts that barred it: 'round: reason'. */
  offences: string[];
}

/** What one member was credited over the run (escrow.ts), and what the rule before escrow would have paid it. */
export interface MemberPay {
  address: string;
  earned: number;
  pending: number;
  /** Of `pending`, rounds it was barred from (earned only once the bar lifts and the window passes). */
  onProbation: number;
  forfeited: number;
  /** Paid under the rule before escrow, in the same run. */
  beforeEscrow: number;
}

export interface SwarmResult {
  attacks: Attack[];
  /** Held-out loss of the consensus model after each round. */
  curve: number[];
  final: number;
  /** Largest |w| of the consensus model at the end. */
  maxAbsWeight: number;
  attackers: AttackerResult[];
  /** Each round's commit: its senders. */
  commits: string[][];
  /** Rounds whose validator scoring failed (it must not). */
  unscored: number[];
  /** Replicas that ended with different weights (must be 0: everyone applies the same commits). */
  diverged: number;
  /** Every member's pay (absent from result files written before escrow). */
  pay?: MemberPay[];
  seconds: number;
}

/** Offsets of each tensor's 4-entry f32 lookup table in an encoded update (the documented v2 layout). */
export function tableOffsets(bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = dv.getUint16(18, true);
  const out: number[] = [];
  let o = UPDATE_HEADER_BYTES;
  for (let t = 0; t < count; t++) {
    o += 1 + bytes[o];
    const rank = bytes[o++];
    o += 4 * rank;
    out.push(o);
    o += 16;
    const coding = bytes[o];
    o += 2;
    if (coding === 1) o += 4;
  }
  return out;
}

function withCrc(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(bytes.length - 4, crc32(bytes.subarray(0, bytes.length - 4)), true);
  return bytes;
}

/** Every lookup-table value multiplied by `by` (a validly encoded update, scaled or sign-flipped). */
export function scaleTables(update: Uint8Array, by: number): Uint8Array {
  const out = update.slice();
  const dv = new DataView(out.buffer);
  for (const at of tableOffsets(out)) for (let c = 0; c < 4; c++) dv.setFloat32(at + 4 * c, dv.getFloat32(at + 4 * c, true) * by, true);
  return withCrc(out);
}

/** The update with its round field rewritten (a stale update resent as this round's). */
export function asRound(update: Uint8Array, round: number): Uint8Array {
  const out = update.slice();
  new DataView(out.buffer).setUint32(12, round, true);
  return withCrc(out);
}

/** Huge finite values (±3e38) in the first tensor's table. */
export function hugeTable(update: Uint8Array): Uint8Array {
  const out = update.slice();
  const dv = new DataView(out.buffer);
  const [at] = tableOffsets(out);
  for (let c = 0; c < 4; c++) dv.setFloat32(at + 4 * c, c < 2 ? -3e38 : 3e38, true);
  return withCrc(out);
}

/**
 * What each member would have been paid under the rule before escrow (and what it holds on
 * probation at the end: pending rounds it was barred from): each
 * round by average among the members whose update was not harmful (gradient < 0), invalid or a
 * copy, at once. From the ledger's rows of the same run: the reward rule changes neither the
 * averages nor the bars, so the training, the verdicts and these rows are the same either way.
 */
function payBeforeEscrow(file: string, emission: number): { before: Map<string, number>; onProbation: Map<string, number> } {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare(`SELECT round, address, ema, gradient, invalid, copied FROM round_scores ORDER BY round, address`).all() as { round: number; address: string; ema: number; gradient: number; invalid: number; copied: number }[];
    const pay = new Map<string, number>();
    for (const round of new Set(rows.map((r) => r.round))) {
      const paid = rows.filter((r) => r.round === round && !(r.gradient < 0 || r.invalid || r.copied));
      const total = paid.reduce((n, r) => n + r.ema, 0);
      for (const r of paid) if (total > 0) pay.set(r.address, (pay.get(r.address) ?? 0) + (emission * r.ema) / total);
    }
    const held = db.prepare(`SELECT address, SUM(reward) AS reward FROM reward_escrow WHERE state = 'pending' AND probation = 1 GROUP BY address`).all() as { address: string; reward: number }[];
    return { before: pay, onProbation: new Map(held.map((h) => [h.address, h.reward])) };
  } finally {
    db.close();
  }
}

/** The run: gather-K takes every update (the bars alone decide who is left out). */
export function swarmConfig(s: SwarmSetup, members: number): RunConfig {
  return parseRunConfig({ run: 'adversary-swarm', model: 'tiny', innerSteps: s.innerSteps, batch: s.batch, seq: s.seq, lr: s.lr, warmup: 2, plannedRounds: s.rounds, minMembers: 1, gatherK: members, seed: s.seed, maxMessageBytes: 1 << 20 });
}

/**
 * One run of the swarm with an attacker per entry of `attacks` ('none': a member like the
 * honest ones; an empty list: the honest alone). `dataRoot`: where the byte shard is built or found.
 */
export async function runAdversarySwarm(gpu: Gpu, s: SwarmSetup, attacks: readonly Attack[], dataRoot: string, log: (line: string) => void = () => {}): Promise<SwarmResult> {
  const t0 = performance.now();
  const config = swarmConfig(s, s.honest + attacks.length);
  const shard = loadOrBuildShard({ tokenizer: 'bytes', root: dataRoot });
  const { train, valid } = splitShard(shard.tokens, { validFraction: 0.01 });
  const held = evalBatches(valid, { B: s.batch, T: s.seq }, s.evalBatches);
  const honest = Array.from({ length: s.honest }, (_, i) => `honest-${i}`);
  const attackOf = new Map(attacks.map((a) => [attackerOf(a), a]));
  const members = [...honest, ...attackOf.keys()].sort();
  /** When a member's update reaches the coordinator: a second apart, in member order (the copy check orders by it). */
  const arrival = (m: string) => 1000 * members.indexOf(m);
  const replicas = new Map(members.map((m) => [m, new ModelReplica(gpu, config, train, m)]));
  const dir = mkdtempSync(join(tmpdir(), 'tessera-adversary-swarm-'));
  const ledger = new Ledger(join(dir, 'ledger.sqlite'));
  const stored = new Map<string, Uint8Array>();
  const validator = new Validator(config, gpu, train, valid, log, samplingOptions({ key: new Uint8Array(32).fill(s.seed & 0xff) }), (r, sender) => stored.get(`${r}/${sender}`) ?? null);
  const standings = new Map<string, { ema: number; barred: boolean }>();
  const cfg = runModel(config);
  const layout = parameterLayout(cfg).map((p) => ({ name: p.name, shape: p.shape }));
  const result: SwarmResult = { attacks: [...attacks], curve: [], final: NaN, maxAbsWeight: 0, attackers: [], commits: [], unscored: [], diverged: 0, seconds: 0 };
  const of = new Map(attacks.map((attack) => [attackerOf(attack), { attack, share: 0, shareOnProbation: 0, shareBeforeEscrow: 0, shareAfterFirst: 0, committed: [] as number[], refused: [] as number[], barred: [] as number[], offences: [] as string[] }]));
  const firstUpdate = new Map<string, Uint8Array>();
  try {
    for (const r of replicas.values()) r.initializeFromSeed();
    await validator.loadStart(null);
    for (let round = 0; round < s.rounds; round++) {
      const reportedHashes: Record<string, string> = {};
      const sent = new Map<string, Uint8Array>();
      for (const m of members) {
        const replica = replicas.get(m)!;
        reportedHashes[m] = await replica.weightsHash();
        for (let step = 0; step < s.innerSteps; step++) await replica.trainStep(round, step);
        let bytes = await replica.compress(round);
        const attack = attackOf.get(m);
        if (round === 0) firstUpdate.set(m, bytes);
        if (attack === 'scale1000') bytes = scaleTables(bytes, 1000);
        else if (attack === 'signflip') bytes = scaleTables(bytes, -1);
        else if (attack === 'stale') bytes = asRound(firstUpdate.get(m)!, round);
        else if (attack === 'hugetable') bytes = hugeTable(bytes);
        else if (attack === 'shrink') bytes = scaleTables(bytes, s.shrinkBy ?? SHRINK_BY);
        else if (attack === 'alternate' && alternateAttacks(round)) bytes = scaleTables(bytes, -1);
        sent.set(m, bytes);
      }
      // The coordinator: the frame check (RoundClock.offer), then gather-K.
      const invalid: Record<string, number> = {};
      const delivered: CommitEntry[] = [];
      for (const [m, bytes] of sent) {
        try {
          decodeUpdate(bytes, { configHash: configHash(cfg), round, layout, maxBytes: config.maxMessageBytes, structureOnly: true });
          delivered.push({ sender: m, hash: toHex(blake2AsU8a(bytes, 256)), stage: 0 });
          stored.set(`${round}/${m}`, bytes);
        } catch (e) {
          if (!(e instanceof UpdateError)) throw e;
          invalid[m] = 1;
          of.get(m)?.refused.push(round);
        }
      }
      delivered.sort((a, b) => (a.sender < b.sender ? -1 : 1));
      const included = gatherK({ delivered, k: config.gatherK, standing: (a) => standings.get(a)?.ema, barred: (a) => standings.get(a)?.barred ?? false, seed: config.seed, round });
      for (const e of included) of.get(e.sender)?.committed.push(round);
      result.commits.push(included.map((e) => e.sender));
      const payloads = included.map((e) => sent.get(e.sender)!);
      // The commit's clip floor, as RoundClock sets it from the validator's ledger (a commit of fewer than three).
      const clipFloor = included.length < FLOORED_BELOW ? clipFloorOf(ledger.helpfulNorms()) : undefined;
      for (const replica of replicas.values()) replica.apply(payloads, round, clipFloor);
      // The validator scores the round and its verdict reaches the coordinator.
      const inSet = new Set(included.map((e) => e.sender));
      const closed: ClosedRound = {
        round,
        members,
        included: included.map((e) => ({ sender: e.sender, payload: sent.get(e.sender)!, deliveredAt: arrival(e.sender) })),
        others: delivered.filter((e) => !inSet.has(e.sender)).map((e) => ({ sender: e.sender, deliveredAt: arrival(e.sender) })),
        missing: [],
        invalid,
        reportedHashes,
        ...(clipFloor ? { clipFloor } : {}),
      };
      try {
        const evaluation = await validator.evaluate(closed, members.length);
        const verdicts = recordScores(closed, evaluation, { config, ledger, closedRounds: round + 1, log });
        for (const [address, st] of verdicts as Map<string, Standing>) standings.set(address, { ema: st.ema, barred: st.barred ?? standings.get(address)?.barred ?? false });
        for (const [address, a] of of) if (standings.get(address)?.barred) a.barred.push(round);
        for (const [address, a] of of) if (ledger.bar(address)?.last === round) a.offences.push(`${round}: ${ledger.bar(address)!.reason}`);
      } catch (e) {
        result.unscored.push(round);
        log(`round ${round} not scored: ${(e as Error).message}`);
      }
      const loss = await replicas.get(honest[0])!.evaluate(held);
      result.curve.push(loss);
      log(`${attacks.join('+') || 'honest only'} round ${round}: committed ${included.map((e) => e.sender).join(', ')}; held-out ${loss.toFixed(4)}; bars ${[...standings].filter(([, v]) => v.barred).map(([a]) => a).join(', ') || 'none'}`);
    }
    result.final = result.curve.at(-1)!;
    const hashes = new Set(await Promise.all([...replicas.values()].map((r) => r.weightsHash())));
    result.diverged = hashes.size - 1;
    for (const w of (await replicas.get(honest[0])!.readStart()).values()) for (const v of w) result.maxAbsWeight = Math.max(result.maxAbsWeight, Math.abs(v));
    // Credited and not forfeited: earned, or still in escrow at the end (what it gets if it offends no more).
    const paid = (a: string, from = 0) => ledger.history(a).filter((h) => h.round >= from && h.paid !== 'forfeited').reduce((n, h) => n + h.reward, 0);
    const total = members.reduce((n, m) => n + paid(m), 0);
    const totalAfterFirst = members.reduce((n, m) => n + paid(m, 1), 0);
    const { before, onProbation } = payBeforeEscrow(join(dir, 'ledger.sqlite'), config.emissionPerEpoch / config.epochRounds);
    const totalBefore = [...before.values()].reduce((n, x) => n + x, 0);
    for (const [address, a] of of) {
      a.share = total > 0 ? paid(address) / total : 0;
      a.shareOnProbation = total > 0 ? (onProbation.get(address) ?? 0) / total : 0;
      a.shareBeforeEscrow = totalBefore > 0 ? (before.get(address) ?? 0) / totalBefore : 0;
      a.shareAfterFirst = totalAfterFirst > 0 ? paid(address, 1) / totalAfterFirst : 0;
      result.attackers.push(a);
    }
    result.pay = members.map((address) => {
      const sum = (state: string) => ledger.history(address).filter((h) => h.paid === state).reduce((n, h) => n + h.reward, 0);
      return { address, earned: sum('earned'), pending: sum('pending'), onProbation: onProbation.get(address) ?? 0, forfeited: sum('forfeited'), beforeEscrow: before.get(address) ?? 0 };
    });
  } finally {
    for (const r of replicas.values()) r.destroy();
    await validator.destroy();
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
