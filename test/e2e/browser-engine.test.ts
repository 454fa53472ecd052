// Proof that the engine runs in a real browser: headless Chromium, WebGPU on SwiftShader in a
// Web Worker, the engine's matmul against its float64 reference, and a simple-peer WebRTC
// connection between the page and a Node peer carrying 1 MiB each way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type SimplePeer from 'simple-peer';
import {
  browserSkipReason,
  launchChromium,
  nodePeer,
  openPage,
  relaySignals,
  servePage,
  type Browser,
  type BridgeMessage,
  type StaticServer,
  type TestPage,
} from './harness.ts';
import { Reassembler, chunks, firstDifference, patternBytes } from './pages/bytes.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const skip = browserSkipReason();
if (skip) console.warn(skip);

const MiB = 1 << 20;
/** Under Chromium's 256 KiB max-message-size; SCTP messages beyond the remote's limit fail. */
const CHUNK = 64 * 1024;

describe.skipIf(skip !== null)('the engine in headless Chromium', () => {
  let server: StaticServer;
  let browser: Browser;
  let tab: TestPage;
  const t0 = performance.now();

  beforeAll(async () => {
    const [s, b] = await Promise.all([
      servePage({ page: 'test/e2e/pages/engine-page.ts', workers: { 'engine-worker': 'test/e2e/pages/engine-worker.ts' } }),
      launchChromium(),
    ]);
    server = s;
    browser = b;
    tab = await openPage(browser, `${server.url}/`, { prefix: '[engine-page]' });
    await tab.bridge.next('ready');
    console.log(`bundled, served, launched and loaded in ${(performance.now() - t0).toFixed(0)} ms`);
  });

  afterAll(async () => {
    await tab?.close();
    await browser?.close();
    await server?.close();
    // End the Node peer's libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
    expect(await releaseWebRtc()).toEqual([]);
  });

  it('opens the Gpu on navigator.gpu in a worker: SwiftShader, a software adapter', async () => {
    await tab.bridge.send({ type: 'adapter' });
    const info = await tab.bridge.next('adapter:done');
    console.log('adapter in the page:', JSON.stringify(info));
    expect(info.inWorker).toBe(true);
    expect(info.isSoftware).toBe(true);
    expect(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`).toMatch(/swiftshader/i);
  });

  it('runs the engine matmul (33×65×17) and matches the float64 reference', async () => {
    await tab.bridge.send({ type: 'matmul', M: 33, K: 65, N: 17, seed: 7 });
    const r = await tab.bridge.next<BridgeMessage & { rel: number; elements: number; ms: number }>('matmul:done');
    console.log(`matmul M=33 K=65 N=17 in the worker: rel ${r.rel.toExponential(2)} over ${r.elements} outputs, ${r.ms.toFixed(1)} ms`);
    expect(r.elements).toBe(33 * 17);
    expect(r.rel).toBeLessThan(1e-5);
    await tab.bridge.send({ type: 'engine:close' });
    await tab.bridge.next('engine:close:done');
  });

  it('connects to a Node peer over WebRTC and moves 1 MiB each way', async () => {
    const node: SimplePeer.Instance = nodePeer({ initiator: true });
    const stopRelay = relaySignals(tab.bridge, node);
    try {
      const incoming = new Reassembler(MiB);
      const nodeTypes = new Set<string>();
      node.on('data', (d: Uint8Array) => {
        nodeTypes.add(d.constructor.name);
        incoming.push(d);
      });
      const nodeError = new Promise<never>((_, reject) => node.once('error', reject));
      nodeError.catch(() => {});

      const t1 = performance.now();
      await tab.bridge.send({ type: 'peer', size: MiB, chunk: CHUNK, sendSeed: 2, recvSeed: 1 });
      await tab.guard(Promise.race([new Promise<void>((r) => node.once('connect', () => r())), nodeError]), 'the WebRTC connection');
      const connected = performance.now();
      for (const c of chunks(patternBytes(MiB, 1), CHUNK)) {
        if (!node.write(c)) await new Promise<void>((r) => node.once('drain', () => r()));
      }
      const got = await tab.guard(Promise.race([incoming.complete, nodeError]), '1 MiB from the page');
      const page = await tab.bridge.next<BridgeMessage & { firstDifference: number; bytes: number; messages: number; dataTypes: string[]; ms: number }>(
        'peer:done',
      );
      console.log(
        `WebRTC: connected in ${(connected - t1).toFixed(0)} ms; 1 MiB each way in ${(performance.now() - connected).toFixed(0)} ms ` +
          `(page got ${page.messages} messages as ${page.dataTypes.join(', ')}; Node got ${incoming.messages} as ${[...nodeTypes].join(', ')})`,
      );
      expect(firstDifference(got, patternBytes(MiB, 2))).toBe(-1);
      expect(page.bytes).toBe(MiB);
      expect(page.firstDifference).toBe(-1);
    } finally {
      stopRelay();
      await tab.bridge.send({ type: 'peer:close' });
      await tab.bridge.next('peer:close:done');
      node.destroy();
    }
  });
});
