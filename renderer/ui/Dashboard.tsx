// The main view: the Contribute button and its controls, what the engine is doing now, and
// the loss curve.
import { useMemo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { preset, type PresetName } from '../../src/model/config.ts';
import { formatBytes } from '../engine/memory.ts';
import { linkPathsText, peersText, progressText, sentText } from '../state/human.ts';
import { ACTIVITY_LABEL } from '../state/run-status.ts';
import { pauseReasonsText } from '../desktop/ui-link.ts';
import { pauseReason } from '../state/rules.ts';
import { LineChart } from './Chart.tsx';
import { useApp } from './context.tsx';

export function Controls() {
  const run = useApp((s) => s.run);
  const busy = useApp((s) => s.busy);
  const userPaused = useApp((s) => s.userPaused);
  const gpuOk = useApp((s) => s.gpu?.available === true);
  // In the desktop app the main process says why training is held; in a tab, the page's own rules.
  const reason = useApp((s) => (s.desktop?.status ? pauseReasonsText(s.desktop.status.pauseReasons) : pauseReason(s.settings, s.env, s.userPaused, new Date())));
  const desktop = useApp((s) => s.desktop !== null);
  const a = useApp(useShallow((s) => ({ contribute: s.contribute, pause: s.pause, resume: s.resume, finishRoundThenStop: s.finishRoundThenStop, stopNow: s.stopNow })));
  if (run.activity === 'idle') {
    return (
      <div className="controls">
        <button type="button" className="primary big" onClick={() => void a.contribute()} disabled={busy || !gpuOk}>
          Contribute
        </button>
        {!gpuOk && <p className="hint">Contributing needs a working GPU (see the check below).</p>}
      </div>
    );
  }
  return (
    <div className="controls">
      {userPaused ? (
        <button type="button" className="primary" onClick={() => void a.resume()}>
          Resume
        </button>
      ) : (
        <button type="button" onClick={() => void a.pause()}>
          Pause
        </button>
      )}
      <button type="button" onClick={() => void a.finishRoundThenStop()} disabled={run.stopAfterRound}>
        {run.stopAfterRound ? 'Stopping after this round…' : 'Finish this round, then stop'}
      </button>
      {!desktop && (
        <button type="button" className="danger" onClick={() => void a.stopNow()}>
          Stop now
        </button>
      )}
      {run.paused && reason && <p className="hint" role="status">Training is held: {reason}.</p>}
    </div>
  );
}

/** In a pipelined run, which part of the model this device holds (the rest is on other contributors'). */
function stageOf(model: string, stage: number, stages: number): string {
  let layers = '';
  try {
    const L = preset(model as PresetName).layers;
    layers = ` (about layers ${Math.round((stage * L) / stages) + 1}–${Math.round(((stage + 1) * L) / stages)} of ${L})`;
  } catch {
    // An unknown model: the stage alone.
  }
  return `part ${stage + 1} of ${stages} of the ${model} model${layers}; other contributors hold the other parts, and activations pass between you`;
}

export function LiveStatus() {
  const run = useApp((s) => s.run);
  const innerSteps = useApp((s) => s.innerSteps);
  const checkpointEvery = useApp((s) => s.runInfo?.checkpointEvery ?? 0);
  const budget = useApp((s) => s.settings.dutyCycle);
  const activity = run.paused && run.activity === 'training' ? 'Paused' : ACTIVITY_LABEL[run.activity];
  const blocked = Object.keys(run.blocked).length;
  // A long start-up step (compiling kernels, fetching the data, syncing, waiting for peers): what it is, not a silent wait.
  const progress = run.activity === 'idle' ? null : run.progress;
  const pipelined = run.model !== null && run.stage !== null && run.stages !== null && run.stages > 1;
  return (
    <dl className="facts status" aria-label="Live status" aria-live="polite">
      <dt>State</dt>
      <dd data-testid="activity">{activity}</dd>
      {progress && (
        <>
          <dt>Starting up</dt>
          <dd data-testid="progress" title={progress.text}>
            {progressText(progress)}
            {progress.total > 0 && <progress value={progress.done} max={progress.total} aria-label={progressText(progress)} />}
          </dd>
        </>
      )}
      <dt>Round</dt>
      <dd data-testid="round">{run.round ?? '—'}</dd>
      <dt>Step</dt>
      <dd data-testid="step">{run.step ? (innerSteps ? `${run.step} of ${innerSteps}` : run.step) : '—'}</dd>
      <dt>Loss</dt>
      <dd>{run.lastLoss === null ? '—' : run.lastLoss.toFixed(4)}</dd>
      <dt>Speed</dt>
      <dd data-testid="speed">{run.tokensPerSecond ? `${run.tokensPerSecond.toFixed(0)} tokens/s` : '—'}</dd>
      <dt>GPU time</dt>
      <dd>{run.activity === 'idle' ? '—' : `${Math.round(run.gpuShare * 100)}% busy (your GPU budget: ${budget}%)`}</dd>
      <dt>Sent</dt>
      <dd data-testid="sent">
        {formatBytes(run.bytesUp)}
        {run.bytesUp > 0 && <small className="why">: {sentText({ ...run, checkpointEvery }, formatBytes)}</small>}
      </dd>
      <dt>Received</dt>
      <dd data-testid="received">
        {formatBytes(run.bytesDown)}
        {run.bytesDown > 0 && <small className="why">: other contributors' updates and the coordinator's messages (and the weights, when joining)</small>}
      </dd>
      <dt>Others</dt>
      <dd data-testid="peers">{run.activity === 'idle' ? '—' : peersText(run.linked.length, run.members, blocked)}</dd>
      {run.activity !== 'idle' && (run.linked.length > 0 || blocked > 0) && (
        <>
          <dt>Links</dt>
          <dd data-testid="link-paths">{linkPathsText(run.paths, run.blocked)}</dd>
        </>
      )}
      {pipelined && (
        <>
          <dt>This device holds</dt>
          <dd data-testid="holds">{stageOf(run.model!, run.stage!, run.stages!)}</dd>
        </>
      )}
      <dt>Rounds done</dt>
      <dd data-testid="rounds-done">{run.roundsDone}</dd>
    </dl>
  );
}

export function LossChart() {
  const losses = useApp((s) => s.losses);
  const { x, y } = useMemo(() => ({ x: losses.map((_, i) => i + 1), y: losses.map((p) => p.loss) }), [losses]);
  const last = losses.at(-1);
  const summary = last ? `${losses.length} steps; latest loss ${last.loss.toFixed(4)} (round ${last.round}, step ${last.step})` : 'no training steps yet';
  return <LineChart label="Training loss" xLabel="step" yLabel="loss" x={x} y={y} color="#c2410c" summary={summary} testId="loss-chart" />;
}
