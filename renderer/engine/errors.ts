// Turns what the engine throws into the few kinds the UI explains in words: each kind gets a
// message saying what happened and what to do. Environment-free (worker and tests).
import { GpuLostError, NoGpuError } from '../../src/gpu/errors.ts';
import { RunConfigError } from '../../src/protocol/run-config.ts';
import { CoordinatorError } from '../../src/net/signaling.ts';
import { WalletError } from '../../src/wallet/keys.ts';
import type { WireError } from './messages.ts';

/** This wallet already contributes from another tab of this browser (one hotkey, one connection). */
export class WalletInUseError extends Error {
  override name = 'WalletInUseError';
}

export function toWireError(e: unknown): WireError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof WalletInUseError) return { kind: 'in-use', message };
  if (e instanceof NoGpuError) return { kind: 'no-webgpu', message };
  if (e instanceof GpuLostError) return { kind: 'gpu-lost', message };
  if (e instanceof WalletError) return { kind: /wrong password/i.test(message) ? 'wrong-password' : 'wallet', message };
  if (e instanceof CoordinatorError) return { kind: e.retry ? 'unreachable' : 'refused', message };
  if (e instanceof RunConfigError) return { kind: 'run-config', message };
  return { kind: 'other', message };
}

/** A failure worth retrying with backoff: the coordinator is down or the network dropped. */
export function isRetryable(e: unknown): boolean {
  if (e instanceof CoordinatorError) return e.retry;
  const name = (e as { name?: unknown } | null)?.name;
  return (e instanceof TypeError && /fetch|network/i.test(e.message)) || name === 'TimeoutError' || name === 'AbortError';
}

/** What a link that went down says about the network: it never connected, so NAT or a firewall blocks it. */
export function isBlockedLink(reason: string): boolean {
  return /not connected within|ice connection|ICE_CONNECTION/i.test(reason);
}
