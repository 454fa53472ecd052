// The one rule for a new wallet password, wherever a password is chosen: `tessera wallet
// create|import`, the page's first run and a tab's own wallet, and encryptWallet itself.
// Dependency-free, so the page's state code can use it without loading the crypto.
// (Unlocking never checks it: a wallet made before the rule still opens.)

/** The fewest characters a new wallet password may have. */
export const MIN_PASSWORD_CHARS = 8;

/** Characters as the key derivation sees them: code points after NFKC (é typed either way is one). */
export function passwordChars(password: string): number {
  return Array.from(password.normalize('NFKC')).length;
}

/** Why `password` may not encrypt a new wallet (a sentence a person can act on), or null when it may. */
export function newPasswordProblem(password: string): string | null {
  const chars = passwordChars(password);
  if (chars === 0) return `the wallet password is empty: choose one of at least ${MIN_PASSWORD_CHARS} characters (it encrypts the wallet on disk)`;
  if (chars < MIN_PASSWORD_CHARS) return `the wallet password is too short (${chars} character${chars === 1 ? '' : 's'}): use at least ${MIN_PASSWORD_CHARS}, it encrypts the wallet on disk`;
  return null;
}
