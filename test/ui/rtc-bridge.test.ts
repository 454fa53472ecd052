// The RTC bridge (renderer/engine/rtc-worker.ts + rtc-host.ts) between two "workers" and two
// "pages", in Node: each page side holds real RTCPeerConnections (@roamhq/wrtc), each worker
// side runs src/net's PeerLink (simple-peer) on the bridged look-alikes, the two talking over
// MessageChannels as a worker and its page do. Messages large enough to need backpressure
// and many small ones must arrive whole and in order.
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { hostRtc, type RtcHost } from '../../renderer/engine/rtc-host.ts';
import type { RtcCommand } from '../../renderer/engine/rtc-protocol.ts';
import { rtcFromPage } from '../../renderer/engine/rtc-worker.ts';
import { PeerLink } from '../../src/net/peer-link.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const wrtc = createRequire(import.meta.url)('@roamhq/wrtc') as { RTCPeerConnection: typeof RTCPeerConnection };

interface Side {
  wrtc: unknown;
  host: RtcHost;
  ports: MessagePort[];
}

/** A worker's bridged WebRTC and the page end that hosts it, over one MessageChannel. */
function bridgedSide(): Side {
  const { port1: workerPort, port2: pagePort } = new MessageChannel();
  const asEvents = (port: MessagePort) => ({
    postMessage: (m: unknown, transfer?: Transferable[]) => port.postMessage(m, transfer as never),
    addEventListener: (_: 'message', fn: (ev: MessageEvent) => void) => port.on('message', (data) => fn({ data } as MessageEvent)),
  });
  const host = hostRtc(asEvents(pagePort), wrtc.RTCPeerConnection);
  pagePort.on('message', (data: { rtc?: RtcCommand }) => data.rtc && host.handle(data.rtc));
  return { wrtc: rtcFromPage(asEvents(workerPort)), host, ports: [workerPort, pagePort] };
}

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('RTC bridge', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  // End libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
  afterAll(async () => expect(await releaseWebRtc()).toEqual([]));

  it('carries a PeerLink between two bridged sides: a 2 MB message and 50 small ones, whole and in order', { timeout: 60_000 }, async () => {
    const [a, b] = [bridgedSide(), bridgedSide()];
    const limits = { maxMessageBytes: 8 << 20, timeoutMs: 30_000, maxInFlight: 4 };
    // Each link's signals go straight to the other (no coordinator in between).
    const links: { a?: PeerLink; b?: PeerLink } = {};
    const la = (links.a = new PeerLink('b', { initiator: true, wrtc: a.wrtc, iceServers: [], limits }, (s) => links.b!.signal(s)));
    const lb = (links.b = new PeerLink('a', { initiator: false, wrtc: b.wrtc, iceServers: [], limits }, (s) => links.a!.signal(s)));
    cleanups.push(() => {
      la.close();
      lb.close();
      for (const s of [a, b]) {
        s.host.closeAll();
        for (const p of s.ports) p.close();
      }
    });
    const got: Uint8Array[] = [];
    const all = new Promise<void>((resolve) => lb.onMessage((m) => (got.push(m), got.length === 51 && resolve())));
    await new Promise<void>((resolve, reject) => {
      la.onConnect(resolve);
      la.onClose((r) => reject(new Error(`link closed: ${r}`)));
    });
    const big = pattern(2 << 20, 7);
    const sends = [la.send(big)];
    for (let i = 0; i < 50; i++) sends.push(la.send(pattern(100 + i, i)));
    await Promise.all(sends);
    await all;
    expect(got[0].length).toBe(big.length);
    expect(Buffer.from(got[0]).equals(Buffer.from(big))).toBe(true);
    for (let i = 0; i < 50; i++) expect(Array.from(got[i + 1])).toEqual(Array.from(pattern(100 + i, i)));
    expect(lb.stats.messagesDropped).toBe(0);
    // And back the other way.
    const back = new Promise<Uint8Array>((resolve) => la.onMessage(resolve));
    await lb.send(pattern(5000, 3));
    expect((await back).length).toBe(5000);
  });
});
