// A swarm of benchmark peers, one process each (net-peer.ts), every pair linked by a
// PeerLink, with this process relaying their signaling (and, on an EmulatedNet, rewriting
// it so traffic takes the shaped path). Every wait has a deadline: a benchmark never hangs.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EmulatedNet } from './net-netns.ts';
import type { FromPeer, ToPeer } from './net-peer.ts';

const REGISTER = fileURLToPath(new URL('../../bin/register.mjs', import.meta.url));
const PEER = fileURLToPath(new URL('./net-peer.ts', import.meta.url));

export interface SwarmOptions {
  peers: number;
  net: EmulatedNet | null;
  maxMessageBytes: number;
  chunkBytes?: number;
  connectTimeoutMs?: number;
}

interface Member {
  child: ChildProcess;
  address: string;
  listeners: Set<(m: FromPeer) => void>;
  errors: string[];
}

export interface RoundResult {
  ms: number;
  sealMs: number;
  openMs: number;
  sendMs: number;
  bytesSent: number;
}

export class PeerSwarm {
  private constructor(private readonly members: Member[], private readonly net: EmulatedNet | null) {}

  static async start(o: SwarmOptions): Promise<PeerSwarm> {
    const members: Member[] = [];
    const swarm = new PeerSwarm(members, o.net);
    try {
      for (let i = 0; i < o.peers; i++) {
        const argv = [process.execPath, '--import', REGISTER, PEER];
        const child = o.net
          ? spawn('ip', ['netns', 'exec', o.net.nsOf(i), ...argv], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
          : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const m: Member = { child, address: '', listeners: new Set(), errors: [] };
        child.on('message', (msg: FromPeer) => {
          if (msg.type === 'error') m.errors.push(msg.message);
          if (msg.type === 'signal') swarm.relay(i, msg.to, msg.data);
          for (const l of m.listeners) l(msg);
        });
        members.push(m);
      }
      await Promise.all(members.map(async (m, i) => {
        const ready = swarm.next(i, (x) => x.type === 'ready', 60_000, 'start');
        m.child.send({ type: 'init', index: i, maxMessageBytes: o.maxMessageBytes, chunkBytes: o.chunkBytes } satisfies ToPeer);
        m.address = ((await ready) as Extract<FromPeer, { type: 'ready' }>).address;
      }));
      const want = o.peers - 1;
      const linked = members.map((_, i) => swarm.count(i, (x) => x.type === 'connected', want, o.connectTimeoutMs ?? 60_000, 'connect'));
      for (let i = 0; i < o.peers; i++) {
        for (let j = 0; j < o.peers; j++) {
          if (i !== j) swarm.tell(i, { type: 'link', remote: members[j].address, initiator: i < j });
        }
      }
      await Promise.all(linked);
      return swarm;
    } catch (e) {
      await swarm.stop();
      throw e;
    }
  }

  get addresses(): string[] {
    return this.members.map((m) => m.address);
  }

  errors(): string[] {
    return this.members.flatMap((m, i) => m.errors.map((e) => `peer ${i}: ${e}`));
  }

  private tell(i: number, msg: ToPeer): void {
    this.members[i].child.send(msg);
  }

  private relay(from: number, to: string, data: unknown): void {
    const j = this.members.findIndex((m) => m.address === to);
    if (j < 0) return;
    const out = this.net ? this.net.rewrite(from, j, data) : data;
    if (out !== null) this.tell(j, { type: 'signal', from: this.members[from].address, data: out });
  }

  /** The next message from peer i that passes `ok`. */
  private next(i: number, ok: (m: FromPeer) => boolean, timeoutMs: number, what: string): Promise<FromPeer> {
    return this.count(i, ok, 1, timeoutMs, what).then((l) => l[0]);
  }

  /** The next `n` messages from peer i that pass `ok`. */
  private count(i: number, ok: (m: FromPeer) => boolean, n: number, timeoutMs: number, what: string): Promise<FromPeer[]> {
    const m = this.members[i];
    return new Promise((resolve, reject) => {
      const got: FromPeer[] = [];
      const done = (err?: Error) => {
        clearTimeout(timer);
        m.listeners.delete(listen);
        m.child.off('exit', onExit);
        if (err) reject(err);
        else resolve(got);
      };
      const listen = (x: FromPeer) => {
        if (ok(x) && got.push(x) === n) done();
      };
      const onExit = (code: number | null) => done(new Error(`peer ${i} exited (${code}) during ${what}`));
      const timer = setTimeout(() => done(new Error(`peer ${i}: ${what} timed out after ${timeoutMs} ms (${got.length}/${n}; ${m.errors.join('; ') || 'no errors'})`)), timeoutMs);
      if (n === 0) return done();
      m.listeners.add(listen);
      m.child.once('exit', onExit);
    });
  }

  /** Sends `bytes` raw bytes from peer a to peer b over their link; ms until b has all of it. */
  async blast(a: number, b: number, bytes: number, timeoutMs = 180_000): Promise<number> {
    const from = this.members[a].address;
    const got = this.next(b, (x) => x.type === 'got' && x.from === from && x.bytes === bytes, timeoutMs, `receive ${bytes} bytes`);
    const t0 = performance.now();
    this.tell(a, { type: 'blast', to: this.members[b].address, bytes });
    await got;
    return performance.now() - t0;
  }

  /** One all-to-all round: every peer seals one update and sends it to every other peer. */
  async round(round: number, payloadBytes: number, timeoutMs = 120_000): Promise<RoundResult> {
    const peers = this.addresses;
    const done = this.members.map((_, i) => this.next(i, (x) => x.type === 'round-done' && x.round === round, timeoutMs, `round ${round}`));
    const t0 = performance.now();
    for (let i = 0; i < peers.length; i++) this.tell(i, { type: 'round', round, peers, payloadBytes });
    const reports = (await Promise.all(done)) as Extract<FromPeer, { type: 'round-done' }>[];
    const ms = performance.now() - t0;
    const max = (k: 'sealMs' | 'openMs' | 'sendMs') => Math.max(...reports.map((r) => r[k]));
    return { ms, sealMs: max('sealMs'), openMs: max('openMs'), sendMs: max('sendMs'), bytesSent: reports.reduce((s, r) => s + r.bytesSent, 0) };
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => new Promise<void>((resolve) => {
      if (m.child.exitCode !== null || m.child.signalCode !== null) return resolve();
      const kill = setTimeout(() => m.child.kill('SIGKILL'), 3000);
      m.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      try {
        m.child.send({ type: 'exit' } satisfies ToPeer);
      } catch {
        m.child.kill('SIGKILL');
      }
    })));
  }
}
