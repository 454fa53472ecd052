// Pieces of the wallet screens used by both the first run (Onboarding) and a tab's own
// wallet (TabWallet): the recovery words as a numbered list, and a new password typed twice.
import { MIN_PASSWORD_CHARS } from '../../src/wallet/password-rule.ts';

export function RecoveryWords({ mnemonic }: { mnemonic: string }) {
  return (
    <ol className="words" aria-label="Your recovery words">
      {mnemonic.split(' ').map((w, i) => (
        <li key={i}>
          <span className="index">{i + 1}</span> <span className="word">{w}</span>
        </li>
      ))}
    </ol>
  );
}

export function NewPasswordFields(p: { label: string; pw: string; setPw: (v: string) => void; again: string; setAgain: (v: string) => void }) {
  return (
    <>
      <label>
        {p.label}
        <input type="password" autoComplete="new-password" value={p.pw} onChange={(e) => p.setPw(e.target.value)} minLength={MIN_PASSWORD_CHARS} required />
      </label>
      <label>
        Password again
        <input type="password" autoComplete="new-password" value={p.again} onChange={(e) => p.setAgain(e.target.value)} required />
      </label>
    </>
  );
}
