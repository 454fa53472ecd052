// First run: create (words shown once, then three asked back) or import a wallet, choose its
// password; or unlock the saved one. Every field has a label; Enter submits.
import { useState, type FormEvent } from 'react';
import { DEFAULT_WALLET } from '../state/db.ts';
import { short } from '../state/human.ts';
import { useApp } from './context.tsx';
import { NewPasswordFields, RecoveryWords } from './WalletFields.tsx';

export function Welcome() {
  const beginCreate = useApp((s) => s.beginCreate);
  const beginImport = useApp((s) => s.beginImport);
  const busy = useApp((s) => s.busy);
  return (
    <section className="card narrow" aria-labelledby="welcome-title">
      <h1 id="welcome-title">Help train an open language model</h1>
      <p>Tessera trains a shared model on volunteers' GPUs. First you need a wallet: it identifies your work and collects your rewards.</p>
      <div className="row">
        <button type="button" className="primary" onClick={() => void beginCreate()} disabled={busy}>
          Create a wallet
        </button>
        <button type="button" onClick={beginImport} disabled={busy}>
          Import a wallet
        </button>
      </div>
    </section>
  );
}

export function ShowWords() {
  const draft = useApp((s) => s.draft);
  const next = useApp((s) => s.wroteDownWords);
  if (!draft) return null;
  return (
    <section className="card narrow" aria-labelledby="words-title">
      <h1 id="words-title">Write down these 12 words</h1>
      <p>
        They are your wallet. This is the only time they are shown: anyone with them holds your rewards, and without them a lost password cannot be recovered.
      </p>
      <RecoveryWords mnemonic={draft.mnemonic} />
      <button type="button" className="primary" onClick={next}>
        I wrote them down
      </button>
    </section>
  );
}

export function ConfirmWords() {
  const draft = useApp((s) => s.draft);
  const confirm = useApp((s) => s.confirmWords);
  const showAgain = useApp((s) => s.showWordsAgain);
  const [answers, setAnswers] = useState<string[]>(() => (draft?.confirm ?? []).map(() => ''));
  if (!draft) return null;
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    confirm(answers);
  };
  return (
    <form className="card narrow" onSubmit={submit} aria-labelledby="confirm-title">
      <h1 id="confirm-title">Check your copy</h1>
      <p>Type these words from what you wrote down.</p>
      {draft.confirm.map((pos, i) => (
        <label key={pos}>
          Word {pos + 1}
          <input
            autoComplete="off"
            autoCapitalize="none"
            spellCheck={false}
            value={answers[i] ?? ''}
            onChange={(e) => setAnswers(answers.map((a, k) => (k === i ? e.target.value : a)))}
            required
          />
        </label>
      ))}
      <div className="row">
        <button type="submit" className="primary">
          Confirm
        </button>
        <button type="button" onClick={showAgain}>
          Show the words again
        </button>
      </div>
    </form>
  );
}

export function ImportWords() {
  const submitImport = useApp((s) => s.submitImport);
  const back = useApp((s) => s.backToWelcome);
  const [text, setText] = useState('');
  return (
    <form
      className="card narrow"
      onSubmit={(ev) => {
        ev.preventDefault();
        submitImport(text);
      }}
      aria-labelledby="import-title"
    >
      <h1 id="import-title">Import a wallet</h1>
      <label>
        Your recovery words (12 or 24, separated by spaces)
        <textarea rows={3} autoComplete="off" autoCapitalize="none" spellCheck={false} value={text} onChange={(e) => setText(e.target.value)} required />
      </label>
      <div className="row">
        <button type="submit" className="primary">
          Continue
        </button>
        <button type="button" onClick={back}>
          Back
        </button>
      </div>
    </form>
  );
}

export function ChoosePassword() {
  const choose = useApp((s) => s.choosePassword);
  const busy = useApp((s) => s.busy);
  const [pw, setPw] = useState('');
  const [again, setAgain] = useState('');
  return (
    <form
      className="card narrow"
      onSubmit={(ev) => {
        ev.preventDefault();
        void choose(pw, again);
      }}
      aria-labelledby="password-title"
    >
      <h1 id="password-title">Choose a password</h1>
      <p>It encrypts the wallet in this browser. You need it each time you open Tessera.</p>
      <NewPasswordFields label="Password" pw={pw} setPw={setPw} again={again} setAgain={setAgain} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Encrypting…' : 'Save wallet'}
      </button>
    </form>
  );
}

export function Unlock() {
  const unlock = useApp((s) => s.unlock);
  const beginImport = useApp((s) => s.beginImport);
  const chooseTabWallet = useApp((s) => s.chooseTabWallet);
  const busy = useApp((s) => s.busy);
  // A tab that took a wallet of its own (its reload): that one is unlocked, not the browser's first.
  const tabWallet = useApp((s) => (s.walletName === DEFAULT_WALLET ? null : (s.wallets.find((w) => w.name === s.walletName) ?? null)));
  const [pw, setPw] = useState('');
  return (
    <form
      className="card narrow"
      onSubmit={(ev) => {
        ev.preventDefault();
        void unlock(pw);
      }}
      aria-labelledby="unlock-title"
    >
      <h1 id="unlock-title">Welcome back</h1>
      {tabWallet && <p>This tab contributes with its own wallet, {short(tabWallet.address)}.</p>}
      <label>
        Wallet password
        <input type="password" autoComplete="current-password" value={pw} onChange={(e) => setPw(e.target.value)} required autoFocus />
      </label>
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Unlocking…' : 'Unlock'}
        </button>
        {tabWallet ? (
          <button type="button" onClick={() => void chooseTabWallet()}>
            Use another wallet
          </button>
        ) : (
          <button type="button" onClick={beginImport}>
            Import from my words
          </button>
        )}
      </div>
    </form>
  );
}
