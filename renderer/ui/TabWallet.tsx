// A wallet for this tab, when the tab's wallet contributes in another tab of the browser:
// pick another stored wallet (its password), or create one — its words shown once and its
// password on one screen, a shortened first run — and contribute with it.
import { useState } from 'react';
import { short } from '../state/human.ts';
import { useApp } from './context.tsx';
import { NewPasswordFields, RecoveryWords } from './WalletFields.tsx';

export function TabWalletChoice() {
  const wallets = useApp((s) => s.wallets);
  const current = useApp((s) => s.walletName);
  const busy = useApp((s) => s.busy);
  const create = useApp((s) => s.createTabWallet);
  const unlock = useApp((s) => s.unlockTabWallet);
  const cancel = useApp((s) => s.cancelTabWallet);
  const others = wallets.filter((w) => w.name !== current && !w.inUse);
  const [chosen, setChosen] = useState(others[0]?.name ?? '');
  const [pw, setPw] = useState('');
  return (
    <section className="card narrow" aria-labelledby="tab-wallet-title">
      <h1 id="tab-wallet-title">A wallet for this tab</h1>
      <p>Your wallet is contributing in another tab of this browser. This tab can contribute too, as a second contributor, with a wallet of its own: its work and rewards are counted apart.</p>
      <button type="button" className="primary" onClick={() => void create()} disabled={busy}>
        Create a wallet for this tab
      </button>
      {others.length > 0 && (
        <form
          onSubmit={(ev) => {
            ev.preventDefault();
            void unlock(chosen, pw);
          }}
        >
          <fieldset>
            <legend>Or use another wallet of this browser</legend>
            {others.map((w) => (
              <label key={w.name} className="choice">
                <input type="radio" name="tab-wallet" value={w.name} checked={chosen === w.name} onChange={() => setChosen(w.name)} />
                Wallet {short(w.address)}
              </label>
            ))}
            <label>
              Password of that wallet
              <input type="password" autoComplete="current-password" value={pw} onChange={(e) => setPw(e.target.value)} required />
            </label>
            <button type="submit" disabled={busy}>
              {busy ? 'Unlocking…' : 'Unlock and contribute'}
            </button>
          </fieldset>
        </form>
      )}
      <div className="row spaced">
        <button type="button" onClick={cancel}>
          Back
        </button>
      </div>
    </section>
  );
}

export function TabWalletCreate() {
  const draft = useApp((s) => s.draft);
  const busy = useApp((s) => s.busy);
  const save = useApp((s) => s.saveTabWallet);
  const cancel = useApp((s) => s.cancelTabWallet);
  const [pw, setPw] = useState('');
  const [again, setAgain] = useState('');
  if (!draft) return null;
  return (
    <form
      className="card narrow"
      onSubmit={(ev) => {
        ev.preventDefault();
        void save(pw, again);
      }}
      aria-labelledby="tab-create-title"
    >
      <h1 id="tab-create-title">This tab's new wallet</h1>
      <p>Write down these 12 words to keep what this wallet earns: they are shown only now, and without them a lost password cannot be recovered.</p>
      <RecoveryWords mnemonic={draft.mnemonic} />
      <NewPasswordFields label="Password for this wallet" pw={pw} setPw={setPw} again={again} setAgain={setAgain} />
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Encrypting…' : 'Save and contribute'}
        </button>
        <button type="button" onClick={cancel}>
          Back
        </button>
      </div>
    </form>
  );
}
