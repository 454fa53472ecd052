// `npm run bench -- net`: what the wire costs. (a) PeerLink throughput on loopback for 1, 10
// and 100 MB messages, two links in this process; (b) one round's all-to-all exchange of
// signed `update` envelopes among 2, 4 and 8 peers on loopback, one process per peer; (c) the
// same two over an emulated 100 Mbit/s, 40 ms link (net-netns.ts: a namespace per peer, a
// UDP relay that shapes each uplink and holds the delay, tc tbf on each downlink), or the
// reason it could not run here. The update payload is random
// bytes of the size of the `small` model's SparseLoCo update (results/sparseloco.json):
// transport timing does not depend on the contents, but hashing and signing are real.
// `--part loopback|emulated`, `--sizes 1,10,100` (MB), `--peers 2,4,8`, `--rounds 3`,
// `--rate 100` (Mbit/s) and `--delay 40` (ms, one way) for the emulated link.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import wrtc from '@roamhq/wrtc';
import { DEFAULT_CHUNK_BYTES } from '../../src/net/framing.ts';
import { PeerLink } from '../../src/net/peer-link.ts';
import { cryptoReady } from '../../src/wallet/keys.ts';
import { PeerSwarm } from './net-harness.ts';
import { EmulatedNet, probeNetns, socketDrops, type Shaping } from './net-netns.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

/** Bytes of one `small` update with the default 'auto' index coding (results/sparseloco.json). */
const SMALL_UPDATE_BYTES = 320_499;
const MB = 1e6;
const list = (s: string | undefined) => s?.split(',').map(Number).filter((n) => n > 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Two PeerLinks in this process, connected. */
async function localPair(maxMessageBytes: number, chunkBytes: number): Promise<[PeerLink, PeerLink]> {
  const limits = { maxMessageBytes, timeoutMs: 300_000, maxInFlight: 4 };
  let b: PeerLink | null = null;
  const a = new PeerLink('b', { initiator: true, wrtc, iceServers: [], limits, chunkBytes }, (d) => setImmediate(() => b?.signal(d)));
  b = new PeerLink('a', { initiator: false, wrtc, iceServers: [], limits, chunkBytes }, (d) => setImmediate(() => a.signal(d)));
  await Promise.all([a, b].map((l) => new Promise<void>((resolve, reject) => {
    l.onConnect(resolve);
    l.onClose(reject);
  })));
  return [a, b];
}

async function loopbackThroughput(sizesMB: number[]): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  // 16 KiB is the default (safe in every browser); 64 KiB shows what the frame size costs.
  for (const chunk of [DEFAULT_CHUNK_BYTES, 64 * 1024]) {
    const [a, b] = await localPair(Math.max(...sizesMB) * MB + 1, chunk);
    try {
      let arrived: (() => void) | null = null;
      b.onMessage(() => arrived?.());
      const once = async (bytes: number) => {
        const got = new Promise<void>((r) => (arrived = r));
        const t0 = performance.now();
        await a.send(new Uint8Array(bytes));
        await got;
        return performance.now() - t0;
      };
      await once(MB); // warm-up
      for (const mb of sizesMB) {
        const before = socketDrops();
        const ms = await once(mb * MB);
        rows.push({ link: 'loopback', 'frame KiB': chunk / 1024, 'message MB': mb, ms, 'MB/s': (mb * MB) / 1e3 / ms, 'Mbit/s': (mb * 8 * MB) / 1e3 / ms, 'socket drops': socketDrops() - before });
      }
    } finally {
      a.close();
      b.close();
    }
  }
  return rows;
}

async function swarmThroughput(net: EmulatedNet, sizesMB: number[]): Promise<BenchRow[]> {
  const swarm = await PeerSwarm.start({ peers: 2, net, maxMessageBytes: Math.max(...sizesMB) * MB + 1 });
  try {
    const rows: BenchRow[] = [];
    await swarm.blast(0, 1, MB); // warm-up
    for (const mb of sizesMB) {
      const before = net.drops();
      const ms = await swarm.blast(0, 1, mb * MB);
      const after = net.drops();
      rows.push({
        link: `${net.shaping.rateMbit} Mbit/s, ${net.shaping.delayMs} ms`, 'frame KiB': DEFAULT_CHUNK_BYTES / 1024, 'message MB': mb, ms, 'MB/s': (mb * MB) / 1e3 / ms, 'Mbit/s': (mb * 8 * MB) / 1e3 / ms,
        'link drops': after.link - before.link, 'socket drops': after.socket - before.socket,
      });
    }
    const errors = swarm.errors();
    if (errors.length) throw new Error(errors.join('; '));
    return rows;
  } finally {
    await swarm.stop();
  }
}

async function allToAll(label: string, peerCounts: number[], rounds: number, makeNet: (n: number) => Promise<EmulatedNet | null>, ideal: (n: number) => number | null): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const n of peerCounts) {
    const net = await makeNet(n);
    let swarm: PeerSwarm | null = null;
    try {
      const drops = () => (net ? net.drops() : { link: 0, socket: socketDrops() });
      const t0 = performance.now();
      swarm = await PeerSwarm.start({ peers: n, net, maxMessageBytes: SMALL_UPDATE_BYTES + 4096 });
      const before = drops();
      const connectMs = performance.now() - t0;
      const first = await swarm.round(1, SMALL_UPDATE_BYTES);
      const warm = [];
      for (let r = 2; r <= rounds + 1; r++) warm.push(await swarm.round(r, SMALL_UPDATE_BYTES));
      const errors = swarm.errors();
      if (errors.length) throw new Error(errors.join('; '));
      rows.push({
        link: label, peers: n, 'connect ms': connectMs, 'first round ms': first.ms,
        [`median of ${rounds} ms`]: median(warm.map((w) => w.ms)), 'max ms': Math.max(...warm.map((w) => w.ms)),
        'ideal ms': ideal(n), 'seal ms': first.sealMs, 'open ms (all)': first.openMs, 'MB sent': first.bytesSent / MB,
        ...dropColumns(before, drops(), net !== null),
      });
    } finally {
      await swarm?.stop();
      net?.close();
    }
  }
  return rows;
}

/** Drops during the rounds: by the emulated link, and at the peers' sockets (all rounds together). */
function dropColumns(before: { link: number; socket: number }, after: { link: number; socket: number }, emulated: boolean): BenchRow {
  const socket = { 'socket drops': after.socket - before.socket };
  return emulated ? { 'link drops': after.link - before.link, ...socket } : socket;
}

export async function runNetBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { part: { type: 'string' }, sizes: { type: 'string' }, peers: { type: 'string' }, rounds: { type: 'string' }, rate: { type: 'string' }, delay: { type: 'string' } } });
  const part = values.part ?? 'all';
  if (!['all', 'loopback', 'emulated'].includes(part)) throw new Error(`--part must be all, loopback or emulated, got '${part}'`);
  const sizes = list(values.sizes) ?? [1, 10, 100];
  const peerCounts = list(values.peers) ?? [2, 4, 8];
  const rounds = Number(values.rounds ?? 3);
  const shaping: Shaping = { rateMbit: Number(values.rate ?? 100), delayMs: Number(values.delay ?? 40) };
  await cryptoReady();
  const host = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version };
  console.log(`host: ${host.cpus} × ${host.cpu}, Node ${host.node}; WebRTC: @roamhq/wrtc; all peers on this machine`);
  console.log(`update payload: ${SMALL_UPDATE_BYTES} random bytes (the small model's SparseLoCo update size), sealed and verified for real`);
  const results: Record<string, unknown> = {
    date: new Date().toISOString(), host, updatePayloadBytes: SMALL_UPDATE_BYTES,
    payloadNote: 'random bytes of the small model update size: transport timing does not depend on content; blake2b hashing and sr25519 signing/verification are real',
    roundNote: 'round ms: from telling every peer to start until the last peer has verified an update from every other peer (one process per peer, signaling relayed by the bench process); first round on fresh links, then the median of the next rounds',
  };
  if (part !== 'emulated') {
    const tp = await loopbackThroughput(sizes);
    printTable('(a) PeerLink throughput, loopback, one process', tp);
    const a2a = await allToAll('loopback', peerCounts, rounds, async () => null, () => null);
    printTable(`(b) all-to-all round of ${SMALL_UPDATE_BYTES}-byte signed updates, loopback, one process per peer`, a2a);
    results.loopback = { throughput: tp, allToAll: a2a };
  }
  if (part !== 'loopback') {
    const support = probeNetns();
    const emulated: Record<string, unknown> = { shaping: { ...shaping, oneWay: true, rttMs: 2 * shaping.delayMs }, support };
    if (!support.namespaces || !support.tbf) {
      const why = `not run: network namespaces or tc tbf are not permitted here (${support.notes.join('; ')})`;
      console.log(`\n(c) emulated link: ${why}`);
      emulated.skipped = why;
    } else {
      emulated.method = `one network namespace + veth per peer; peers reach each other only through a UDP relay in the root namespace. Uplink: ${shaping.rateMbit} Mbit/s drop-tail queue of 50 ms in the relay; delay: ${shaping.delayMs} ms each way, held by the relay (${support.netem ? 'tc netem exists here but is not used' : 'tc netem is not available in this kernel'}); downlink: tc tbf ${shaping.rateMbit} Mbit/s, 50 ms queue, on the veth into the peer's namespace`;
      console.log(`\n(c) emulated link: ${emulated.method}`);
      if (support.notes.length) console.log(`    ${support.notes.join('; ')}`);
      const make = (n: number) => EmulatedNet.create(n, shaping);
      try {
        const net2 = await make(2);
        try {
          emulated.throughput = await swarmThroughput(net2, sizes);
        } finally {
          net2.close();
        }
        printTable(`(c) PeerLink throughput, ${shaping.rateMbit} Mbit/s, ${shaping.delayMs} ms each way`, emulated.throughput as BenchRow[]);
        // Lower bound: a peer uploads n−1 updates at the link rate, the last one then takes the one-way delay.
        const ideal = (n: number) => ((n - 1) * (SMALL_UPDATE_BYTES + 200) * 8) / (shaping.rateMbit * 1e3) + shaping.delayMs;
        emulated.allToAll = await allToAll(`${shaping.rateMbit} Mbit/s, ${shaping.delayMs} ms`, peerCounts, rounds, make, ideal);
        emulated.idealNote = 'ideal ms: (n−1) updates serialised on one uplink plus one one-way delay; ignores handshakes and congestion-window growth';
        printTable(`(c) all-to-all round, ${shaping.rateMbit} Mbit/s, ${shaping.delayMs} ms each way`, emulated.allToAll as BenchRow[]);
      } catch (e) {
        emulated.error = (e as Error).message;
        console.log(`(c) failed: ${emulated.error}`);
      }
    }
    results.emulated = emulated;
  }
  console.log(`wrote ${writeResults('net', results)}`);
  return 0;
}
