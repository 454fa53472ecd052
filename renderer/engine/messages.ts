// The typed interface between the UI (page) and the engine's Web Worker. The page sends
// requests, each answered once by id; the worker also pushes events (the contributor's own,
// plus the worker's: connecting, retrying, paused, ended). Everything here is structured-
// clonable plain data: no classes cross postMessage.
import type { ContributorEvent, StopMode } from '../../src/contributor/contributor.ts';
import type { PresetName } from '../../src/model/config.ts';
import type { Standing } from '../../src/protocol/messages.ts';

export type { StopMode };

/** What the GPU check found, and whether the chosen model fits. */
export interface GpuReport {
  /** False when there is no WebGPU or no adapter; `problem` says what to do. */
  available: boolean;
  adapter: string;
  isSoftware: boolean;
  /** The largest buffer the device allows, bytes (0 when unavailable). */
  maxBufferBytes: number;
  /** Estimated GPU memory the model slice needs to train, bytes. */
  needBytes: number;
  /** The largest single tensor of that model, bytes (must fit maxBufferBytes). */
  largestTensorBytes: number;
  model: PresetName;
  problem: string | null;
}

export interface WalletInfo {
  /** Its key in this browser's keystore: 'default' for the first, another for a tab's own. */
  name: string;
  address: string;
}

/** A stored wallet, and whether some tab of this browser contributes with it now. */
export interface StoredWallet extends WalletInfo {
  inUse: boolean;
}

/** Request → its result type. */
export interface EngineCalls {
  /** Wallets saved in this browser (no password needed). */
  listWallets: { arg: Record<string, never>; result: StoredWallet[] };
  /** A fresh 12-word mnemonic and its address; nothing is stored yet. */
  generateMnemonic: { arg: Record<string, never>; result: { mnemonic: string; address: string } };
  /** Encrypts the mnemonic with the password and stores it under `name` ('default' when absent); the key stays unlocked in the worker. */
  saveWallet: { arg: { mnemonic: string; password: string; overwrite?: boolean; name?: string }; result: WalletInfo };
  /** Decrypts the stored wallet `name` ('default' when absent); the key stays in the worker. `reveal` also returns its secret (the desktop app keeps it in the OS keychain). */
  unlockWallet: { arg: { password: string; reveal?: boolean; name?: string }; result: WalletInfo & { secret?: string } };
  /** Uses a wallet secret (mnemonic, or a seed-only wallet's 0x seed) without storing it: the desktop app's keychain holds it. */
  useSecret: { arg: { secret: string }; result: WalletInfo };
  checkGpu: { arg: { model: PresetName; batch: number; seq: number }; result: GpuReport };
  /** Joins the run at `coordinator` (ws://…/ws) and contributes until stopped. */
  /**
   * `holdEachStep`: after every inner step GPU work is held (and a 'held' event says so) until
   * releaseStep — the desktop training window asks the main process first (duty cycle, orders).
   */
  start: { arg: { coordinator: string; dutyCycle: number; paused: boolean; holdEachStep?: boolean }; result: { address: string } };
  /**
   * This wallet's standing at a coordinator (its GET /rewards, signed by the hotkey); null when
   * it keeps no rewards or has none for us yet. The desktop UI window reads its rewards so,
   * since training (and the coordinator's 'reward' messages) are in the training window.
   */
  readStanding: { arg: { coordinator: string }; result: Standing | null };
  /** Lets GPU work go on after a held step. */
  releaseStep: { arg: Record<string, never>; result: Record<string, never> };
  stop: { arg: { mode: StopMode }; result: Record<string, never> };
  /** Holds training at the next GPU read-back (the socket and heartbeats carry on). */
  setPaused: { arg: { paused: boolean }; result: Record<string, never> };
  /** Percent of wall time the GPU may be busy (10..100). */
  setDutyCycle: { arg: { percent: number }; result: Record<string, never> };
}

export type CallName = keyof EngineCalls;

export type Request = { [K in CallName]: { id: number; call: K; arg: EngineCalls[K]['arg'] } }[CallName];

/** Why a call failed, sorted so the UI can say the right human thing. */
export type ErrorKind = 'no-webgpu' | 'wrong-password' | 'wallet' | 'in-use' | 'unreachable' | 'refused' | 'run-config' | 'gpu-lost' | 'other';

export interface WireError {
  kind: ErrorKind;
  message: string;
}

/** Events the worker adds to the contributor's own. */
export type WorkerEvent =
  | { event: 'connecting'; url: string; attempt: number }
  | { event: 'retrying'; url: string; attempt: number; inMs: number; reason: string }
  | { event: 'paused'; paused: boolean }
  | { event: 'gpu-share'; share: number }
  /** A step ended and GPU work is held until releaseStep (holdEachStep only); its GPU time. */
  | { event: 'held'; busyMs: number }
  | { event: 'ended'; error: WireError | null };

export type EngineEvent = ContributorEvent | WorkerEvent;

export type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: WireError }
  | { event: EngineEvent };

/** Coordinator connection retries: 1 s doubling to 30 s, as the contributor's own rejoin. */
export function retryDelayMs(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
}
