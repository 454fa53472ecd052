// What `tessera contribute` prints for its contributor's events, in a volunteer's words: the
// run it joined (name, paragraph, owner, reward unit), each round as "round r of R" with the
// swarm's tokens and this contributor's own, speed in tokens/s, rewards with their unit.
// Start-up progress is a bar on a terminal and a few plain lines otherwise (a log file gets
// the start and the end of each phase, not a line per kernel or per chunk).
import type { ContributorEvent } from '../contributor/contributor.ts';
import { PATH_WORDS } from '../net/link-path.ts';
import type { Standing } from '../protocol/messages.ts';

/** What earlier events told that later lines need. */
export interface OutputContext {
  plannedRounds: number;
  rewardUnit: string;
  /** Tokens per second of the current round's steps. */
  speeds: number[];
}

export function newOutputContext(): OutputContext {
  return { plannedRounds: 0, rewardUnit: 'points', speeds: [] };
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const kib = (bytes: number) => `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KiB`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The lines for one event (none for most steps), updating `ctx`. Progress is left to the printer. */
export function formatEvent(e: ContributorEvent, ctx: OutputContext): string[] {
  const ofR = (r: number) => (ctx.plannedRounds > 0 ? `round ${r + 1} of ${ctx.plannedRounds}` : `round ${r + 1}`);
  switch (e.event) {
    case 'joined': {
      ctx.plannedRounds = e.plannedRounds ?? 0;
      ctx.rewardUnit = e.rewardUnit ?? ctx.rewardUnit;
      const lines = [`joined ${e.name ? `'${e.name}' (run ${e.run}, model ${e.model})` : `run '${e.run}' (${e.model})`} as ${e.address}`];
      if (e.description) lines.push(`  ${e.description}`);
      const by = [e.owner && `run by ${e.owner}`, e.homepage].filter(Boolean).join(' · ');
      if (by) lines.push(`  ${by}`);
      lines.push(`  rewards are counted in ${ctx.rewardUnit}${e.rewardNote ? `: ${e.rewardNote}` : ''}`);
      const plan = ctx.plannedRounds > 0 ? `; ${plural(ctx.plannedRounds, 'round')} planned` : '';
      lines.push(`  the run has finished ${plural(e.round, 'round')}${plan}${e.stages > 1 ? `; this device holds pipeline stage ${e.stage + 1} of ${e.stages}` : ''}`);
      return lines;
    }
    case 'progress':
      return [];
    case 'stage':
      return [`moved to pipeline stage ${e.stage + 1}: ${e.reason}`];
    case 'synced':
      return [`got the run's weights after ${plural(e.round, 'round')} (from ${e.source})`];
    case 'round': {
      ctx.speeds = [];
      const others = e.members - 1;
      const swarm = e.tokensTrained !== undefined ? ` · the swarm has trained ${count(e.tokensTrained)} tokens so far` : '';
      return [`${ofR(e.round)}: training${others > 0 ? ` with ${plural(others, 'other contributor')}` : ' alone'}${swarm}`];
    }
    case 'step':
      if (Number.isFinite(e.tokensPerSecond)) ctx.speeds.push(e.tokensPerSecond);
      return [];
    case 'exchange':
      return [];
    case 'sent':
      return [`${ofR(e.round)}: the coordinator stored this device's update (${kib(e.bytes)}); offered to ${plural(e.delivered, 'neighbour')}`];
    case 'commit': {
      const rejected = Object.values(e.rejected).reduce((a, b) => a + b, 0);
      const speed = ctx.speeds.length ? ` · speed: ${count(ctx.speeds.reduce((a, b) => a + b, 0) / ctx.speeds.length)} tokens/s` : '';
      ctx.speeds = [];
      const done = e.trained ? `loss ${e.loss !== null && Number.isFinite(e.loss) ? e.loss.toFixed(4) : 'n/a'}${speed}` : 'caught up (joined during the round)';
      const mine = e.tokensContributed !== undefined ? ` · your tokens: ${count(e.tokensContributed)}` : '';
      const of = e.delivered !== undefined ? ` of ${e.delivered}` : '';
      const sources = e.fromPeers || e.fetched ? ` (${e.fromPeers} from peers, ${e.fetched} from the coordinator)` : '';
      const served = e.served ? ` · served ${plural(e.served, 'update')} to neighbours` : '';
      const round = e.roundBytesUp !== undefined && e.roundBytesDown !== undefined ? ` · this round sent ${kib(e.roundBytesUp)}, received ${kib(e.roundBytesDown)}` : '';
      return [`${ofR(e.round)} done: ${done}${mine} · combined ${e.included}${of} ${e.included === 1 && !of ? 'update' : 'updates'}${sources}${served}${round} · sent ${kib(e.bytesUp)}, received ${kib(e.bytesDown)} in all · linked with ${plural(e.peers, 'neighbour')}${rejected ? ` · ${rejected} message(s) refused` : ''}`];
    }
    case 'checkpoint':
      return [`uploaded the run's checkpoint, the weights after ${plural(e.round, 'round')} (${kib(e.bytes)}): the coordinator asked this device for it, so newcomers can start from there`];
    case 'reward': {
      const s = e.standing;
      const unit = ctx.rewardUnit;
      const pending = s.pendingRounds > 0 ? ` · ${plural(s.pendingRounds, 'round')} not scored yet` : '';
      return [`round ${e.round + 1} scored: reward ${s.epochReward.toFixed(2)} ${unit} this epoch (epoch ${s.epoch}), ${s.totalReward.toFixed(2)} ${unit} in all${heldText(s, unit)} · rank ${s.rank} of ${s.of}, share ${(100 * s.share).toFixed(1)}%${pending}`];
    }
    case 'link':
      return [e.up ? `linked with peer ${e.peer}${e.path ? `, ${PATH_WORDS[e.path]}${e.route ? ` (${e.route})` : ''}` : ''}` : `link with peer ${e.peer} closed: ${e.reason}`];
    case 'path':
      return [`the link with peer ${e.peer} now goes ${PATH_WORDS[e.path]} (${e.route})`];
    case 'rejected':
      return [`refused a message from ${e.from}: ${e.reason} (${e.message})`];
    case 'warning':
      return [`warning: ${e.text}`];
    case 'stopped':
      if (e.round < 0) return ['stopped before getting the weights'];
      return [`stopped, holding the weights after ${plural(e.round, 'round')}${e.saved ? '; progress saved' : ''}`];
  }
}

/**
 * What a standing holds besides the earned: rewards in escrow (earned once the run's escrow
 * rounds pass without an invalid or copied update) and those forfeited; '' when neither.
 */
export function heldText(s: Pick<Standing, 'pendingReward' | 'forfeitedReward'>, unit: string): string {
  const pending = s.pendingReward ? `, ${s.pendingReward.toFixed(2)} ${unit} pending (held in escrow for a few rounds)` : '';
  const lost = s.forfeitedReward ? `, ${s.forfeitedReward.toFixed(2)} ${unit} forfeited (an invalid or copied update)` : '';
  return pending + lost;
}

type Progress = Extract<ContributorEvent, { event: 'progress' }>;

const BAR_WIDTH = 24;

/** Prints events as lines, with start-up progress as a bar redrawn in place on a terminal. */
export class EventPrinter {
  private readonly ctx = newOutputContext();
  private barShown = false;
  private lastPlain: { phase: string; text: string; final: boolean } | null = null;
  private phaseStarted = new Map<string, number>();

  constructor(
    private readonly out: { write(s: string): unknown; isTTY?: boolean; columns?: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  print(e: ContributorEvent): void {
    if (e.event === 'progress') return this.progress(e);
    const lines = formatEvent(e, this.ctx);
    if (lines.length === 0) return;
    this.clearBar();
    for (const l of lines) this.out.write(`${l}\n`);
  }

  private progress(e: Progress): void {
    const final = e.total > 0 && e.done >= e.total;
    if (!this.phaseStarted.has(e.phase) || (e.done === 0 && !final)) this.phaseStarted.set(e.phase, this.now());
    const took = final ? ` in ${((this.now() - (this.phaseStarted.get(e.phase) ?? this.now())) / 1000).toFixed(0)} s` : '';
    if (this.out.isTTY) {
      const bar = e.total > 0 ? `[${'#'.repeat(Math.round((BAR_WIDTH * Math.min(e.done, e.total)) / e.total)).padEnd(BAR_WIDTH, '.')}] ` : '';
      const line = `${bar}${e.text}${took}`.slice(0, Math.max(20, (this.out.columns ?? 80) - 1));
      this.out.write(`\r\x1b[K${line}`);
      this.barShown = true;
      if (final) this.clearBar(true);
      return;
    }
    // Plain output: a phase's first line, a changed wait ('peers', or a sync step without
    // numbers), and its end. Counts in between only on a terminal.
    const last = this.lastPlain;
    const changedStep = e.total === 0 && last?.phase === e.phase && last.text !== e.text;
    const waitChanged = e.phase === 'peers' && last?.text !== e.text;
    if (last?.phase !== e.phase || last.final || final || changedStep || waitChanged) {
      this.out.write(`${e.text}${took}\n`);
    }
    this.lastPlain = { phase: e.phase, text: e.text, final };
  }

  /** Ends the bar's line: kept (a finished phase) or wiped (a message goes there instead). */
  private clearBar(keep = false): void {
    if (!this.barShown) return;
    this.out.write(keep ? '\n' : '\r\x1b[K');
    this.barShown = false;
  }
}
