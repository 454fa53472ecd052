// Epoch close → chain weights: which epochs are sent when, from the real ledger's rewards,
// one at a time, and what is logged. The chain is a recording WeightSetter (chain.test.ts
// covers what SubtensorChain does with the shares).
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EpochWeights, type WeightSetter } from '../../src/coordinator/chain-epochs.ts';
import type { SetWeightsResult } from '../../src/coordinator/chain.ts';
import { Ledger } from '../../src/coordinator/ledger.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterEach(removeTempDirs);

const EPOCH_ROUNDS = 3;

function ledgerWithRounds(rounds: number): Ledger {
  const ledger = new Ledger(join(tempDir(), 'ledger.sqlite'));
  for (let r = 0; r < rounds; r++) {
    const row = (address: string, share: number) => ({ address, gradient: 0.1, assigned: 0.1, copied: false, missing: false, invalid: false, synced: true, score: share, ema: share, assignedEma: 1, share, reward: share * 10 });
    ledger.recordRound(r, Math.floor(r / EPOCH_ROUNDS), [row('honest', 0.75), row('other', 0.25)]);
  }
  return ledger;
}

class RecordingSetter implements WeightSetter {
  readonly netuid = 7;
  readonly sent: Record<string, number>[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly answer: (shares: Record<string, number>) => Promise<SetWeightsResult>) {}
  async setWeights(shares: Record<string, number>): Promise<SetWeightsResult> {
    this.sent.push({ ...shares });
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await this.answer(shares);
    } finally {
      this.inFlight--;
    }
  }
}

const setOk = async (): Promise<SetWeightsResult> => {
  await new Promise((r) => setTimeout(r, 5));
  return { status: 'set', blockHash: '0xfeed', dests: [0, 1], weights: [65535, 21845], versionKey: 0n, unregistered: ['5Unregistered'] };
};

describe('EpochWeights', () => {
  it("sends each epoch's rewards when its last round is scored, one submission at a time", async () => {
    const ledger = ledgerWithRounds(6);
    const chain = new RecordingSetter(setOk);
    const log: string[] = [];
    const weights = new EpochWeights(chain, ledger, EPOCH_ROUNDS, (l) => log.push(l));
    for (let r = 0; r < 6; r++) weights.roundScored(r);
    await weights.close();
    // Epoch 0 = rounds 0..2, each paying 7.5 and 2.5.
    expect(chain.sent).toEqual([{ honest: 22.5, other: 7.5 }, { honest: 22.5, other: 7.5 }]);
    expect(chain.maxInFlight).toBe(1);
    expect(weights.results.map((r) => r.epoch)).toEqual([0, 1]);
    expect(log[0]).toBe('chain: epoch 0 weights set on netuid 7 in block 0xfeed: 2 uid(s) [0:65535 1:21845]; 1 earning contributor(s) not registered on the subnet, skipped: 5Unregis');
    ledger.close();
  });

  it('sends a missed epoch once at the next scored round, and never epochs closed before it started', async () => {
    const ledger = ledgerWithRounds(9);
    const chain = new RecordingSetter(setOk);
    const weights = new EpochWeights(chain, ledger, EPOCH_ROUNDS, () => undefined);
    // Started at round 4 (epoch 1): epoch 0 closed before; round 5 (end of epoch 1) was not scored.
    for (const r of [4, 6, 7, 8]) weights.roundScored(r);
    await weights.close();
    expect(weights.results.map((r) => r.epoch)).toEqual([1, 2]);
    ledger.close();
  });

  it('logs a skip, a failure and an exception, and keeps going', async () => {
    const ledger = ledgerWithRounds(9);
    const answers: (() => Promise<SetWeightsResult>)[] = [
      async () => ({ status: 'skipped', reason: 'no registered contributor holds a share this epoch', unregistered: [] }),
      async () => ({ status: 'failed', reason: 'the chain refused it: subtensorModule.SettingWeightsTooFast', dests: [0], weights: [65535], unregistered: [] }),
      async () => {
        throw new Error('disconnected');
      },
    ];
    const chain = new RecordingSetter(() => answers.shift()!());
    const log: string[] = [];
    const weights = new EpochWeights(chain, ledger, EPOCH_ROUNDS, (l) => log.push(l));
    for (let r = 0; r < 9; r++) weights.roundScored(r);
    await weights.close();
    expect(log).toEqual([
      'chain: epoch 0 weights not sent on netuid 7: no registered contributor holds a share this epoch',
      'chain: epoch 1 weights not set on netuid 7: the chain refused it: subtensorModule.SettingWeightsTooFast',
      'chain: epoch 2 weights not set on netuid 7: disconnected',
    ]);
    ledger.close();
  });
});
