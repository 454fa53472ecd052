// The screens: first-run steps, then the main view with its tabs.
import { useState } from 'react';
import { useApp } from './context.tsx';
import { Controls, LiveStatus, LossChart } from './Dashboard.tsx';
import { DesktopSettingsPanel, DesktopStatusPanel } from './Desktop.tsx';
import { NoticeBanner } from './Notice.tsx';
import { RunAbout } from './RunAbout.tsx';
import { ChoosePassword, ConfirmWords, ImportWords, ShowWords, Unlock, Welcome } from './Onboarding.tsx';
import { GpuCheck, GpuSummary, NetworkPick } from './Setup.tsx';
import { LogView, SettingsPanel } from './Settings.tsx';
import { TabWalletChoice, TabWalletCreate } from './TabWallet.tsx';
import { WalletPanel } from './Wallet.tsx';

type Tab = 'contribute' | 'wallet' | 'settings';

function Main() {
  const [tab, setTab] = useState<Tab>('contribute');
  const tabs: [Tab, string][] = [
    ['contribute', 'Training'],
    ['wallet', 'Wallet'],
    ['settings', 'Settings'],
  ];
  return (
    <>
      <nav className="tabs" aria-label="Views">
        {tabs.map(([id, label]) => (
          <button key={id} type="button" aria-current={tab === id ? 'page' : undefined} onClick={() => setTab(id)}>
            {label}
          </button>
        ))}
      </nav>
      {tab === 'contribute' && (
        <section className="card" aria-labelledby="contribute-title">
          <RunAbout />
          <h2 id="contribute-title">Contribute</h2>
          <Controls />
          <LiveStatus />
          <DesktopStatusPanel />
          <LossChart />
          <details>
            <summary>GPU</summary>
            <GpuSummary />
          </details>
        </section>
      )}
      {tab === 'wallet' && <WalletPanel />}
      {tab === 'settings' && (
        <>
          <SettingsPanel />
          <DesktopSettingsPanel />
        </>
      )}
      <LogView />
    </>
  );
}

export function App() {
  const screen = useApp((s) => s.screen);
  return (
    <div className="app">
      <header>
        <span className="logo" aria-hidden="true">
          ▦
        </span>{' '}
        Tessera
      </header>
      <NoticeBanner />
      <main>
        {screen === 'loading' && <p aria-live="polite">Loading…</p>}
        {screen === 'welcome' && <Welcome />}
        {screen === 'create-show' && <ShowWords />}
        {screen === 'create-confirm' && <ConfirmWords />}
        {screen === 'import' && <ImportWords />}
        {screen === 'password' && <ChoosePassword />}
        {screen === 'unlock' && <Unlock />}
        {screen === 'network' && <NetworkPick />}
        {screen === 'gpu' && <GpuCheck />}
        {screen === 'main' && <Main />}
        {screen === 'tab-wallet' && <TabWalletChoice />}
        {screen === 'tab-create' && <TabWalletCreate />}
      </main>
    </div>
  );
}
