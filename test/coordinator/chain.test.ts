// The chain side's adapter and signer. No subtensor node is reachable here, so:
// - HotkeySigner signs real extrinsic payloads of a real runtime (the substrate node's static
//   metadata shipped with @polkadot/types-support), checked with an independent sr25519 verify;
// - SubtensorChain runs against a recording double of ApiPromise: this tests OUR call sequence
//   and how we read the answers (storage names, arguments, u16/u64 decoding, status handling),
//   not that a live subtensor answers that way;
// - connectSubtensor is tried against a local port where nothing listens.
import { beforeAll, describe, expect, it } from 'vitest';
import { Metadata, TypeRegistry } from '@polkadot/types';
import { expandMetadata } from '@polkadot/types/metadata';
import type { Signer } from '@polkadot/types/types';
import substrateMetadata from '@polkadot/types-support/metadata/static-substrate';
import { blake2AsU8a, decodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import { HotkeySigner } from '../../src/coordinator/chain-signer.ts';
import { ChainError, SubtensorChain, connectSubtensor, type SubtensorApiLike, type TxResultLike } from '../../src/coordinator/chain.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
let alice: Hotkey;
let bob: Hotkey;
beforeAll(async () => {
  await cryptoReady();
  alice = Hotkey.fromMnemonic(DEV, '//Alice');
  bob = Hotkey.fromMnemonic(DEV, '//Bob');
});

describe('HotkeySigner', () => {
  const registry = new TypeRegistry();
  const metadata = new Metadata(registry, substrateMetadata);
  registry.setMetadata(metadata);
  const tx = expandMetadata(registry, metadata).tx;

  function payloadFor(address: string, remarkBytes: number) {
    const method = tx.system.remark(`0x${'ab'.repeat(remarkBytes)}`);
    const payload = registry.createType('SignerPayload', {
      address, blockHash: `0x${'11'.repeat(32)}`, blockNumber: 5, genesisHash: `0x${'22'.repeat(32)}`, method: method.toHex(),
      nonce: 3, runtimeVersion: { specVersion: 100, transactionVersion: 2 }, signedExtensions: registry.signedExtensions, version: 4,
    }).toPayload();
    return { payload, method };
  }

  it.each([[16, 'signed as is'], [400, 'over 256 bytes: its blake2-256 is signed']])('signs a %i-byte remark payload (%s), verifiable with sr25519', async (n) => {
    const { payload, method } = payloadFor(alice.address, n);
    const { signature } = await new HotkeySigner(registry, alice).signPayload(payload);
    const bytes = Uint8Array.from(Buffer.from(signature.slice(2), 'hex'));
    expect(bytes.length).toBe(65);
    expect(bytes[0]).toBe(1); // MultiSignature::Sr25519
    const encoded = registry.createType('ExtrinsicPayload', payload, { version: 4 }).toU8a({ method: true });
    expect(encoded.length > 256).toBe(n > 256);
    const signed = encoded.length > 256 ? blake2AsU8a(encoded) : encoded;
    expect(sr25519Verify(signed, bytes.slice(1), decodeAddress(alice.address))).toBe(true);
    expect(sr25519Verify(signed, bytes.slice(1), decodeAddress(bob.address))).toBe(false);
    // The extrinsic @polkadot/api would send carries it.
    const extrinsic = registry.createType('Extrinsic', method);
    extrinsic.addSignature(alice.address, signature, payload);
    expect(extrinsic.isSigned).toBe(true);
    expect(extrinsic.signer.toString()).toBe(alice.address);
  });

  it('refuses to sign for another address', async () => {
    await expect(new HotkeySigner(registry, alice).signPayload(payloadFor(bob.address, 4).payload)).rejects.toThrow(/holds 5Grwva/);
  });
});

/** A codec-like value: what @polkadot/api returns, as far as SubtensorChain reads it. */
const codec = (v: string | number | bigint | boolean) => ({ toString: () => String(v) });

class RecordingApi {
  readonly calls: string[] = [];
  sent: { address: string; nonce: number; signer: Signer } | null = null;
  /** What the node reports after signAndSend; each is delivered in turn. */
  results: TxResultLike[] = [];
  refuse: Error | null = null;

  constructor(
    private readonly state: {
      hotkeys: Hotkey[]; added?: boolean; commitReveal?: boolean; minAllowed?: number; maxLimit?: number; versionKey?: bigint; incentive?: number[]; emission?: bigint[];
      permits?: boolean[]; rateLimit?: number; lastUpdate?: number[]; block?: number;
    },
  ) {}

  private record<T>(name: string, args: unknown[], value: T): Promise<T> {
    this.calls.push(`${name}(${args.map(String).join(', ')})`);
    return Promise.resolve(value);
  }

  readonly registry = { findMetaError: () => ({ section: 'subtensorModule', name: 'SettingWeightsTooFast', docs: ['Setting weights too fast.'] }) };

  readonly query = {
    subtensorModule: {
      networksAdded: (n: number) => this.record('networksAdded', [n], codec(this.state.added ?? true)),
      keys: { entries: (n: number) => this.record('keys.entries', [n], this.state.hotkeys.map((k, uid) => [{ args: [codec(n), codec(uid)] }, { toU8a: () => k.publicKey }] as [{ args: { toString(): string }[] }, { toU8a(): Uint8Array }])) },
      uids: (n: number, hotkey: string) => {
        const uid = this.state.hotkeys.findIndex((k) => k.address === hotkey);
        return this.record('uids', [n, hotkey], { isSome: uid >= 0, unwrap: () => codec(uid) });
      },
      incentive: (n: number) => this.record('incentive', [n], (this.state.incentive ?? []).map(codec)),
      emission: (n: number) => this.record('emission', [n], (this.state.emission ?? []).map(codec)),
      minAllowedWeights: (n: number) => this.record('minAllowedWeights', [n], codec(this.state.minAllowed ?? 1)),
      maxWeightsLimit: (n: number) => this.record('maxWeightsLimit', [n], codec(this.state.maxLimit ?? 65535)),
      weightsVersionKey: (n: number) => this.record('weightsVersionKey', [n], codec(this.state.versionKey ?? 7n)),
      commitRevealWeightsEnabled: (n: number) => this.record('commitRevealWeightsEnabled', [n], codec(this.state.commitReveal ?? false)),
      validatorPermit: (n: number) => this.record('validatorPermit', [n], (this.state.permits ?? this.state.hotkeys.map(() => true)).map(codec)),
      weightsSetRateLimit: (n: number) => this.record('weightsSetRateLimit', [n], codec(this.state.rateLimit ?? 100)),
      lastUpdate: (n: number) => this.record('lastUpdate', [n], (this.state.lastUpdate ?? this.state.hotkeys.map(() => 0)).map(codec)),
    },
    system: { number: () => this.record('system.number', [], codec(this.state.block ?? 5000)) },
  };

  readonly tx = {
    subtensorModule: {
      setWeights: (netuid: number, dests: number[], weights: number[], versionKey: bigint) => {
        this.calls.push(`tx.setWeights(${netuid}, [${dests}], [${weights}], ${versionKey})`);
        return {
          signAndSend: (address: string, options: { signer: Signer; nonce: number }, onResult: (r: TxResultLike) => void) => {
            this.calls.push(`signAndSend(${address})`);
            this.sent = { address, ...options };
            if (this.refuse) return Promise.reject(this.refuse);
            setTimeout(() => this.results.forEach(onResult), 1);
            return Promise.resolve(() => this.calls.push('unsubscribe'));
          },
        };
      },
    },
  };
}

const status = (type: string, hash = '0xbeef'): TxResultLike['status'] => ({
  type, isInBlock: type === 'InBlock', isFinalized: type === 'Finalized', isInvalid: type === 'Invalid', isDropped: type === 'Dropped', isUsurped: type === 'Usurped',
  asInBlock: codec(hash), asFinalized: codec(hash),
});

describe('SubtensorChain (against a recording double: our call sequence, not the chain)', () => {
  const signerOf = (key: Hotkey) => ({ address: key.address, signer: { signPayload: async () => ({ id: 1, signature: '0x00' as const }) } as Signer });

  it('reads the subnet, maps shares to uids and sends setWeights signed by the validator', async () => {
    const contributor = Hotkey.generate().key;
    const unregistered = Hotkey.generate().key;
    const api = new RecordingApi({ hotkeys: [alice, bob, contributor], versionKey: 9n });
    api.results = [{ status: status('Ready') }, { status: status('InBlock', '0xabc') }];
    const chain = new SubtensorChain(api as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3 }, signerOf(alice));
    // Shares 0.5/0.25 → uids 1 and 2 at 65535 and 32768 (see chain-weights.test.ts).
    const result = await chain.setWeights({ [bob.address]: 0.5, [contributor.address]: 0.25, [unregistered.address]: 0.25 });
    expect(result).toEqual({ status: 'set', blockHash: '0xabc', dests: [1, 2], weights: [65535, 32768], versionKey: 9n, unregistered: [unregistered.address] });
    expect(api.calls).toEqual([
      'networksAdded(3)', 'keys.entries(3)', 'minAllowedWeights(3)', 'maxWeightsLimit(3)', 'weightsVersionKey(3)', 'commitRevealWeightsEnabled(3)',
      'validatorPermit(3)', 'weightsSetRateLimit(3)', 'lastUpdate(3)', 'system.number()',
      'tx.setWeights(3, [1,2], [65535,32768], 9)', `signAndSend(${alice.address})`, 'unsubscribe',
    ]);
    expect(api.sent!.nonce).toBe(-1); // the node's next nonce
  });

  it('uses a configured version key, and the subnet max_weight_limit', async () => {
    // Last set 100 blocks ago with a limit of 100: allowed again.
    const api = new RecordingApi({ hotkeys: [alice, bob], maxLimit: 39321 /* 0.6 */, lastUpdate: [4900, 0], rateLimit: 100, block: 5000 });
    api.results = [{ status: status('InBlock') }];
    const chain = new SubtensorChain(api as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3, versionKey: 42n }, signerOf(alice));
    const result = await chain.setWeights({ [alice.address]: 0.9, [bob.address]: 0.1 });
    expect(result.status).toBe('set');
    // n·limit = 1.2 > 1: alice is capped; without the cap bob would get 0.1/0.9·65535 = 7282.
    expect(api.calls).toContain('tx.setWeights(3, [0,1], [65535,43690], 42)');
  });

  it('skips, saying why, when the validator is unregistered, commit-reveal is on or nobody registered earned', async () => {
    const stranger = Hotkey.generate().key;
    const unregisteredValidator = new SubtensorChain(new RecordingApi({ hotkeys: [bob] }) as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3 }, signerOf(alice));
    expect(await unregisteredValidator.setWeights({ [bob.address]: 1 })).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/validator hotkey 5Grwva.* is not registered on netuid 3/) });
    const commitReveal = new SubtensorChain(new RecordingApi({ hotkeys: [alice, bob], commitReveal: true }) as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3 }, signerOf(alice));
    expect(await commitReveal.setWeights({ [bob.address]: 1 })).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/commit-reveal/) });
    const api = new RecordingApi({ hotkeys: [alice, bob] });
    const nobody = new SubtensorChain(api as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3 }, signerOf(alice));
    expect(await nobody.setWeights({ [stranger.address]: 1 })).toEqual({ status: 'skipped', reason: 'no registered contributor holds a share this epoch', unregistered: [stranger.address] });
    expect(api.calls.some((c) => c.startsWith('tx.'))).toBe(false);
    const skip = async (state: ConstructorParameters<typeof RecordingApi>[0], versionKey?: bigint) => {
      const a = new RecordingApi(state);
      const result = await new SubtensorChain(a as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3, versionKey }, signerOf(alice)).setWeights({ [bob.address]: 1 });
      expect(a.calls.some((c) => c.startsWith('tx.'))).toBe(false);
      return result;
    };
    expect(await skip({ hotkeys: [alice, bob], versionKey: 5n }, 4n)).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/version key 4 is below netuid 3's WeightsVersionKey 5/) });
    expect(await skip({ hotkeys: [alice, bob], permits: [false, true] })).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/uid 0\) has no validator permit/) });
    // Set at block 4950, one set per 100 blocks, now 5000: the next is at 5050.
    expect(await skip({ hotkeys: [alice, bob], lastUpdate: [4950, 0], rateLimit: 100, block: 5000 })).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/set at block 4950 .* one set per 100 blocks \(now 5000, next at 5050\)/) });
    const missing = new SubtensorChain(new RecordingApi({ hotkeys: [], added: false }) as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 99 }, signerOf(alice));
    await expect(missing.setWeights({})).rejects.toThrow(/netuid 99 is not a subnet/);
  });

  it('reports a dispatch error by its pallet name, a refusal, a dropped transaction and a timeout', async () => {
    const run = async (setup: (api: RecordingApi) => void, timeoutMs = 5000) => {
      const api = new RecordingApi({ hotkeys: [alice, bob] });
      setup(api);
      return new SubtensorChain(api as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 3, timeoutMs }, signerOf(alice)).setWeights({ [bob.address]: 1 });
    };
    const moduleError = { isModule: true, asModule: {}, toString: () => '{"module":{"index":7,"error":"0x1c000000"}}' };
    expect(await run((a) => (a.results = [{ status: status('InBlock'), dispatchError: moduleError }]))).toMatchObject({ status: 'failed', reason: 'the chain refused it: subtensorModule.SettingWeightsTooFast (Setting weights too fast.)', dests: [1], weights: [65535] });
    expect(await run((a) => (a.refuse = new Error('1010: Invalid Transaction: Custom error: 6')))).toMatchObject({ status: 'failed', reason: 'the node refused the transaction: 1010: Invalid Transaction: Custom error: 6' });
    expect(await run((a) => (a.results = [{ status: status('Dropped') }]))).toMatchObject({ status: 'failed', reason: 'the transaction was dropped by the node' });
    expect(await run((a) => (a.results = [{ status: status('Ready') }]), 50)).toMatchObject({ status: 'failed', reason: 'not in a block within 0.05 s' });
  });

  it("reads a contributor's registration, incentive and emission by uid", async () => {
    const api = new RecordingApi({ hotkeys: [alice, bob], incentive: [0, 32768], emission: [0n, 12_345_678_901_234_567_890n] });
    const chain = new SubtensorChain(api as unknown as SubtensorApiLike, { endpoint: 'ws://x', netuid: 5 });
    expect(await chain.neuron(bob.address)).toEqual({ registered: true, netuid: 5, hotkey: bob.address, uid: 1, incentive: 32768 / 65535, emission: 12_345_678_901_234_567_890n });
    const stranger = Hotkey.generate().key.address;
    expect(await chain.neuron(stranger)).toEqual({ registered: false, netuid: 5, hotkey: stranger });
    expect(api.calls).toEqual([`uids(5, ${bob.address})`, 'incentive(5)', 'emission(5)', `uids(5, ${stranger})`]);
    await expect(chain.setWeights({})).rejects.toThrow(/no validator hotkey/);
  });
});

describe('connectSubtensor', () => {
  it('fails with a ChainError saying what to check when nothing answers', async () => {
    const error = await connectSubtensor({ endpoint: 'ws://127.0.0.1:9', netuid: 3, timeoutMs: 1500 }, null).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChainError);
    expect((error as Error).message).toMatch(/cannot reach a subtensor node at ws:\/\/127\.0\.0\.1:9.*check the URL \(--subtensor\)/);
  }, 10_000);
});
