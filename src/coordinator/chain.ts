// The optional chain side: a subtensor node reached through @polkadot/api. The validator sets
// weights on its subnet from an epoch's reward shares (subtensorModule.setWeights, signed by
// its hotkey); a contributor reads its registration, incentive and emission. SubtensorChain
// takes an ApiPromise-like object, so its call sequence is testable with a recording double;
// connectSubtensor is the one place that builds a real ApiPromise. Without a chain the
// ledger is the source of truth; with one, the ledger still is for Tessera's own rewards.
import type { Signer } from '@polkadot/types/types';
import { encodeAddress } from '@polkadot/util-crypto';
import { SS58_PREFIX, type Hotkey } from '../wallet/keys.ts';
import { HotkeySigner } from './chain-signer.ts';
import { U16_MAX, sharesToChainWeights, type ChainOptions, type SubnetView } from './chain-weights.ts';

/** The chain cannot be reached or does not look like subtensor. */
export class ChainError extends Error {
  override name = 'ChainError';
}

interface CodecLike {
  toString(): string;
}
interface OptionLike {
  isSome: boolean;
  unwrap(): CodecLike;
}
interface AccountLike {
  toU8a(): Uint8Array;
}
interface StorageKeyLike {
  args: CodecLike[];
}
/** The parts of @polkadot/api's ISubmittableResult read here. */
export interface TxResultLike {
  status: { type: string; isInBlock: boolean; isFinalized: boolean; isInvalid: boolean; isDropped: boolean; isUsurped: boolean; asInBlock: CodecLike; asFinalized: CodecLike };
  dispatchError?: { isModule: boolean; asModule: unknown; toString(): string };
}
export interface SubmittableLike {
  signAndSend(address: string, options: { signer: Signer; nonce: number }, onResult: (result: TxResultLike) => void): Promise<() => void>;
}

/**
 * The subset of ApiPromise used here. The subtensor pallet is not in @polkadot/api's built-in
 * type augmentation, so connectSubtensor checks the pallet is there and narrows to this.
 */
export interface SubtensorApiLike {
  registry: { findMetaError(error: never): { section: string; name: string; docs: string[] } };
  query: {
    subtensorModule: {
      networksAdded(netuid: number): Promise<CodecLike>;
      keys: { entries(netuid: number): Promise<[StorageKeyLike, AccountLike][]> };
      uids(netuid: number, hotkey: string): Promise<OptionLike>;
      incentive(netuid: number): Promise<CodecLike[]>;
      emission(netuid: number): Promise<CodecLike[]>;
      minAllowedWeights(netuid: number): Promise<CodecLike>;
      maxWeightsLimit(netuid: number): Promise<CodecLike>;
      weightsVersionKey(netuid: number): Promise<CodecLike>;
      commitRevealWeightsEnabled(netuid: number): Promise<CodecLike>;
      validatorPermit(netuid: number): Promise<CodecLike[]>;
      weightsSetRateLimit(netuid: number): Promise<CodecLike>;
      lastUpdate(netuid: number): Promise<CodecLike[]>;
    };
    system: { number(): Promise<CodecLike> };
  };
  tx: { subtensorModule: { setWeights(netuid: number, dests: number[], weights: number[], versionKey: bigint): SubmittableLike } };
}

export interface Subnet extends SubnetView {
  netuid: number;
  versionKey: bigint;
  commitReveal: boolean;
}

export type SetWeightsResult =
  | { status: 'set'; blockHash: string; dests: number[]; weights: number[]; versionKey: bigint; unregistered: string[] }
  | { status: 'skipped'; reason: string; unregistered: string[] }
  | { status: 'failed'; reason: string; dests: number[]; weights: number[]; unregistered: string[] };

export type NeuronStanding =
  | { registered: false; netuid: number; hotkey: string }
  | {
      registered: true;
      netuid: number;
      hotkey: string;
      uid: number;
      /** The chain's u16 incentive as a fraction of 1 (its share of the miners' emission). */
      incentive: number;
      /** Emission in the last epoch, in the subnet token's smallest unit (rao of alpha). */
      emission: bigint;
    };

const flag = (c: CodecLike) => c.toString() === 'true';
const int = (c: CodecLike) => Number(c.toString());

export class SubtensorChain {
  constructor(
    private readonly api: SubtensorApiLike,
    private readonly options: ChainOptions & { timeoutMs?: number },
    /** The validator's hotkey address and its signer; null for a read-only client. */
    private readonly signer: { address: string; signer: Signer } | null = null,
  ) {}

  get netuid(): number {
    return this.options.netuid;
  }

  /** The subnet's registered hotkeys and weight-setting rules. */
  async subnet(): Promise<Subnet> {
    const { netuid } = this.options;
    const q = this.api.query.subtensorModule;
    if (!flag(await q.networksAdded(netuid))) throw new ChainError(`netuid ${netuid} is not a subnet on this chain: check --netuid`);
    const entries = await q.keys.entries(netuid);
    const hotkeys: string[] = [];
    for (const [key, account] of entries) hotkeys[int(key.args[1])] = encodeAddress(account.toU8a(), SS58_PREFIX);
    const [minAllowed, maxLimit, versionKey, commitReveal] = await Promise.all([
      q.minAllowedWeights(netuid), q.maxWeightsLimit(netuid), q.weightsVersionKey(netuid), q.commitRevealWeightsEnabled(netuid),
    ]);
    return {
      netuid,
      // Uids are dense in 0..n-1; a hole would be a chain bug, kept as an unusable slot.
      hotkeys: Array.from(hotkeys, (h) => h ?? ''),
      minAllowedWeights: int(minAllowed),
      maxWeightLimit: int(maxLimit) / U16_MAX,
      versionKey: BigInt(versionKey.toString()),
      commitReveal: flag(commitReveal),
    };
  }

  /** Sets the validator's weights from reward shares by ss58 address (an epoch's rewards). */
  async setWeights(shares: Readonly<Record<string, number>>): Promise<SetWeightsResult> {
    if (!this.signer) throw new Error('this chain client has no validator hotkey to sign with');
    const { netuid } = this.options;
    const subnet = await this.subnet();
    const { dests, weights, unregistered } = sharesToChainWeights(shares, subnet);
    if (!subnet.hotkeys.includes(this.signer.address)) {
      return { status: 'skipped', reason: `the validator hotkey ${this.signer.address} is not registered on netuid ${netuid}: register it on the subnet (btcli subnet register) and stake to it`, unregistered };
    }
    if (subnet.commitReveal) {
      return { status: 'skipped', reason: `netuid ${netuid} has commit-reveal weights enabled; Tessera sets weights only with set_weights (commit-reveal is not built)`, unregistered };
    }
    if (dests.length === 0) return { status: 'skipped', reason: 'no registered contributor holds a share this epoch', unregistered };
    const versionKey = this.options.versionKey ?? subnet.versionKey;
    // What the chain would refuse anyway, said plainly (its own error is a bare code).
    if (versionKey < subnet.versionKey) {
      return { status: 'skipped', reason: `version key ${versionKey} is below netuid ${netuid}'s WeightsVersionKey ${subnet.versionKey}, which the chain refuses: raise --version-key or leave it out`, unregistered };
    }
    const selfUid = subnet.hotkeys.indexOf(this.signer.address);
    const q = this.api.query.subtensorModule;
    const [permits, rateLimit, lastUpdate, now] = await Promise.all([q.validatorPermit(netuid), q.weightsSetRateLimit(netuid), q.lastUpdate(netuid), this.api.query.system.number()]);
    if (!(permits[selfUid] && flag(permits[selfUid]))) {
      return { status: 'skipped', reason: `the validator hotkey (uid ${selfUid}) has no validator permit on netuid ${netuid}: the chain gives permits to the most-staked neurons, so stake to it`, unregistered };
    }
    const last = lastUpdate[selfUid] ? BigInt(lastUpdate[selfUid].toString()) : 0n;
    const limit = BigInt(rateLimit.toString());
    const block = BigInt(now.toString());
    if (last > 0n && block - last < limit) {
      return { status: 'skipped', reason: `weights were set at block ${last} and netuid ${netuid} allows one set per ${limit} blocks (now ${block}, next at ${last + limit}): make epochs longer (epochRounds × roundSeconds) than that`, unregistered };
    }
    const tx = this.api.tx.subtensorModule.setWeights(netuid, dests, weights, versionKey);
    const outcome = await this.submit(tx);
    return outcome.ok
      ? { status: 'set', blockHash: outcome.blockHash, dests, weights, versionKey, unregistered }
      : { status: 'failed', reason: outcome.reason, dests, weights, unregistered };
  }

  /** A hotkey's registration, incentive and emission on the subnet. */
  async neuron(hotkey: string): Promise<NeuronStanding> {
    const { netuid } = this.options;
    const q = this.api.query.subtensorModule;
    const uid = await q.uids(netuid, hotkey);
    if (!uid.isSome) return { registered: false, netuid, hotkey };
    const n = int(uid.unwrap());
    const [incentive, emission] = await Promise.all([q.incentive(netuid), q.emission(netuid)]);
    return {
      registered: true,
      netuid,
      hotkey,
      uid: n,
      incentive: incentive[n] ? int(incentive[n]) / U16_MAX : 0,
      emission: emission[n] ? BigInt(emission[n].toString()) : 0n,
    };
  }

  /** Signs and sends; resolves when the transaction is in a block, failed, or timed out. */
  private submit(tx: SubmittableLike): Promise<{ ok: true; blockHash: string } | { ok: false; reason: string }> {
    const { address, signer } = this.signer!;
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    return new Promise((resolve) => {
      let done = false;
      let unsubscribe: (() => void) | null = null;
      const finish = (r: { ok: true; blockHash: string } | { ok: false; reason: string }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe?.();
        resolve(r);
      };
      const timer = setTimeout(() => finish({ ok: false, reason: `not in a block within ${timeoutMs / 1000} s` }), timeoutMs);
      tx.signAndSend(address, { signer, nonce: -1 }, (result) => {
        const { status, dispatchError } = result;
        if (dispatchError) finish({ ok: false, reason: this.describe(dispatchError) });
        else if (status.isInBlock) finish({ ok: true, blockHash: status.asInBlock.toString() });
        else if (status.isFinalized) finish({ ok: true, blockHash: status.asFinalized.toString() });
        else if (status.isInvalid || status.isDropped || status.isUsurped) finish({ ok: false, reason: `the transaction was ${status.type.toLowerCase()} by the node` });
      }).then(
        (unsub) => {
          unsubscribe = unsub;
          if (done) unsub();
        },
        (e: Error) => finish({ ok: false, reason: `the node refused the transaction: ${e.message}` }),
      );
    });
  }

  private describe(error: NonNullable<TxResultLike['dispatchError']>): string {
    if (!error.isModule) return `the chain refused it: ${error.toString()}`;
    try {
      const meta = this.api.registry.findMetaError(error.asModule as never);
      return `the chain refused it: ${meta.section}.${meta.name}${meta.docs.length ? ` (${meta.docs.join(' ').trim()})` : ''}`;
    } catch {
      return `the chain refused it: ${error.toString()}`;
    }
  }
}

/**
 * Connects to a subtensor node: a real ApiPromise over a WebSocket (never run against a live
 * chain here — see the README). Fails with a ChainError, saying what to check, when the node
 * cannot be reached within `timeoutMs` or has no SubtensorModule.
 */
export async function connectSubtensor(
  options: ChainOptions & { timeoutMs?: number },
  hotkey: Hotkey | null,
): Promise<{ chain: SubtensorChain; disconnect: () => Promise<void> }> {
  // Loaded only when a chain is configured: @polkadot/api is large.
  const { ApiPromise, WsProvider } = await import('@polkadot/api');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const provider = new WsProvider(options.endpoint, 2_500, {}, timeoutMs);
  const api = new ApiPromise({ provider, noInitWarn: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      api.isReadyOrError,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    await api.disconnect().catch(() => undefined);
    throw new ChainError(`cannot reach a subtensor node at ${options.endpoint}: ${(e as Error).message ?? e}; check the URL (--subtensor) and that the node is up`);
  } finally {
    clearTimeout(timer);
  }
  const query = api.query as unknown as Partial<SubtensorApiLike['query']>;
  const tx = api.tx as unknown as Partial<SubtensorApiLike['tx']>;
  if (!query.subtensorModule?.keys || !tx.subtensorModule?.setWeights) {
    await api.disconnect();
    throw new ChainError(`the node at ${options.endpoint} has no SubtensorModule: is it a Bittensor (subtensor) node?`);
  }
  const narrowed = api as unknown as SubtensorApiLike;
  const signer = hotkey ? { address: hotkey.address, signer: new HotkeySigner(api.registry, hotkey) } : null;
  return { chain: new SubtensorChain(narrowed, options, signer), disconnect: () => api.disconnect() };
}
