// Every failure in words a hobbyist can act on: what happened, and what to do next.
import type { WireError } from '../engine/messages.ts';

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
    text: `No direct link to ${short(peer)} (${reason}). A firewall or NAT is in the way: the run needs a TURN server in its iceServers for such networks. Training goes on; updates come through the coordinator meanwhile.`,
  };
}

export function short(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/** A message as a sentence: capital first letter, one closing mark. */
function sentence(text: string): string {
  const t = text.trim();
  return `${t.charAt(0).toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}`;
}
