// Signs subtensor extrinsics with a Tessera hotkey. The hotkey never hands out its secret, so
// instead of a keyring pair @polkadot/api gets a Signer: the payload is encoded by the chain's
// own registry and signed by ExtrinsicPayload.sign — the library's rule (blake2-256 of payloads
// over 256 bytes, a type byte before the signature) — through a pair whose sign() is the hotkey's.
import type { SignOptions } from '@polkadot/keyring/types';
import type { IKeyringPair, Registry, Signer, SignerPayloadJSON, SignerResult } from '@polkadot/types/types';
import { addressPublicKey, type Hotkey } from '../wallet/keys.ts';

/** MultiSignature's variant byte for sr25519. */
const SR25519_TYPE = 1;

export class HotkeySigner implements Signer {
  private nextId = 0;
  private readonly pair: IKeyringPair;

  constructor(
    private readonly registry: Registry,
    private readonly hotkey: Hotkey,
  ) {
    this.pair = {
      address: hotkey.address,
      addressRaw: hotkey.publicKey,
      publicKey: hotkey.publicKey,
      sign: (data: Uint8Array, options?: SignOptions) => {
        const signature = hotkey.sign(data);
        if (!options?.withType) return signature;
        const typed = new Uint8Array(1 + signature.length);
        typed[0] = SR25519_TYPE;
        typed.set(signature, 1);
        return typed;
      },
    };
  }

  async signPayload(payload: SignerPayloadJSON): Promise<SignerResult> {
    const key = addressPublicKey(payload.address);
    if (!key || key.some((b, i) => b !== this.hotkey.publicKey[i])) {
      throw new Error(`asked to sign for ${payload.address}, but this signer holds ${this.hotkey.address}`);
    }
    const extrinsicPayload = this.registry.createType('ExtrinsicPayload', payload, { version: payload.version });
    const { signature } = extrinsicPayload.sign(this.pair);
    return { id: ++this.nextId, signature };
  }
}
