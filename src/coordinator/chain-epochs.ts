// When an epoch closes (its last round scored), the validator sets its chain weights from
// that epoch's rewards in the ledger. Submissions run one at a time, off the scoring queue
// (a transaction takes a block or more), and a failure is logged: the ledger stays the source
// of truth and the next epoch tries again.
import type { SetWeightsResult } from './chain.ts';

export interface WeightSetter {
  readonly netuid: number;
  setWeights(shares: Readonly<Record<string, number>>): Promise<SetWeightsResult>;
}

export class EpochWeights {
  private queue: Promise<void> = Promise.resolve();
  /** The last epoch whose weights were sent; undefined until the first scored round. */
  private lastSent: number | undefined;
  readonly results: { epoch: number; result: SetWeightsResult | { status: 'error'; reason: string } }[] = [];

  constructor(
    private readonly chain: WeightSetter,
    private readonly ledger: { epochRewards(epoch: number): Record<string, number> },
    private readonly epochRounds: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Round `round` was scored and recorded. Sends the epoch it closes; or, when the validator
   * missed an epoch's last round, the epoch before this round's, once. Epochs that closed
   * before this process started are not re-sent.
   */
  roundScored(round: number): void {
    const epoch = Math.floor(round / this.epochRounds);
    const due = (round + 1) % this.epochRounds === 0 ? epoch : epoch - 1;
    // The first round this process scores: earlier epochs closed before it started.
    this.lastSent ??= epoch - 1;
    if (due < 0 || due <= this.lastSent) return;
    this.lastSent = due;
    this.send(due);
  }

  /** Waits for the submissions in flight. */
  async close(): Promise<void> {
    await this.queue;
  }

  private send(epoch: number): void {
    const shares = this.ledger.epochRewards(epoch);
    this.queue = this.queue.then(async () => {
      let result: SetWeightsResult;
      try {
        result = await this.chain.setWeights(shares);
      } catch (e) {
        const reason = (e as Error).message;
        this.results.push({ epoch, result: { status: 'error', reason } });
        this.log(`chain: epoch ${epoch} weights not set on netuid ${this.chain.netuid}: ${reason}`);
        return;
      }
      this.results.push({ epoch, result });
      const skipped = result.unregistered.length
        ? `; ${result.unregistered.length} earning contributor(s) not registered on the subnet, skipped: ${result.unregistered.map((a) => a.slice(0, 8)).join(', ')}`
        : '';
      if (result.status === 'set') this.log(`chain: epoch ${epoch} weights set on netuid ${this.chain.netuid} in block ${result.blockHash}: ${result.dests.length} uid(s) [${result.dests.map((d, i) => `${d}:${result.weights[i]}`).join(' ')}]${skipped}`);
      else this.log(`chain: epoch ${epoch} weights ${result.status === 'skipped' ? 'not sent' : 'not set'} on netuid ${this.chain.netuid}: ${result.reason}${skipped}`);
    });
  }
}
