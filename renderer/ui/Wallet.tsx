// Who you are on the network and what you have earned: the address (with copy), the
// validator's latest standing, and the reward history.
import { useMemo, useState } from 'react';
import { DEFAULT_RUN } from '../../src/protocol/run-config.ts';
import { rewardText } from '../state/human.ts';
import { LineChart } from './Chart.tsx';
import { useApp } from './context.tsx';

export function WalletPanel() {
  const address = useApp((s) => s.address);
  const rewards = useApp((s) => s.rewards);
  // An older coordinator names no unit: its rewards are the default's, points.
  const unit = useApp((s) => s.runInfo?.rewardUnit ?? DEFAULT_RUN.rewardUnit);
  const note = useApp((s) => (s.runInfo ? s.runInfo.rewardNote : DEFAULT_RUN.rewardNote));
  const pendingNow = useApp((s) => (s.run.standing as { pendingRounds?: number } | null)?.pendingRounds);
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const latest = rewards.at(-1) ?? null;
  const pending = pendingNow ?? latest?.pendingRounds ?? null;
  const { x, y } = useMemo(() => ({ x: rewards.map((r) => r.round), y: rewards.map((r) => r.totalReward) }), [rewards]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(address ?? '');
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <section className="card" aria-labelledby="wallet-title">
      <h2 id="wallet-title">Wallet and rewards</h2>
      <div className="address-row">
        <code className="address" data-testid="address">
          {address}
        </code>
        <button type="button" onClick={() => void copy()} aria-label="Copy the address">
          {copied === 'yes' ? 'Copied' : 'Copy'}
        </button>
      </div>
      {copied === 'failed' && <p className="hint">The browser refused the clipboard: select the address and copy it by hand.</p>}
      <dl className="facts" aria-label="Rewards">
        <dt>Score</dt>
        <dd data-testid="score">{latest ? latest.score.toPrecision(3) : '—'}</dd>
        <dt>Rank</dt>
        <dd>{latest ? `${latest.rank} of ${latest.of}` : '—'}</dd>
        <dt>Share</dt>
        <dd>{latest ? `${(latest.share * 100).toFixed(1)}%` : '—'}</dd>
        <dt>This epoch</dt>
        <dd data-testid="epoch-reward">{latest ? `${rewardText(latest.epochReward, unit)} (epoch ${latest.epoch})` : '—'}</dd>
        <dt>Total earned</dt>
        <dd data-testid="total-reward">{latest ? rewardText(latest.totalReward, unit) : '—'}</dd>
        {latest?.pendingReward !== undefined && (
          <>
            <dt>Pending</dt>
            <dd data-testid="pending-reward" title="Rewards of the last rounds, held in escrow: earned once a few more rounds pass without an invalid or copied update from you">
              {rewardText(latest.pendingReward, unit)} in escrow
              {latest.forfeitedReward ? `; ${rewardText(latest.forfeitedReward, unit)} forfeited (an invalid or copied update)` : ''}
            </dd>
          </>
        )}
        <dt>Rounds scored</dt>
        <dd data-testid="scored-rounds">
          {rewards.length}
          {pending !== null && pending > 0 ? `; ${pending} more closed round${pending === 1 ? '' : 's'} pending (not scored yet: the validator is behind, they will be)` : ''}
        </dd>
      </dl>
      <p className="hint" data-testid="reward-note">
        Rewards are counted in {unit}.{note ? ` ${note}` : ''}
      </p>
      <LineChart
        label="Rewards over rounds"
        xLabel="round"
        yLabel={`total (${unit})`}
        x={x}
        y={y}
        color="#15803d"
        summary={latest ? `${rewards.length} scored rounds; ${rewardText(latest.totalReward, unit)} in total` : 'no rewards yet: they come once the validator scores a round you trained'}
        testId="reward-chart"
      />
    </section>
  );
}
