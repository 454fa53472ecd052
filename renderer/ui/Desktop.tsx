// What only the desktop app shows: the main process's status (tray state, why training is
// held, what the training window reports, restarts, GPU support) and the settings that exist
// only there (start at login, pause while the computer is in use or an app is full screen,
// GPU mode, the wallet secret's storage).
import type { GpuMode } from '../../electron/contract.ts';
import { TRAY_TEXT, pauseReasonsText } from '../desktop/ui-link.ts';
import { useApp } from './context.tsx';

export function DesktopStatusPanel() {
  const status = useApp((s) => s.desktop?.status ?? null);
  if (!status) return null;
  const reasons = pauseReasonsText(status.pauseReasons);
  const e = status.engine;
  const cp = status.lastCheckpoint;
  return (
    <dl className="facts" aria-label="Desktop app">
      <dt>Tray</dt>
      <dd data-testid="tray-state">{TRAY_TEXT[status.tray]}</dd>
      <dt>Held because</dt>
      <dd data-testid="pause-reasons">{reasons ?? '—'}</dd>
      <dt>Training window</dt>
      <dd data-testid="engine-report">{e ? `${e.phase}${e.round !== null ? `, round ${e.round}` : ''}${e.step !== null ? ` step ${e.step}` : ''}` : 'not reporting'}</dd>
      <dt>Last checkpoint</dt>
      <dd>{cp ? `round ${cp.round ?? '—'} at ${new Date(cp.at).toLocaleTimeString()}` : '—'}</dd>
      <dt>Restarts</dt>
      <dd data-testid="restarts">{status.restarts}</dd>
      <dt>WebGPU</dt>
      <dd data-testid="gpu-support">
        {status.gpu.plan}
        {status.gpu.adapterName ? `; ${status.gpu.adapterName}` : ''}
        {status.gpu.message ? `. ${status.gpu.message}` : ''}
      </dd>
    </dl>
  );
}

const GPU_MODES: [GpuMode, string][] = [
  ['auto', 'Automatic'],
  ['vulkan', 'Vulkan'],
  ['x11-vulkan', 'Vulkan through X11 (XWayland)'],
  ['no-vulkan', 'No Vulkan switch'],
];

export function DesktopSettingsPanel() {
  const d = useApp((s) => s.desktop);
  const update = useApp((s) => s.updateDesktopSettings);
  const allowPlainText = useApp((s) => s.allowPlainTextSecret);
  const settings = d?.settings;
  if (!d || !settings) return null;
  const storage = d.secretStorage;
  return (
    <section className="card" aria-labelledby="desktop-settings-title">
      <h2 id="desktop-settings-title">Desktop app</h2>
      <label className="choice">
        <input type="checkbox" checked={settings.startAtLogin} onChange={(e) => void update({ startAtLogin: e.target.checked })} />
        Start at login (hidden, in the tray)
      </label>
      <label className="choice">
        <input type="checkbox" checked={settings.pauseWhenUserActive} onChange={(e) => void update({ pauseWhenUserActive: e.target.checked })} />
        Pause while I use the computer
      </label>
      <label>
        Idle minutes before training resumes
        <input type="number" min={1} max={240} value={settings.userIdleMinutes} onChange={(e) => e.target.value && void update({ userIdleMinutes: Number(e.target.value) })} />
      </label>
      <label className="choice">
        <input type="checkbox" checked={settings.pauseWhenFullscreen} onChange={(e) => void update({ pauseWhenFullscreen: e.target.checked })} />
        Pause while another app is full screen (Linux/X11)
      </label>
      <label>
        GPU mode (Linux; applies after a restart)
        <select value={settings.gpuMode} onChange={(e) => void update({ gpuMode: e.target.value as GpuMode })}>
          {GPU_MODES.map(([mode, label]) => (
            <option key={mode} value={mode}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <p data-testid="secret-storage">Wallet secret: {d.secretSaved ? `saved (${storage?.backend ?? 'system keychain'})` : 'not saved'}</p>
      {storage?.warning && (
        <div className="notice warning" role="status">
          <p>{storage.warning}</p>
          {d.secretWaiting && !settings.allowPlainTextSecrets && (
            <button type="button" onClick={() => void allowPlainText()}>
              Store it anyway
            </button>
          )}
        </div>
      )}
    </section>
  );
}
