// The simulation's result: one row per round, a summary against the targets, the
// table `tessera simulate` prints and the JSON it writes.
import type { SimulationOptions } from './simulation.ts';
import type { BucketCounters } from './sim-bucket.ts';

export interface RoundRow {
  round: number;
  /** From the first `round` message a peer saw to the first `commit`, ms (null: never closed). */
  durationMs: number | null;
  closedBeforeDeadline: boolean;
  /** From the commit until the last peer applied it, ms. */
  applyMs: number | null;
  members: number;
  /** Members that left during the round (the leave fault): the rest are its live members. */
  left: number;
  committed: number;
  delivered: number;
  /** Per-peer update bytes this round: median and max, up and down. */
  upMedian: number;
  upMax: number;
  downMedian: number;
  downMax: number;
  /** Most updates any peer held at once. */
  heldMax: number;
  fromStore: number;
  fromNeighbours: number;
  /** JSON control messages both ways (and commit/checkpoint reads), all peers together. */
  controlBytes: number;
  /** Of which read over HTTP: catch-up from stored commits (late joiners, leavers back), checkpoints. */
  controlHttpBytes: number;
  /** This process's CPU over the round (coordinator and simulated peers together), ms. */
  processCpuMs: number;
  /** Time inside the coordinator's handlers over the round (its own share), ms. */
  coordinatorMs: number;
  rssMB: number;
  peakRssMB: number;
  /** Closed rounds the validator had not scored when this one closed (this one included). */
  validatorLag: number;
  /** Peers that applied this round's commit, and how many distinct fingerprints they reached. */
  replicas: number;
  fingerprints: number;
  /** The validator engine reached the same fingerprint (null: it had not applied this round). */
  engineAgrees: boolean | null;
}

export interface SimulationReport {
  options: Omit<SimulationOptions, 'log'>;
  config: { gatherK: number; neighbours: number; roundSeconds: number; minMembers: number };
  updateBytes: number;
  /** The update signed in its envelope: what a peer uploads and fetches per update. */
  envelopeBytes: number;
  /** One update made (a template rewritten) and signed, ms. */
  updateGenMs: number;
  /** How updates were made and kept: templates encoded by the real encoder (ms each), the coordinator's measured intake per update, the store. */
  updates: { templates: number; templateMs: number; intakeMs: number; store: 'disk' | 'bucket' };
  /** The modelled bucket's counters over the run (--store bucket), else null. */
  bucket: BucketCounters | null;
  keyDerivationMs: number;
  rows: RoundRow[];
  refused: Record<string, number>;
  unknownMessages: number;
  unscoredAtStop: number;
  summary: {
    roundsClosed: number;
    allBeforeDeadline: boolean;
    /** Lowest delivered / live members (members − left) over the rounds. */
    minDeliveredShare: number;
    fingerprintsEqual: boolean;
    committedIsMinKDelivered: boolean;
    meanUpPerPeer: number;
    meanDownPerPeer: number;
    /** Median upload in updates (what a peer uploads per round, in update envelopes). */
    uploadInUpdates: number;
    /** Max over rounds of (max upload / median upload). */
    upMaxOverMedian: number;
    heldMax: number;
    meanControlBytes: number;
    meanCoordinatorMs: number;
    meanProcessCpuMs: number;
    peakRssMB: number;
    maxValidatorLag: number;
  };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Rows after the first: round 0 also carries the joins, which the steady state does not. */
function steady(rows: RoundRow[]): RoundRow[] {
  return rows.length > 1 ? rows.slice(1) : rows;
}

export function summarise(r: Omit<SimulationReport, 'summary' | 'options'> & { options: SimulationOptions; joinStartedAt: number }): SimulationReport {
  const { log: _log, ...options } = r.options;
  const closed = r.rows.filter((x) => x.durationMs !== null);
  const envelope = r.envelopeBytes;
  const s = steady(closed);
  return {
    options, config: r.config, updateBytes: r.updateBytes, envelopeBytes: r.envelopeBytes, updateGenMs: r.updateGenMs, updates: r.updates, bucket: r.bucket, keyDerivationMs: r.keyDerivationMs, rows: r.rows,
    refused: r.refused, unknownMessages: r.unknownMessages, unscoredAtStop: r.unscoredAtStop,
    summary: {
      roundsClosed: closed.length,
      allBeforeDeadline: closed.length === r.options.rounds && closed.every((x) => x.closedBeforeDeadline),
      minDeliveredShare: Math.min(1, ...closed.map((x) => (x.members - x.left > 0 ? x.delivered / (x.members - x.left) : 1))),
      // Equal, and reached by at least one replica (a round nobody finished applying proves nothing).
      fingerprintsEqual: closed.every((x) => x.fingerprints === 1 && x.engineAgrees !== false),
      committedIsMinKDelivered: closed.every((x) => x.committed === Math.min(r.config.gatherK, x.delivered)),
      meanUpPerPeer: mean(s.map((x) => x.upMedian)),
      meanDownPerPeer: mean(s.map((x) => x.downMedian)),
      uploadInUpdates: mean(s.map((x) => x.upMedian)) / envelope,
      upMaxOverMedian: Math.max(0, ...s.map((x) => (x.upMedian ? x.upMax / x.upMedian : 0))),
      heldMax: Math.max(0, ...closed.map((x) => x.heldMax)),
      meanControlBytes: mean(s.map((x) => x.controlBytes)),
      meanCoordinatorMs: mean(s.map((x) => x.coordinatorMs)),
      meanProcessCpuMs: mean(s.map((x) => x.processCpuMs)),
      peakRssMB: Math.max(0, ...closed.map((x) => x.peakRssMB)),
      maxValidatorLag: Math.max(0, ...closed.map((x) => x.validatorLag)),
    },
  };
}

const kb = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)}M` : `${(n / 1024).toFixed(1)}k`);

/** The per-round table and the summary lines `tessera simulate` prints. */
export function formatReport(r: SimulationReport): string {
  const head = ['round', 'dur s', 'apply s', 'members', 'left', 'commit', 'deliv', 'up med/max', 'down med/max', 'held', 'store/nbr', 'control (http)', 'coord ms', 'cpu ms', 'rss MB', 'lag', 'fp'];
  const lines = r.rows.map((x) => [
    x.round, x.durationMs === null ? '-' : (x.durationMs / 1000).toFixed(1) + (x.closedBeforeDeadline ? '' : '!'), x.applyMs === null ? '-' : (x.applyMs / 1000).toFixed(1),
    x.members, x.left, x.committed, x.delivered, `${kb(x.upMedian)}/${kb(x.upMax)}`, `${kb(x.downMedian)}/${kb(x.downMax)}`, x.heldMax, `${x.fromStore}/${x.fromNeighbours}`,
    `${kb(x.controlBytes)} (${kb(x.controlHttpBytes)})`, x.coordinatorMs.toFixed(0), x.processCpuMs.toFixed(0), x.peakRssMB.toFixed(0), x.validatorLag, `${x.fingerprints}${x.engineAgrees === false ? '≠v' : ''}`,
  ].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  const s = r.summary;
  const o = r.options;
  return [
    `simulate: ${o.peers} peers, model ${o.model} (update ${kb(r.updateBytes)}, made in ${r.updateGenMs.toFixed(0)} ms from ${r.updates.templates} template(s) of ${r.updates.templateMs.toFixed(0)} ms each; coordinator intake ${r.updates.intakeMs.toFixed(0)} ms each; store: ${r.updates.store}), K=${r.config.gatherK}, neighbours ${r.config.neighbours}, round deadline ${r.config.roundSeconds} s; keys derived in ${r.keyDerivationMs.toFixed(0)} ms (${(r.keyDerivationMs / o.peers).toFixed(2)} ms each)`,
    fmt(head),
    ...lines.map(fmt),
    `rounds closed ${s.roundsClosed}/${o.rounds}, all before the deadline: ${s.allBeforeDeadline}; delivered ≥ ${(100 * s.minDeliveredShare).toFixed(0)}% of live members; committed = min(K, delivered): ${s.committedIsMinKDelivered}; fingerprints equal: ${s.fingerprintsEqual}`,
    `per peer per round (after round 0): up ${kb(s.meanUpPerPeer)} (${s.uploadInUpdates.toFixed(2)} updates; max/median ≤ ${s.upMaxOverMedian.toFixed(2)}), down ${kb(s.meanDownPerPeer)}; at most ${s.heldMax} updates held`,
    `control ${kb(s.meanControlBytes)} per round; coordinator handlers ${s.meanCoordinatorMs.toFixed(0)} ms, process CPU ${s.meanProcessCpuMs.toFixed(0)} ms per round; peak RSS ${s.peakRssMB.toFixed(0)} MB (the process); validator lag ≤ ${s.maxValidatorLag} round(s)`,
    ...(r.bucket ? [`modelled bucket: ${r.bucket.uploads} uploads (${kb(r.bucket.uploadBytes)}), intake ranged reads ${r.bucket.coordinatorRangeReads}, validator reads ${r.bucket.coordinatorReads} whole (coordinator's process read ${kb(r.bucket.coordinatorReadBytes)} in all), peer reads ${r.bucket.peerReads} (${kb(r.bucket.peerReadBytes)}), ${r.bucket.regenerated} regenerated and hash-checked (${(r.bucket.regenerateMs / Math.max(1, r.bucket.regenerated)).toFixed(0)} ms each), ${r.bucket.copies} copies, ${r.bucket.deletes} deletes, at most ${r.bucket.peakHeld} objects held`] : []),
    ...(Object.keys(r.refused).length ? [`refused by the coordinator: ${JSON.stringify(r.refused)}`] : []),
    ...(r.unknownMessages ? [`${r.unknownMessages} messages the peers could not parse`] : []),
  ].join('\n');
}
