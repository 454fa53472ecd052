// Page of contributor.test.ts: a whole contributor (src/net/contributor.ts) in a browser tab,
// as the product's browser target runs it: WebGPU from navigator.gpu, the page's WebSocket to
// the coordinator, fetch for the data shard, updates and checkpoints, the page's own
// RTCPeerConnection for the mesh (no `wrtc`: simple-peer finds the browser's), checkpoints in
// IndexedDB. Its events go to the test over the bridge.
//
// The Contributor runs on the page's main thread, not in a Web Worker as the engine does in
// browser-engine.test.ts: RTCPeerConnection does not exist inside workers, and the mesh's
// links must live beside the training loop that sends on them. WebGPU is asynchronous, so
// training here does not hold the thread that WebRTC and the coordinator socket need.
import { fetchHttpClient } from '../../../renderer/engine/http.ts';
import { Contributor, type ContributorEvent, type StopMode } from '../../../src/contributor/contributor.ts';
import type { SocketLike } from '../../../src/net/signaling.ts';
import { openGpu } from '../../../src/gpu/device.ts';
import type { Gpu } from '../../../src/gpu/gpu.ts';
import { IdbCheckpointStore } from '../../../src/train/checkpoint-idb.ts';
import { Hotkey, cryptoReady } from '../../../src/wallet/keys.ts';
import { bridge } from './bridge.ts';

/** Rethrown from a task of its own, so the test sees an uncaught page error at once. */
const fatal = (e: unknown) =>
  setTimeout(() => {
    throw e;
  });

let contributor: Contributor | null = null;
let gpu: Gpu | null = null;
let finished: Promise<void> = Promise.resolve();

bridge.handle('start', async (msg) => {
  if (contributor) throw new Error('the contributor is already running');
  const coordinator = msg.coordinator as string;
  await cryptoReady();
  const { key } = Hotkey.generate();
  gpu = await openGpu(navigator.gpu);
  const c = new Contributor({
    gpu,
    key,
    coordinator,
    openSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    http: fetchHttpClient(),
    store: new IdbCheckpointStore(indexedDB),
    onEvent: (e: ContributorEvent) => void bridge.send({ type: 'contributor-event', e }),
  });
  contributor = c;
  finished = c.run().then(
    () => void bridge.send({ type: 'contributor-ended' }),
    (e: unknown) => {
      fatal(e);
    },
  );
  return { address: key.address, adapter: gpu.info.description || gpu.info.vendor, isSoftware: gpu.info.isSoftware };
});

bridge.handle('stop', async (msg) => {
  contributor?.stop((msg.mode as StopMode | undefined) ?? 'now');
  await finished;
  contributor = null;
  gpu?.destroy();
  gpu = null;
  return {};
});

void bridge.send({ type: 'ready' });
