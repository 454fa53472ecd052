// What `tessera contribute` and `tessera swarm` print for a person: the run described at join,
// round r of R with tokens, rewards with their unit, start-up progress as a few plain lines
// (or a bar on a terminal), the swarm's closing summary, and the memory check before it starts.
import { describe, expect, it } from 'vitest';
import type { ContributorEvent } from '../../src/contributor/contributor.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { EventPrinter } from '../../src/cli/contribute-output.ts';
import { humanSummary, memoryVerdict, peerMemoryBytes } from '../../src/cli/swarm-report.ts';

function printed(events: ContributorEvent[], isTTY = false): string {
  let out = '';
  let t = 0;
  const printer = new EventPrinter({ write: (s) => (out += s), isTTY, columns: 100 }, () => (t += 1000));
  for (const e of events) printer.print(e);
  return out;
}

const compile = (total: number): ContributorEvent[] =>
  Array.from({ length: total + 1 }, (_, done) => ({ event: 'progress', phase: 'compile', done, total, text: done < total ? `compiling the model's kernels: ${done} of ${total}` : `compiled the model's kernels (${total})` }));

const shard = (chunks: number): ContributorEvent[] => [
  { event: 'progress', phase: 'shard', done: 0, total: 0, text: 'fetching the data shard' },
  ...Array.from({ length: chunks }, (_, i): ContributorEvent => ({ event: 'progress', phase: 'shard', done: i * 1000, total: chunks * 1000, text: `fetching the data shard: ${i} of ${chunks} MiB` })),
  { event: 'progress', phase: 'shard', done: chunks * 1000, total: chunks * 1000, text: 'fetched the data shard (4.0 MiB)' },
];

const joined: ContributorEvent = {
  event: 'joined', address: '5Fabc', run: 'demo-7', round: 2, model: 'tiny', stage: 0, stages: 1,
  name: 'Tiny demo', description: 'Trains a tiny model on this machine.', owner: 'ada', homepage: 'https://example.org/demo',
  rewardUnit: 'credits', rewardNote: 'A record of work, not money.', plannedRounds: 5, plannedTokens: 0,
};

describe('tessera contribute output', () => {
  it('start-up progress without a terminal: the start and end of each phase, not a line per kernel or chunk', () => {
    const out = printed([...compile(25), ...shard(200), { event: 'progress', phase: 'peers', done: 1, total: 3, text: 'waiting for peers: 1 of the 3 contributors a round needs are connected' }, { event: 'progress', phase: 'peers', done: 2, total: 3, text: 'waiting for peers: 2 of the 3 contributors a round needs are connected' }]);
    const lines = out.trim().split('\n');
    expect(lines).toEqual([
      "compiling the model's kernels: 0 of 25",
      expect.stringMatching(/^compiled the model's kernels \(25\) in \d+ s$/),
      'fetching the data shard',
      expect.stringMatching(/^fetched the data shard \(4\.0 MiB\) in \d+ s$/),
      'waiting for peers: 1 of the 3 contributors a round needs are connected',
      'waiting for peers: 2 of the 3 contributors a round needs are connected',
    ]);
  });

  it('says how each link travels: direct, or through the relay', () => {
    const out = printed([
      { event: 'link', peer: '5Fpeer', up: true, reason: 'connected', path: 'direct', route: 'srflx/srflx' },
      { event: 'link', peer: '5Fother', up: true, reason: 'connected', path: 'relayed', route: 'relay/prflx' },
      { event: 'link', peer: '5Fother', up: false, reason: 'ERR_ICE_CONNECTION_FAILURE: Ice connection failed.' },
    ]);
    expect(out.trim().split('\n')).toEqual([
      'linked with peer 5Fpeer, direct (srflx/srflx)',
      'linked with peer 5Fother, through the relay (relay/prflx)',
      'link with peer 5Fother closed: ERR_ICE_CONNECTION_FAILURE: Ice connection failed.',
    ]);
  });

  it('start-up progress on a terminal: one bar redrawn in place, ended by the phase or wiped by a message', () => {
    const out = printed([...compile(4), compile(4)[0], { event: 'warning', text: 'slow' }], true);
    expect(out.split('\n')).toHaveLength(3); // the finished bar's line, the warning, and nothing after
    expect(out).toContain("\r\x1b[K[######..................] compiling the model's kernels: 1 of 4");
    expect(out).toContain("[########################] compiled the model's kernels (4) in ");
    expect(out.endsWith('\r\x1b[Kwarning: slow\n')).toBe(true);
  });

  it('says what the run is, round r of R with the tokens, speed in tokens/s, and rewards with their unit', () => {
    const out = printed([
      joined,
      { event: 'round', round: 2, members: 3, plannedRounds: 5, tokensTrained: 12800 },
      { event: 'step', round: 2, step: 1, loss: 4, tokensPerSecond: 1000 },
      { event: 'step', round: 2, step: 2, loss: 3.9, tokensPerSecond: 2000 },
      { event: 'commit', round: 2, trained: true, loss: 3.95, included: 3, fromPeers: 2, fetched: 0, bytesUp: 20480, bytesDown: 40960, peers: 2, rejected: {}, weightsHash: 'ab', tokensContributed: 640 },
      { event: 'checkpoint', round: 3, bytes: 500 * 1024 },
      { event: 'reward', round: 2, standing: { address: '5Fabc', ema: 1, assignedEma: 1, rank: 1, of: 3, share: 0.4, epoch: 0, epochReward: 12.3, totalReward: 40.5, lastRound: 2, pendingRounds: 1 } },
      { event: 'reward', round: 3, standing: { address: '5Fabc', ema: 1, assignedEma: 1, rank: 1, of: 3, share: 0.4, epoch: 0, epochReward: 12.3, totalReward: 40.5, pendingReward: 20, forfeitedReward: 5, lastRound: 3, pendingRounds: 0 } },
    ]);
    expect(out).toContain("joined 'Tiny demo' (run demo-7, model tiny) as 5Fabc");
    expect(out).toContain('  Trains a tiny model on this machine.');
    expect(out).toContain('  run by ada · https://example.org/demo');
    expect(out).toContain('  rewards are counted in credits: A record of work, not money.');
    expect(out).toContain('the run has finished 2 rounds; 5 rounds planned');
    expect(out).toContain('round 3 of 5: training with 2 other contributors · the swarm has trained 12,800 tokens so far');
    expect(out).toContain('round 3 of 5 done: loss 3.9500 · speed: 1,500 tokens/s · your tokens: 640');
    expect(out).toContain("uploaded the run's checkpoint, the weights after 3 rounds (500 KiB)");
    expect(out).toContain('round 3 scored: reward 12.30 credits this epoch (epoch 0), 40.50 credits in all · rank 1 of 3, share 40.0% · 1 round not scored yet');
    // Held in escrow and forfeited, apart from the earned.
    expect(out).toContain('round 4 scored: reward 12.30 credits this epoch (epoch 0), 40.50 credits in all, 20.00 credits pending (held in escrow for a few rounds), 5.00 credits forfeited (an invalid or copied update) · rank 1 of 3, share 40.0%');
  });
});

describe('tessera swarm report', () => {
  const config = parseRunConfig({ run: 'r' });

  it('refuses a swarm that does not fit in free memory (naming the numbers and --force), warns when close', () => {
    const each = peerMemoryBytes(config);
    const refused = memoryVerdict(100, config, false, 10 * each);
    expect(refused.refuse).toMatch(/100 contributor processes need about .* GiB \(\d+ MiB each\) and this machine has .* GiB free: use fewer --peers \(about 10 fit\), or --force/);
    expect(memoryVerdict(100, config, true, 10 * each)).toEqual({ refuse: null, warning: expect.stringMatching(/starting anyway \(--force\)/) });
    expect(memoryVerdict(9, config, false, 10 * each)).toEqual({ refuse: null, warning: expect.stringMatching(/close/) });
    expect(memoryVerdict(3, config, false, 10 * each)).toEqual({ refuse: null, warning: null });
  });

  it('ends with the loss first → last, each peer with its rounds, reward and unit, bytes, and where the weights are', () => {
    const text = humanSummary({
      model: 'tiny', rounds: 3, rewardUnit: 'points', weightsIdentical: true, heartbeatDrops: 0, refused: 0, seconds: 130, failed: false,
      lossPerRound: [{ round: 0, loss: 5.5 }, { round: 1, loss: 4.2 }, { round: 2, loss: 3.1 }],
      peersDetail: [
        { name: 'peer-0', roundsCompleted: 3, reward: 100, share: 0.34, bytesUp: 30 * 1024, bytesDown: 3 * 2 ** 20, killed: false, peakRssBytes: 550 * 2 ** 20, gathered: { fromPeers: 4, fromStore: 2, served: 5 } },
        { name: 'peer-1', roundsCompleted: 3, bytesUp: 2048, bytesDown: 4096, killed: false },
      ],
      weightsFiles: ['.tessera/swarm/r/weights.ckpt'], summaryFile: '.tessera/swarm/r/summary.json',
    });
    expect(text.split('\n')).toEqual([
      'done: 3 of 3 rounds of tiny with 2 contributors in 2 min 10 s',
      '  loss 5.500 (round 1) → 3.100 (round 3); each round: 5.50 4.20 3.10',
      '  peer-0  3 rounds · reward 100.00 points (share 34.0%) · sent 30 KiB, received 3.0 MiB · updates 4 from peers, 2 from the store, 5 served · memory 550 MiB',
      '  peer-1  3 rounds · sent 2 KiB, received 4 KiB',
      '  every replica held the same weights after each round · 0 dropped for silence · 0 messages refused',
      '  final weights: .tessera/swarm/r/weights.ckpt',
      '  all the numbers: .tessera/swarm/r/summary.json (or run with --json)',
    ]);
  });
});
