// First run, after the wallet: which network to join (a listed run in one click, the local
// run, or an address), and what this GPU can do.
import { useState } from 'react';
import { formatBytes } from '../engine/memory.ts';
import { HOST_A_RUN } from '../state/human.ts';
import type { KnownRun } from '../state/known-runs.ts';
import { offeredRuns } from '../state/runs.ts';
import { useApp } from './context.tsx';
import { RunAbout } from './RunAbout.tsx';

function KnownRunItem({ run, onJoin, busy }: { run: KnownRun; onJoin: () => void; busy: boolean }) {
  return (
    <li>
      <strong>{run.name}</strong>
      {run.description && <p>{run.description}</p>}
      <p className="hint">
        {run.owner ? `Run by ${run.owner}` : 'Owner not named'}
        {run.model ? ` · model ${run.model}` : ''}
        {run.homepage && (
          <>
            {' · '}
            <a href={run.homepage} target="_blank" rel="noopener noreferrer">
              {new URL(run.homepage).host}
            </a>
          </>
        )}
        {' · '}
        <code>{run.coordinator}</code>
      </p>
      <button type="button" className="primary" onClick={onJoin} disabled={busy}>
        Join {run.name}
      </button>
    </li>
  );
}

/** The known runs (shipped and refreshed), each joined in one click; or how to host one when there are none. */
export function KnownRuns({ heading: Heading = 'h2' }: { heading?: 'h2' | 'h3' }) {
  const known = useApp((s) => s.knownRuns);
  const join = useApp((s) => s.joinKnownRun);
  const busy = useApp((s) => s.busy);
  const runs = offeredRuns(known);
  return (
    <section aria-labelledby={`known-runs-title-${Heading}`}>
      <Heading id={`known-runs-title-${Heading}`}>Public runs</Heading>
      {runs.length > 0 ? (
        <ul className="runs" aria-label="Known runs">
          {runs.map((r) => (
            <KnownRunItem key={r.coordinator} run={r} busy={busy} onJoin={() => void join(r.coordinator)} />
          ))}
        </ul>
      ) : (
        <p className="hint" data-testid="no-known-runs">
          No public run is listed yet (a list of runs can be added in Settings). {HOST_A_RUN}
        </p>
      )}
    </section>
  );
}

export function NetworkPick() {
  const settings = useApp((s) => s.settings);
  const local = useApp((s) => s.localCoordinator);
  const choose = useApp((s) => s.chooseNetwork);
  const busy = useApp((s) => s.busy);
  const [network, setNetwork] = useState<'local' | 'custom'>(local ? settings.network : 'custom');
  const [url, setUrl] = useState(settings.coordinatorUrl);
  return (
    <form
      className="card narrow"
      onSubmit={(ev) => {
        ev.preventDefault();
        void choose(network, url);
      }}
      aria-labelledby="network-title"
    >
      <h1 id="network-title">Choose a network</h1>
      <KnownRuns />
      <fieldset>
        <legend>Where to contribute</legend>
        <label className="choice">
          <input type="radio" name="network" value="local" checked={network === 'local'} onChange={() => setNetwork('local')} disabled={!local} />
          Local run on this computer {local ? <code>{local}</code> : <em>(only when opened through npm run web)</em>}
        </label>
        <label className="choice">
          <input type="radio" name="network" value="custom" checked={network === 'custom'} onChange={() => setNetwork('custom')} />
          A coordinator address
        </label>
        <label>
          Coordinator URL
          <input type="url" inputMode="url" placeholder="ws://host:8787/ws" value={url} onChange={(e) => setUrl(e.target.value)} disabled={network !== 'custom'} />
        </label>
      </fieldset>
      <button type="submit" className="primary" disabled={busy}>
        Continue
      </button>
    </form>
  );
}

export function GpuSummary() {
  const gpu = useApp((s) => s.gpu);
  if (!gpu) return <p aria-live="polite">Checking the GPU…</p>;
  if (!gpu.available) return <p className="bad">No usable GPU: {gpu.problem}</p>;
  return (
    <dl className="facts" aria-label="GPU check">
      <dt>Adapter</dt>
      <dd data-testid="gpu-adapter">{gpu.adapter}</dd>
      <dt>Kind</dt>
      <dd>{gpu.isSoftware ? 'Software (runs on the CPU: slow, fine for trying Tessera out)' : 'Hardware GPU'}</dd>
      <dt>Model</dt>
      <dd>
        {gpu.model}: needs about {formatBytes(gpu.needBytes)} of GPU memory; largest buffer {formatBytes(gpu.largestTensorBytes)} of {formatBytes(gpu.maxBufferBytes)} allowed
      </dd>
      {gpu.problem && (
        <>
          <dt>Problem</dt>
          <dd className="bad">{gpu.problem}</dd>
        </>
      )}
    </dl>
  );
}

export function GpuCheck() {
  const gpu = useApp((s) => s.gpu);
  const enter = useApp((s) => s.enterMain);
  const recheck = useApp((s) => s.checkGpu);
  return (
    <section className="card narrow" aria-labelledby="gpu-title">
      <h1 id="gpu-title">Your GPU</h1>
      <GpuSummary />
      <RunAbout />
      <div className="row">
        <button type="button" className="primary" onClick={enter} disabled={!gpu?.available}>
          Continue
        </button>
        <button type="button" onClick={() => void recheck()}>
          Check again
        </button>
      </div>
    </section>
  );
}
