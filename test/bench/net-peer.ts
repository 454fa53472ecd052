// One benchmark peer in its own process (net-harness.ts spawns it, maybe inside a network
// namespace): holds a hotkey and a PeerLink to each other peer, and on the parent's word
// sends raw messages or one round of signed `update` envelopes, reporting over Node IPC.
import { randomFillSync } from 'node:crypto';
import wrtc from '@roamhq/wrtc';
import { openEnvelope, sealEnvelope } from '../../src/net/envelope.ts';
import { PeerLink } from '../../src/net/peer-link.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';

export const BENCH_MNEMONIC = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
export const BENCH_RUN = 'net-bench';
export const benchPath = (i: number) => `//tessera-net-bench/${i}`;

/** Parent → peer. */
export type ToPeer =
  | { type: 'init'; index: number; maxMessageBytes: number; chunkBytes?: number }
  | { type: 'link'; remote: string; initiator: boolean }
  | { type: 'signal'; from: string; data: unknown }
  | { type: 'blast'; to: string; bytes: number }
  | { type: 'round'; round: number; peers: string[]; payloadBytes: number }
  | { type: 'exit' };

/** Peer → parent. */
export type FromPeer =
  | { type: 'ready'; address: string }
  | { type: 'signal'; to: string; data: unknown }
  | { type: 'connected'; remote: string }
  | { type: 'closed'; remote: string; reason: string }
  | { type: 'got'; from: string; bytes: number }
  | { type: 'round-done'; round: number; sealMs: number; openMs: number; sendMs: number; bytesSent: number }
  | { type: 'error'; message: string };

const send = (m: FromPeer) => process.send!(m);

async function main(): Promise<void> {
  await cryptoReady();
  let key: Hotkey | null = null;
  let cfg: Extract<ToPeer, { type: 'init' }> | null = null;
  const links = new Map<string, PeerLink>();
  // Verified updates per round, from whom; the round this peer is in and its bookkeeping.
  const verified = new Map<number, Set<string>>();
  let current: { round: number; peers: string[]; t0: number; openMs: number; sealMs: number; sendMs: number; sent: boolean; bytes: number } | null = null;

  const maybeDone = () => {
    if (!current || !current.sent) return;
    const got = verified.get(current.round) ?? new Set();
    if (current.peers.every((p) => p === key!.address || got.has(p))) {
      send({ type: 'round-done', round: current.round, sealMs: current.sealMs, openMs: current.openMs, sendMs: current.sendMs, bytesSent: current.bytes });
      current = null;
    }
  };

  const onMessage = (from: string, m: Uint8Array) => {
    if (m.length >= 4 && m[0] === 0x54 && m[1] === 0x53 && m[2] === 0x4e && m[3] === 0x4d) {
      const t = performance.now();
      try {
        const { header } = openEnvelope(m, { run: BENCH_RUN, maxPayloadBytes: cfg!.maxMessageBytes });
        if (header.sender !== from) throw new Error(`update from ${from} signed by ${header.sender}`);
        const set = verified.get(header.round) ?? new Set<string>();
        set.add(from);
        verified.set(header.round, set);
      } catch (e) {
        send({ type: 'error', message: `bad envelope from ${from}: ${(e as Error).message}` });
      }
      if (current) current.openMs += performance.now() - t;
      maybeDone();
    } else {
      send({ type: 'got', from, bytes: m.length });
    }
  };

  process.on('message', (msg: ToPeer) => {
    void (async () => {
      switch (msg.type) {
        case 'init':
          cfg = msg;
          key = Hotkey.fromMnemonic(BENCH_MNEMONIC, benchPath(msg.index));
          send({ type: 'ready', address: key.address });
          break;
        case 'link': {
          const link = new PeerLink(msg.remote, {
            initiator: msg.initiator, wrtc, iceServers: [], chunkBytes: cfg!.chunkBytes,
            limits: { maxMessageBytes: cfg!.maxMessageBytes, timeoutMs: 120_000, maxInFlight: 4 },
          }, (data) => send({ type: 'signal', to: msg.remote, data }));
          links.set(msg.remote, link);
          link.onConnect(() => send({ type: 'connected', remote: msg.remote }));
          link.onClose((reason) => send({ type: 'closed', remote: msg.remote, reason }));
          link.onMessage((m) => onMessage(msg.remote, m));
          break;
        }
        case 'signal':
          links.get(msg.from)?.signal(msg.data);
          break;
        case 'blast':
          await links.get(msg.to)!.send(new Uint8Array(msg.bytes));
          break;
        case 'round': {
          const payload = randomFillSync(new Uint8Array(msg.payloadBytes));
          const t0 = performance.now();
          const env = sealEnvelope(key!, { kind: 'update', run: BENCH_RUN, round: msg.round, stage: 0 }, payload);
          const sealMs = performance.now() - t0;
          current = { round: msg.round, peers: msg.peers, t0, openMs: 0, sealMs, sendMs: 0, sent: false, bytes: 0 };
          const mine = current;
          const others = msg.peers.filter((p) => p !== key!.address);
          await Promise.all(others.map((p) => links.get(p)!.send(env)));
          mine.sendMs = performance.now() - t0;
          mine.sent = true;
          mine.bytes = env.length * others.length;
          maybeDone();
          break;
        }
        case 'exit':
          for (const l of links.values()) l.close();
          setTimeout(() => process.exit(0), 50);
          break;
      }
    })().catch((e: Error) => send({ type: 'error', message: `${msg.type}: ${e.message}` }));
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.send) void main();
