// The engine's Web Worker: the wallet's secret, the GPU and the training loop live here, off
// the UI thread (scrypt and WGSL compilation are long synchronous work). The page talks to it
// through messages.ts. WebRTC is the one thing a worker lacks (Chromium has no
// RTCPeerConnection in workers), so the peer links are held by the page and reached through
// rtc-bridge (see rtc-worker.ts); everything else — coordinator socket, fetch, IndexedDB,
// WebGPU — is the worker's own.
import { Contributor, type ContributorEvent } from '../../src/contributor/contributor.ts';
import { openGpu } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { adapterName } from '../../src/gpu/device.ts';
import type { SocketLike } from '../../src/net/signaling.ts';
import { IDB_DATABASE as CHECKPOINT_DATABASE, IdbCheckpointStore } from '../../src/train/checkpoint-idb.ts';
import { DEFAULT_WALLET_NAME, IdbWalletStore } from '../../src/wallet/keystore-idb.ts';
import { MIN_PASSWORD_CHARS, WalletSecret, decryptWallet, encryptWallet, newPasswordProblem } from '../../src/wallet/keystore.ts';
import { WalletError, cryptoReady, type Hotkey } from '../../src/wallet/keys.ts';
import { WalletInUseError, toWireError } from './errors.ts';
import { fetchHttpClient } from './http.ts';
import { trainingMemory } from './memory.ts';
import { type EngineCalls, type EngineEvent, type GpuReport, type Reply, type Request } from './messages.ts';
import { readStanding } from './rewards.ts';
import { rtcFromPage } from './rtc-worker.ts';
import { ContributionSession } from './session.ts';
import { GpuThrottle } from './throttle.ts';

interface WorkerScope {
  postMessage(msg: unknown): void;
  addEventListener(type: 'message', fn: (ev: MessageEvent) => void): void;
}
const scope = globalThis as unknown as WorkerScope;
const post = (r: Reply) => scope.postMessage(r);
const emit = (event: EngineEvent) => post({ event });

const wallets = new IdbWalletStore(indexedDB);
let key: Hotkey | null = null;
/** The stored wallet `key` came from: its checkpoints are its own (two tabs, two wallets, two checkpoints). */
let walletName = DEFAULT_WALLET_NAME;
let gpu: Promise<Gpu> | null = null;
const throttle = new GpuThrottle(undefined, (paused) => emit({ event: 'paused', paused }));
let session: ContributionSession | null = null;

function openGpuOnce(): Promise<Gpu> {
  gpu ??= openGpu(navigator.gpu).then((g) => {
    throttle.attach(g);
    return g;
  });
  gpu.catch(() => (gpu = null));
  return gpu;
}

const rtc = rtcFromPage(scope);
/** The page holds WebRTC connections for us (it says so first thing; false if it cannot). */
let rtcHosted = false;

type Handlers = { [K in keyof EngineCalls]: (arg: EngineCalls[K]['arg']) => Promise<EngineCalls[K]['result']> };

const handlers: Handlers = {
  async listWallets() {
    const [list, busy] = await Promise.all([wallets.list(), contributingAddresses()]);
    return list.map((w) => ({ ...w, inUse: busy.has(w.address) }));
  },

  async generateMnemonic() {
    await cryptoReady();
    const secret = WalletSecret.generate();
    return { mnemonic: secret.revealMnemonic()!, address: secret.address };
  },

  async saveWallet({ mnemonic, password, overwrite, name = DEFAULT_WALLET_NAME }) {
    await cryptoReady();
    if (session) throw new WalletError('stop contributing before changing the wallet of this tab');
    if (newPasswordProblem(password)) throw new WalletError(`choose a password of at least ${MIN_PASSWORD_CHARS} characters: it encrypts the wallet in this browser`);
    const secret = WalletSecret.fromMnemonic(mnemonic);
    await wallets.save(encryptWallet(secret, password), name, { overwrite });
    key = secret.key;
    walletName = name;
    return { name, address: secret.address };
  },

  async unlockWallet({ password, reveal, name = DEFAULT_WALLET_NAME }) {
    await cryptoReady();
    if (session) throw new WalletError('stop contributing before changing the wallet of this tab');
    const file = await wallets.load(name);
    if (!file) throw new WalletError(name === DEFAULT_WALLET_NAME ? 'there is no wallet in this browser yet: create one or import your mnemonic' : `there is no wallet '${name}' in this browser: choose another or create one`);
    const unlocked = decryptWallet(file, password, 'the wallet in this browser');
    key = unlocked.key;
    walletName = name;
    if (!reveal) return { name, address: unlocked.address };
    return { name, address: unlocked.address, secret: unlocked.secret.revealMnemonic() ?? unlocked.secret.revealSeed()! };
  },

  async useSecret({ secret }) {
    await cryptoReady();
    const s = /^0x[0-9a-f]{64}$/i.test(secret.trim()) ? WalletSecret.fromSeed(secret.trim()) : WalletSecret.fromMnemonic(secret);
    key = s.key;
    walletName = DEFAULT_WALLET_NAME;
    return { name: DEFAULT_WALLET_NAME, address: s.address };
  },

  async checkGpu({ model, batch, seq }) {
    const need = trainingMemory(model, batch, seq);
    const report: GpuReport = { available: false, adapter: '', isSoftware: false, maxBufferBytes: 0, needBytes: need.totalBytes, largestTensorBytes: need.largestTensorBytes, model, problem: null };
    try {
      const g = await openGpuOnce();
      report.available = true;
      report.adapter = adapterName(g.info);
      report.isSoftware = g.info.isSoftware;
      report.maxBufferBytes = g.maxBindingBytes;
      if (need.largestTensorBytes > g.maxBindingBytes) report.problem = `the ${model} model needs buffers larger than this GPU allows`;
    } catch (e) {
      report.problem = toWireError(e).message;
    }
    return report;
  },

  async start({ coordinator, dutyCycle, paused, holdEachStep }) {
    if (!key) throw new WalletError('unlock the wallet first');
    if (session) throw new Error('already contributing');
    const release = await holdWalletLock(key.address);
    let g: Gpu;
    try {
      g = await openGpuOnce();
    } catch (e) {
      release();
      throw e;
    }
    if (!rtcHosted) emit({ event: 'warning', text: 'this browser offers no WebRTC: no direct links to peers, every update goes through the coordinator' });
    throttle.setPercent(dutyCycle);
    throttle.resetShare();
    throttle.setPaused(paused);
    throttle.release();
    throttle.takeBusyMs();
    const k = key;
    const checkpoints = new IdbCheckpointStore(indexedDB, checkpointDatabase(walletName));
    const s = new ContributionSession({
      url: coordinator,
      emit,
      makeContributor: (onEvent) =>
        new Contributor({
          gpu: g,
          key: k,
          coordinator,
          openSocket: (u) => new WebSocket(u) as unknown as SocketLike,
          http: fetchHttpClient(),
          // Without WebRTC, links fail at once and every update comes through the coordinator.
          wrtc: rtcHosted ? rtc : undefined,
          store: checkpoints,
          onEvent: (e: ContributorEvent) => {
            onEvent(e);
            if (e.event !== 'step') return;
            emit({ event: 'gpu-share', share: throttle.share });
            // Held before the next step's first read-back: this runs before the contributor goes on.
            if (holdEachStep) {
              throttle.hold();
              emit({ event: 'held', busyMs: throttle.takeBusyMs() });
            }
          },
        }),
    });
    session = s;
    void s.done.finally(() => {
      if (session === s) session = null;
      release();
    });
    return { address: k.address };
  },

  async stop({ mode }) {
    const s = session;
    if (!s) return {};
    // A pause would hold the last step forever: release it so the contributor can stop.
    if (mode === 'now') {
      throttle.setPaused(false);
      throttle.release();
    }
    s.stop(mode);
    if (mode === 'now') await s.done;
    return {};
  },

  async setPaused({ paused }) {
    throttle.setPaused(paused);
    return {};
  },

  async readStanding({ coordinator }) {
    if (!key) throw new WalletError('unlock the wallet first');
    return readStanding(key, coordinator);
  },

  async releaseStep() {
    throttle.release();
    return {};
  },

  async setDutyCycle({ percent }) {
    throttle.setPercent(percent);
    return {};
  },
};

/** The default wallet keeps the database it always had; another wallet of this browser has its own. */
function checkpointDatabase(wallet: string): string {
  return wallet === DEFAULT_WALLET_NAME ? CHECKPOINT_DATABASE : `${CHECKPOINT_DATABASE}-${wallet}`;
}

const LOCK_PREFIX = 'tessera-contributor-';

/** Addresses whose wallet contributes from some tab of this browser now (their Web Locks are held). */
async function contributingAddresses(): Promise<Set<string>> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  const held = locks ? await locks.query().catch(() => ({ held: [] })) : { held: [] };
  return new Set((held.held ?? []).map((l) => l.name ?? '').filter((n) => n.startsWith(LOCK_PREFIX)).map((n) => n.slice(LOCK_PREFIX.length)));
}

/**
 * Holds this wallet's Web Lock while it contributes, so a second tab of the same browser
 * profile cannot join with the same hotkey (the coordinator would replace one connection by
 * the other, back and forth). Returns the release; throws WalletInUseError when it is held.
 */
async function holdWalletLock(address: string): Promise<() => void> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return () => {}; // no Web Locks here: nothing to hold
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const got = await new Promise<boolean>((resolve) => {
    void locks.request(`${LOCK_PREFIX}${address}`, { ifAvailable: true }, async (lock) => {
      resolve(lock !== null);
      if (lock) await released;
    });
  });
  if (!got) throw new WalletInUseError(`the wallet ${address} is already contributing in another tab of this browser`);
  return release;
}

scope.addEventListener('message', (ev: MessageEvent) => {
  const req = ev.data as Request | { rtc: unknown } | { rtcHost: boolean };
  if ('rtc' in req) return; // the RTC bridge's own traffic (rtc-worker.ts listens for it)
  if ('rtcHost' in req) {
    rtcHosted = req.rtcHost === true;
    return;
  }
  const handler = handlers[req.call] as (arg: unknown) => Promise<unknown>;
  if (!handler) return post({ id: req.id, ok: false, error: { kind: 'other', message: `no engine call '${String(req.call)}'` } });
  handler(req.arg).then(
    (result) => post({ id: req.id, ok: true, result }),
    (e: unknown) => post({ id: req.id, ok: false, error: toWireError(e) }),
  );
});
