// SHA-256, as fast as the environment allows: WebCrypto's native digest where it exists
// (Node, workers, pages on https or localhost; ~1 GB/s), else a JavaScript one (~30 MB/s):
// the same bytes either way. Checkpoint pieces and the weights fingerprint hash gigabytes;
// it lives with the keys because it needs the same crypto library.
import { sha256AsU8a } from '@polkadot/util-crypto';

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  const subtle = (globalThis as { crypto?: { subtle?: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> } } }).crypto?.subtle;
  if (subtle && !(typeof SharedArrayBuffer !== 'undefined' && bytes.buffer instanceof SharedArrayBuffer)) return new Uint8Array(await subtle.digest('SHA-256', bytes));
  return sha256AsU8a(bytes);
}
