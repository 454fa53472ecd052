// Page of browser-engine.test.ts. The engine runs in a worker (engine-worker.ts); the page
// relays the test's requests to it, and holds a simple-peer connection to a Node peer whose
// signaling the test relays over the bridge.
import Peer from 'simple-peer';
import { bridge } from './bridge.ts';
import { Reassembler, chunks, firstDifference, patternBytes } from './bytes.ts';
import type { EngineWorker } from './engine-worker.ts';
import { spawnWorker } from './worker-rpc.ts';

const engine = spawnWorker<EngineWorker>('/engine-worker.js');

bridge.handle('adapter', async () => engine.call('adapter', undefined));
bridge.handle('matmul', async (msg) => engine.call('matmul', msg as unknown as Parameters<EngineWorker['matmul']>[0]));
bridge.handle('engine:close', async () => ({ closed: await engine.call('close', undefined) }));

/** Rethrown from a task of its own, so the test sees an uncaught page error. */
const fatal = (e: unknown) =>
  setTimeout(() => {
    throw e;
  });

let peer: Peer.Instance | null = null;

interface PeerRequest {
  type: 'peer';
  size: number;
  chunk: number;
  sendSeed: number;
  recvSeed: number;
}

bridge.handle('peer', async (msg) => {
  const { size, chunk, sendSeed, recvSeed } = msg as unknown as PeerRequest;
  const p = new Peer({ initiator: false, trickle: true, config: { iceServers: [] } });
  peer = p;
  p.on('signal', (data) => void bridge.send({ type: 'signal', data }));
  bridge.on('signal', (m) => p.signal(m.data as Peer.SignalData));
  p.on('error', fatal);

  const incoming = new Reassembler(size);
  const dataTypes = new Set<string>();
  p.on('data', (d: Uint8Array) => {
    dataTypes.add(`${d.constructor.name}${d instanceof Uint8Array ? ' (a Uint8Array)' : ''}`);
    incoming.push(d);
  });
  await new Promise<void>((resolve) => p.once('connect', () => resolve()));

  const t0 = performance.now();
  for (const c of chunks(patternBytes(size, sendSeed), chunk)) {
    // The stream interface gives backpressure: write() is false while the channel's buffer is full.
    if (!p.write(c)) await new Promise<void>((resolve) => p.once('drain', () => resolve()));
  }
  const got = await incoming.complete;
  const ms = performance.now() - t0;
  // Done: from here an error is the other side hanging up (SCTP's "User-Initiated Abort").
  p.off('error', fatal);
  p.on('error', () => {});
  return { firstDifference: firstDifference(got, patternBytes(size, recvSeed)), bytes: got.length, messages: incoming.messages, dataTypes: [...dataTypes], ms };
});

bridge.handle('peer:close', async () => {
  peer?.destroy();
  peer = null;
  return {};
});

void bridge.send({ type: 'ready' });
