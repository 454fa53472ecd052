// Settings, saved as they change (IndexedDB in a tab; the main process in the desktop app):
// the GPU budget, when to hold training, the network and how much the log says.
import { useState } from 'react';
import { DEFAULT_DUTY_CYCLE, LOG_LEVELS, type LogLevel } from '../state/db.ts';
import { coordinatorSocketUrl } from '../state/rules.ts';
import { useApp } from './context.tsx';
import { KnownRuns } from './Setup.tsx';

const BUDGET_WHY = '(videos, games and the desktop get the GPU the rest of the time, and the fans stay quieter). Raise it when the computer is left alone; lower it if things feel slow.';

export function SettingsPanel() {
  const settings = useApp((s) => s.settings);
  const update = useApp((s) => s.updateSettings);
  const local = useApp((s) => s.localCoordinator);
  const running = useApp((s) => s.run.activity !== 'idle');
  const desktop = useApp((s) => s.desktop !== null);
  const [url, setUrl] = useState(settings.coordinatorUrl);
  const urlOk = coordinatorSocketUrl(url) !== null;
  return (
    <section className="card" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <label>
        GPU budget: train {settings.dutyCycle}% of the time
        <input type="range" min={10} max={100} step={5} value={settings.dutyCycle} onChange={(e) => void update({ dutyCycle: Number(e.target.value) })} />
      </label>
      <p className="hint" data-testid="budget-why">
        {/* The desktop app's main process starts at the same level (electron/services/settings.ts). */}
        {`Tessera starts at ${DEFAULT_DUTY_CYCLE}% so the computer stays pleasant to use ${BUDGET_WHY}`}
      </p>
      {!desktop && (
        <label className="choice">
          <input type="checkbox" checked={settings.pauseWhenHidden} onChange={(e) => void update({ pauseWhenHidden: e.target.checked })} />
          Pause while this tab is hidden
        </label>
      )}
      <label className="choice">
        <input type="checkbox" checked={settings.pauseOnBattery} onChange={(e) => void update({ pauseOnBattery: e.target.checked })} />
        {desktop ? 'Pause on battery' : 'Pause on battery (where the browser can tell)'}
      </label>
      <fieldset>
        <legend>Schedule</legend>
        <label className="choice">
          <input type="checkbox" checked={settings.schedule.enabled} onChange={(e) => void update({ schedule: { ...settings.schedule, enabled: e.target.checked } })} />
          Train only between
        </label>
        <div className="row">
          <label>
            From
            <input type="time" value={settings.schedule.from} onChange={(e) => e.target.value && void update({ schedule: { ...settings.schedule, from: e.target.value } })} />
          </label>
          <label>
            To
            <input type="time" value={settings.schedule.to} onChange={(e) => e.target.value && void update({ schedule: { ...settings.schedule, to: e.target.value } })} />
          </label>
        </div>
      </fieldset>
      <fieldset disabled={running}>
        <legend>Network {running && '(stop contributing to change it)'}</legend>
        {!desktop && (
          <>
            <label className="choice">
              <input type="radio" name="settings-network" checked={settings.network === 'local'} onChange={() => void update({ network: 'local' })} disabled={!local} />
              Local run {local ? '' : '(not available: open the page through npm run web)'}
            </label>
            <label className="choice">
              <input type="radio" name="settings-network" checked={settings.network === 'custom'} onChange={() => void update({ network: 'custom' })} />
              Coordinator address
            </label>
          </>
        )}
        <label>
          Coordinator URL
          <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} onBlur={() => urlOk && void update({ coordinatorUrl: url.trim() })} aria-invalid={url !== '' && !urlOk} />
        </label>
        {url !== '' && !urlOk && <p className="hint bad">Not an address: use ws://host:port/ws or http://host:port.</p>}
        <KnownRuns heading="h3" />
      </fieldset>
      <KnownRunsSource />
      <label>
        Log level
        <select value={settings.logLevel} onChange={(e) => void update({ logLevel: e.target.value as LogLevel })}>
          {LOG_LEVELS.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
      </label>
    </section>
  );
}

/** Where the list of known runs comes from: the shipped list, and a URL to refresh it from. */
function KnownRunsSource() {
  const listUrl = useApp((s) => s.settings.runListUrl);
  const fetched = useApp((s) => s.knownRuns.fetched);
  const shipped = useApp((s) => s.knownRuns.shipped.runs.length);
  const refreshing = useApp((s) => s.knownRuns.refreshing);
  const update = useApp((s) => s.updateSettings);
  const refresh = useApp((s) => s.refreshKnownRuns);
  const [url, setUrl] = useState(listUrl);
  const urlOk = url.trim() === '' || /^https?:\/\/\S+$/i.test(url.trim());
  const save = async () => {
    if (!urlOk) return;
    await update({ runListUrl: url.trim() });
    if (url.trim()) await refresh();
  };
  return (
    <fieldset>
      <legend>List of public runs</legend>
      <p className="hint">
        This app ships {shipped === 0 ? 'an empty list' : `a list of ${shipped} run${shipped === 1 ? '' : 's'}`}; a list at an address (JSON: {'{ "runs": [{ "name", "coordinator", "description", "owner", "homepage", "model" }] }'}) adds to it. Each entry is checked; a bad one is left out, with a note.
      </p>
      <label>
        List address
        <input type="url" value={url} placeholder="https://example.org/tessera-runs.json" onChange={(e) => setUrl(e.target.value)} onBlur={() => void save()} aria-invalid={!urlOk} />
      </label>
      {!urlOk && <p className="hint bad">Not an http(s) address.</p>}
      <div className="row">
        <button type="button" onClick={() => void save()} disabled={!urlOk || url.trim() === '' || refreshing}>
          {refreshing ? 'Refreshing…' : 'Refresh the list'}
        </button>
      </div>
      {fetched && (
        <p className="hint" data-testid="run-list-status" role="status">
          {fetched.fetchedAt > 0 ? `${fetched.runs.length} run${fetched.runs.length === 1 ? '' : 's'} from ${fetched.url}, fetched ${new Date(fetched.fetchedAt).toLocaleString()}.` : `Nothing fetched yet from ${fetched.url}.`}
          {fetched.error && ` The last refresh failed (${new Date(fetched.errorAt).toLocaleTimeString()}): ${fetched.error}; ${fetched.fetchedAt > 0 ? 'the list fetched before is kept' : 'only the shipped list is offered'}.`}
          {fetched.dropped.length > 0 && ` Left out: ${fetched.dropped.join('; ')}.`}
        </p>
      )}
    </fieldset>
  );
}

export function LogView() {
  const log = useApp((s) => s.log);
  return (
    <details className="card">
      <summary>Log ({log.length})</summary>
      <ol className="log" aria-label="Log">
        {log.slice(-100).map((l, i) => (
          <li key={i} className={l.level}>
            <time>{new Date(l.at).toLocaleTimeString()}</time> {l.text}
          </li>
        ))}
      </ol>
    </details>
  );
}
