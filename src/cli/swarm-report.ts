// What `tessera swarm` tells a person: whether this machine has the memory for N contributor
// processes (before it starts them), and at the end a short summary — the loss from the first
// round to the last, each peer's rounds, reward (with the run's unit) and bytes, and where
// the final weights are. The full JSON stays available (--json, and summary.json beside the
// weights).
import { freemem } from 'node:os';
import { readFileSync } from 'node:fs';
import { stageMemoryBytes, type RunConfig } from '../protocol/run-config.ts';

/**
 * Resident memory of one `tessera contribute` process beyond its model state, at its peak:
 * Node, WebRTC and Dawn — with SwiftShader the "GPU" memory and the shader compiler's are this
 * process's too. Measured (VmHWM) for the tiny model in `tessera swarm` on a 2-core machine
 * without a GPU: 1.5–1.8 GiB while compiling kernels, about 550 MiB once training.
 */
export const PEER_BASE_MIB = 1536;
/** Above this fraction of the free memory the swarm starts with a warning. */
const WARN_FRACTION = 0.75;

/**
 * Bytes one contributor process is expected to need for this run: the process itself plus the
 * run's own estimate of the model state of its largest stage (stageMemoryBytes, the figure the
 * coordinator places pipelined peers by).
 */
export function peerMemoryBytes(config: RunConfig): number {
  const stages = Array.from({ length: config.stages }, (_, s) => stageMemoryBytes(config, s));
  return PEER_BASE_MIB * 2 ** 20 + Math.max(...stages);
}

/** Whether N peers fit in free memory: a refusal naming the numbers and --force, or a warning when close. */
export function memoryVerdict(peers: number, config: RunConfig, force: boolean, free = freemem()): { refuse: string | null; warning: string | null } {
  const each = peerMemoryBytes(config);
  const need = peers * each;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const what = `${peers} contributor processes need about ${gib(need)} (${(each / 2 ** 20).toFixed(0)} MiB each) and this machine has ${gib(free)} free`;
  if (need > free && !force) return { refuse: `${what}: use fewer --peers (about ${Math.max(1, Math.floor(free / each))} fit), or --force to start them anyway`, warning: null };
  if (need > free) return { refuse: null, warning: `${what}; starting anyway (--force): expect swapping, or the system ending processes` };
  if (need > WARN_FRACTION * free) return { refuse: null, warning: `${what}: that is close; the machine may slow down` };
  return { refuse: null, warning: null };
}

/** Peak resident memory of a process (Linux's VmHWM), bytes; null where it cannot be read. */
export function peakRss(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface ReportPeer {
  name: string;
  roundsCompleted: number;
  reward?: number;
  /** Still held in escrow when the swarm ended (earned once the run's escrow rounds pass). */
  pendingReward?: number;
  share?: number;
  bytesUp: number;
  bytesDown: number;
  killed: boolean;
  peakRssBytes?: number | null;
  /** Committed updates from neighbours / the store, served (absent in summaries from before the gather exchange). */
  gathered?: { fromPeers: number; fromStore: number; served: number };
}

export interface ReportInput {
  model: string;
  rounds: number;
  lossPerRound: { round: number; loss: number | null }[];
  peersDetail: ReportPeer[];
  rewardUnit: string;
  weightsIdentical: boolean;
  heartbeatDrops: number;
  refused: number;
  seconds: number;
  weightsFiles: string[];
  summaryFile: string | null;
  failed: boolean;
  /** How the pairs of neighbours exchanged updates (swarm-links.ts), when any linked or tried. */
  linksLine?: string | null;
}

const kib = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(0)} KiB`);

function duration(s: number): string {
  return s < 90 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** The summary a person reads at the end (rounds numbered from 1). */
export function humanSummary(r: ReportInput): string {
  const lines: string[] = [];
  const trained = r.lossPerRound.filter((x) => x.loss !== null);
  lines.push(`${r.failed ? 'the swarm stopped early' : 'done'}: ${r.lossPerRound.length} of ${r.rounds} rounds of ${r.model} with ${r.peersDetail.filter((p) => !p.killed).length} contributors in ${duration(r.seconds)}`);
  if (trained.length > 0) {
    const first = trained[0];
    const last = trained[trained.length - 1];
    lines.push(`  loss ${first.loss!.toFixed(3)} (round ${first.round + 1}) → ${last.loss!.toFixed(3)} (round ${last.round + 1}); each round: ${trained.map((x) => x.loss!.toFixed(2)).join(' ')}`);
  } else lines.push('  no round was trained');
  const width = Math.max(...r.peersDetail.map((p) => p.name.length));
  for (const p of r.peersDetail) {
    const held = p.pendingReward ? ` + ${p.pendingReward.toFixed(2)} pending` : '';
    const reward = p.reward !== undefined ? ` · reward ${p.reward.toFixed(2)} ${r.rewardUnit}${held}${p.share !== undefined ? ` (share ${(100 * p.share).toFixed(1)}%)` : ''}` : '';
    const rss = p.peakRssBytes ? ` · memory ${(p.peakRssBytes / 2 ** 20).toFixed(0)} MiB` : '';
    const g = p.gathered;
    const gathered = g ? ` · updates ${g.fromPeers} from peers, ${g.fromStore} from the store, ${g.served} served` : '';
    lines.push(`  ${p.name.padEnd(width)}  ${p.roundsCompleted} round${p.roundsCompleted === 1 ? '' : 's'}${p.killed ? ' (killed)' : ''}${reward} · sent ${kib(p.bytesUp)}, received ${kib(p.bytesDown)}${gathered}${rss}`);
  }
  const health = [r.weightsIdentical ? 'every replica held the same weights after each round' : 'REPLICAS DIVERGED', `${r.heartbeatDrops} dropped for silence`, `${r.refused} messages refused`];
  lines.push(`  ${health.join(' · ')}`);
  if (r.linksLine) lines.push(`  ${r.linksLine}`);
  if (r.weightsFiles.length > 0) lines.push(`  final weights: ${r.weightsFiles.join(', ')}`);
  else lines.push('  no final weights were saved (no contributor finished the last round)');
  if (r.summaryFile) lines.push(`  all the numbers: ${r.summaryFile} (or run with --json)`);
  return lines.join('\n');
}
