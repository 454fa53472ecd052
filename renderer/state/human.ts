// Every failure in words a hobbyist can act on: what happened, and what to do next. The store's
// slices show these notices; none of them spells its own.
import type { WireError } from '../engine/messages.ts';
import { MIN_PASSWORD_CHARS } from '../../src/wallet/password-rule.ts';
import { PATH_WORDS, type LinkPath } from '../../src/net/link-path.ts';

export interface Notice {
  kind: WireError['kind'] | 'peer-blocked' | 'mnemonic-mismatch' | 'input' | 'settings' | 'desktop';
  title: string;
  text: string;
  /** 'error' blocks the action; 'warning' is information while things carry on. */
  severity: 'error' | 'warning';
  /** A way out the banner offers as a button: 'another-wallet' lets this tab take a wallet of its own. */
  action?: 'another-wallet';
}

export function noticeFor(e: WireError): Notice {
  switch (e.kind) {
    case 'no-webgpu':
      return { kind: e.kind, severity: 'error', title: 'This browser cannot use your GPU (no WebGPU)', text: `${e.message} Then reload this page.` };
    case 'wrong-password':
      return { kind: e.kind, severity: 'error', title: 'Wrong password', text: 'That is not the password of the wallet saved in this browser. Try again; if it is lost, choose "Import from my words" and enter your recovery words with a new password.' };
    case 'unreachable':
      return { kind: e.kind, severity: 'warning', title: 'Cannot reach the coordinator', text: `${e.message} Retrying with a growing pause; check the coordinator URL in Settings.` };
    case 'in-use':
      return {
        kind: e.kind,
        severity: 'error',
        title: 'This wallet is already contributing in another tab',
        text: 'One wallet contributes from one place at a time (a second connection would push the first off the run). Carry on in that tab, or give this tab a wallet of its own: it then contributes too, as a second contributor with its own rewards.',
        action: 'another-wallet',
      };
    case 'refused':
      return { kind: e.kind, severity: 'error', title: 'The coordinator refused this contributor', text: e.message };
    case 'gpu-lost':
      return { kind: e.kind, severity: 'error', title: 'The GPU stopped responding', text: e.message };
    case 'run-config':
      return { kind: e.kind, severity: 'error', title: 'This run cannot be joined', text: `${e.message}. The coordinator's run settings are not ones this version can train.` };
    case 'wallet':
      return { kind: e.kind, severity: 'error', title: 'Wallet problem', text: e.message };
    default:
      return { kind: e.kind, severity: 'error', title: 'Something went wrong', text: e.message };
  }
}

/** The notice of a failed engine call (its WireError, or the thrown error's message). */
export function noticeOfError(e: unknown): Notice {
  const wire = (e as { wire?: WireError } | null)?.wire;
  return noticeFor(wire ?? { kind: 'other', message: e instanceof Error ? e.message : String(e) });
}

export function retryNotice(attempt: number, inMs: number, reason: string): Notice {
  return {
    kind: 'unreachable',
    severity: 'warning',
    title: 'Cannot reach the coordinator',
    text: `${sentence(reason)} Attempt ${attempt}; trying again in ${Math.round(inMs / 1000)} s, then less often. To use another coordinator, stop and change the URL in Settings.`,
  };
}

export function blockedPeerNotice(peer: string, reason: string): Notice {
  return {
    kind: 'peer-blocked',
    severity: 'warning',
    title: 'A peer connection is blocked',
    text: `No direct link to ${short(peer)} (${reason}). A firewall or NAT is in the way: the run's coordinator needs a TURN server to relay such links (tessera coordinator --turn). Training goes on; updates come via the store meanwhile.`,
  };
}

// ---- what the user typed or chose, refused (the first run, a tab's wallet, settings) ----

const inputNotice = (title: string, text: string): Notice => ({ kind: 'input', severity: 'error', title, text });

export const wordsMismatchNotice = (): Notice => ({
  kind: 'mnemonic-mismatch',
  severity: 'error',
  title: 'Those words do not match',
  text: 'Check your written copy: the words must be the ones shown, at those positions. "Show the words again" brings them back.',
});

export const notAMnemonicNotice = (words: number): Notice => inputNotice('Not a mnemonic', `A mnemonic has 12 or 24 words (15, 18, 21 also work); this has ${words}.`);

export const passwordsDifferNotice = (): Notice => inputNotice('The passwords differ', 'Type the same password twice.');

/** `wallet`: whose wallet the password encrypts, in words ("your wallet", "this wallet"). */
export const passwordTooShortNotice = (wallet: string): Notice => inputNotice('Password too short', `Use at least ${MIN_PASSWORD_CHARS} characters: it encrypts ${wallet} in this browser.`);

export const noTabWalletChosenNotice = (): Notice => inputNotice('No wallet chosen', 'Choose one of the wallets listed, or create a wallet for this tab.');

export const notACoordinatorNotice = (): Notice => inputNotice('Not a coordinator address', 'Enter an address like ws://host:8787/ws or http://host:8787 (https and wss work too).');

export const noLocalCoordinatorNotice = (): Notice =>
  inputNotice('No local coordinator here', 'This page was not served by `npm run web`, so there is no local run: enter a coordinator address instead.');

export const noCoordinatorChosenNotice = (): Notice => inputNotice('No coordinator chosen', 'Choose a network in Settings: the local run of `npm run web`, or a coordinator address.');

export const onlyInDesktopNotice = (): Notice => inputNotice('Only in the desktop app', 'This setting belongs to the Tessera desktop app.');

export const settingsNotLoadedNotice = (problem: string): Notice => ({ kind: 'settings', severity: 'warning', title: 'Settings not loaded', text: problem });

// ---- the desktop app's UI window (renderer/state/desktop.ts) ----

const desktopNotice = (severity: Notice['severity'], title: string, text: string): Notice => ({ kind: 'desktop', severity, title, text });

export const DESKTOP_NOTICES = {
  noAnswer: (problem: string) => desktopNotice('error', 'The desktop app did not answer', `${problem}. Restart Tessera.`),
  savedWalletUnreadable: (problem: string) => desktopNotice('warning', 'Saved wallet not readable', problem),
  trainingStopped: (why: string) => desktopNotice('error', 'Training stopped', why),
  /** The keyring is plain text (`warning` says so) and the user has not agreed to that yet. */
  secretWaiting: (warning: string) => desktopNotice('warning', 'Wallet secret not saved yet', `${warning} To train in the background anyway, choose "Store it anyway" in Settings.`),
  secretNotSaved: (problem: string) => desktopNotice('error', 'Wallet secret not saved', problem),
  /** Contribute without a stored secret; `why` is the storage's warning, if any. */
  secretMissing: (why: string | null) =>
    desktopNotice('error', 'The wallet secret is not saved', `Training runs in a background window that signs with your wallet secret from the system keychain. ${why ?? 'Unlock the wallet again to save it.'}`),
  noCoordinator: () => desktopNotice('error', 'No coordinator chosen', 'Enter a coordinator address in Settings.'),
};

export function short(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/** A message as a sentence: capital first letter, one closing mark. */
function sentence(text: string): string {
  const t = text.trim();
  return `${t.charAt(0).toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}`;
}

// ---- the run in a volunteer's words ----

/** Who this device trains with: the round's members (itself included) and its direct links. */
export function peersText(linked: number, members: number, blocked: number): string {
  const others = Math.max(0, members - 1);
  const b = blocked > 0 ? `; ${blocked} blocked by a firewall or NAT (their updates come through the coordinator)` : '';
  if (members === 0) return linked > 0 ? `linked directly to ${linked} other contributor${linked === 1 ? '' : 's'}; no round yet${b}` : `no round yet${b}`;
  if (others === 0) return `alone in this round — no other contributors yet${b}`;
  if (linked >= others) return `linked directly to ${others === 1 ? 'the 1 other contributor' : `all ${others} others`} in this round${b}`;
  // Protocol 2: a contributor links to a few neighbours; committed updates come from them or the store.
  const rest = linked === 0 ? 'updates come through the coordinator' : 'updates from the rest come through these neighbours or the coordinator';
  return `linked directly to ${linked} of ${others} others in this round (${rest})${b}`;
}

/**
 * How this device reaches each neighbour, in words: "direct", "through the relay" (the run's
 * TURN server) or, for a neighbour whose link never came up, "via the store" (the coordinator).
 */
export function linkPathsText(paths: Record<string, LinkPath>, blocked: Record<string, string>): string {
  const parts = [
    ...Object.entries(paths).map(([peer, path]) => `${short(peer)} ${PATH_WORDS[path]}`),
    ...Object.keys(blocked).filter((peer) => !(peer in paths)).map((peer) => `${short(peer)} ${PATH_WORDS.store}`),
  ];
  return parts.length ? parts.join(' · ') : 'no links yet';
}

/** A reward with its unit: never a bare number. */
export function rewardText(amount: number, unit: string): string {
  return `${amount.toFixed(3)} ${unit}`;
}

/** Tokens in words: 1234 → "1.2 thousand", 3.4e9 → "3.4 billion". */
export function tokensText(n: number): string {
  const steps: [number, string][] = [
    [1e12, 'trillion'],
    [1e9, 'billion'],
    [1e6, 'million'],
    [1e3, 'thousand'],
  ];
  for (const [size, word] of steps) if (n >= size) return `${(n / size).toFixed(n / size < 10 ? 1 : 0)} ${word}`;
  return String(Math.round(n));
}

/** Why bytes were sent: checkpoints (the whole model, for newcomers) apart from the round's updates. */
export function sentText(o: { bytesUp: number; checkpoints: number; checkpointBytes: number; checkpointEvery: number }, format: (bytes: number) => string): string {
  const updates = Math.max(0, o.bytesUp - o.checkpointBytes);
  const every = o.checkpointEvery > 0 ? `every ${o.checkpointEvery} round${o.checkpointEvery === 1 ? '' : 's'}, ` : '';
  const parts = [`${format(updates)} of updates and messages (your compressed work, each round)`];
  if (o.checkpoints > 0) parts.push(`${format(o.checkpointBytes)} in ${o.checkpoints} checkpoint${o.checkpoints === 1 ? '' : 's'} (a full copy of the model, ${every}so newcomers can start from it)`);
  else if (o.checkpointEvery > 0) parts.push(`no checkpoint yet (one contributor uploads the whole model every ${o.checkpointEvery} rounds, for newcomers)`);
  return parts.join('; ');
}

const PHASE_TEXT: Record<string, string> = { compile: 'Compiling GPU kernels', shard: 'Fetching the training data', sync: 'Getting the current weights', peers: 'Waiting for other contributors' };

/** A start-up step in words: "Compiling GPU kernels: 12 of 40" (the contributor's own text is shown beside it). */
export function progressText(p: { phase: string; done: number; total: number }): string {
  const what = PHASE_TEXT[p.phase] ?? 'Starting';
  if (!(p.total > 0)) return what;
  return p.phase === 'shard' ? `${what}: ${Math.min(100, Math.round((100 * p.done) / p.total))}%` : `${what}: ${p.done} of ${p.total}`;
}

/** How to host a run, for a page that knows none. */
export const HOST_A_RUN =
  'To start one, run `npx tessera coordinator --run run.json` on a computer the contributors can reach and share its address (ws://HOST:8787/ws): the README\'s section "A round over the network" says how, and "npm run web" starts a local one to try.';
