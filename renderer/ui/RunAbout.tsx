// What am I contributing to: the run as its coordinator describes it (name, one paragraph,
// who runs it, its homepage), how far the whole swarm has come (round r of R, tokens
// trained) and this device's part of it; shown before and while contributing.
import { tokensPerStep } from '../state/run-info.ts';
import { tokensText } from '../state/human.ts';
import { useApp } from './context.tsx';

export function RunAbout() {
  const info = useApp((s) => s.runInfo);
  const run = useApp((s) => s.run);
  if (!info) return null;
  const ownTokens = run.stepsDone * tokensPerStep(info);
  const plannedRounds = info.plannedRounds > 0 ? ` of ${info.plannedRounds}` : '';
  const plannedTokens = info.plannedTokens > 0 ? ` of ${tokensText(info.plannedTokens)} planned` : '';
  return (
    <section className="run-about" aria-labelledby="run-name">
      <h2 id="run-name" data-testid="run-name">
        {info.name}
      </h2>
      {info.description && <p data-testid="run-description">{info.description}</p>}
      <p className="hint">
        {info.owner ? `Run by ${info.owner}` : 'Run by an unnamed owner'}
        {info.homepage && (
          <>
            {' · '}
            <a href={info.homepage} target="_blank" rel="noopener noreferrer" data-testid="run-homepage">
              {new URL(info.homepage).host}
            </a>
          </>
        )}
        {` · model ${info.model}`}
      </p>
      <dl className="facts" aria-label="Run progress">
        <dt>Run progress</dt>
        <dd data-testid="run-progress">
          {run.round === null ? `not joined yet${plannedRounds ? ` (${info.plannedRounds} rounds planned)` : ''}` : `round ${run.round}${plannedRounds}`}
          {run.tokensTrained !== null && `; ${tokensText(run.tokensTrained)} tokens trained by everyone${plannedTokens}`}
        </dd>
        {(run.round !== null || run.stepsDone > 0) && (
          <>
            <dt>Your part</dt>
            <dd data-testid="your-part">
              since this page opened: {run.roundsDone} round{run.roundsDone === 1 ? '' : 's'} done, {tokensText(ownTokens)} tokens trained on this device
            </dd>
          </>
        )}
        <dt>Rewards</dt>
        <dd data-testid="reward-unit">
          counted in {info.rewardUnit}
          {info.rewardNote ? ` — ${info.rewardNote}` : ''}
        </dd>
      </dl>
    </section>
  );
}
