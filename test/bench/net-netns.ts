// An emulated wide-area network for the net benchmark, on this machine only: each peer gets
// its own network namespace, joined to the root namespace by a veth pair, and reaches the
// others only through a UDP relay in the root namespace (the signaling rewrites each peer's
// ICE host candidate to the relay's socket facing the other peer). Every packet from peer i
// to peer j takes i's uplink (a rate-limited drop-tail queue in the relay), a fixed one-way
// delay (the relay holds it), then j's downlink (tc tbf on the veth into j's namespace).
// The relay does the delay because this sandbox's kernel has no `tc netem`
// (CONFIG_NET_SCH_NETEM unset; probeNetns reports it), and the uplink for the reason given at
// Uplink. Nothing leaves the machine: all addresses are 10.231.x.x on veth links we create.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';

export interface Shaping {
  rateMbit: number;
  /** One-way delay, each direction. */
  delayMs: number;
}

export interface NetnsSupport {
  namespaces: boolean;
  tbf: boolean;
  netem: boolean;
  /** What failed, when something did. */
  notes: string[];
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const tryRun = (cmd: string, args: string[]): string | null => {
  try {
    run(cmd, args);
    return null;
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return (err.stderr?.toString().trim() || err.message).split('\n')[0];
  }
};

const nsName = (i: number) => `tsnb${i}`;
const rootIf = (i: number) => `tsnbr${i}`;
const peerIf = (i: number) => `tsnbp${i}`;
/** Root-side and peer-side addresses of peer i's link. */
export const rootAddr = (i: number) => `10.231.${i + 1}.1`;
export const peerAddr = (i: number) => `10.231.${i + 1}.2`;

/**
 * Datagrams the kernel dropped at UDP sockets (receive or send buffer full), IPv4 and IPv6, in
 * the root namespace or in namespace `ns`: where a busy receiver loses packets.
 */
export function socketDrops(ns?: string): number {
  const read = (file: string) => {
    try {
      return ns ? run('ip', ['netns', 'exec', ns, 'cat', file]) : run('cat', [file]);
    } catch {
      return '';
    }
  };
  let n = 0;
  const v4 = read('/proc/net/snmp').split('\n').filter((l) => l.startsWith('Udp:'));
  if (v4.length === 2) {
    const [names, values] = v4.map((l) => l.split(/\s+/));
    for (const k of ['RcvbufErrors', 'SndbufErrors']) n += Number(values[names.indexOf(k)] ?? 0);
  }
  for (const m of read('/proc/net/snmp6').matchAll(/^Udp6(?:Rcvbuf|Sndbuf)Errors\s+(\d+)/gm)) n += Number(m[1]);
  return n;
}

/** Which of namespaces, tbf and netem this machine lets us use (probes with a throwaway link). */
export function probeNetns(): NetnsSupport {
  const notes: string[] = [];
  cleanup(1);
  const failNs = tryRun('ip', ['netns', 'add', nsName(0)]);
  if (failNs) return { namespaces: false, tbf: false, netem: false, notes: [`ip netns add: ${failNs}`] };
  try {
    const failVeth = tryRun('ip', ['link', 'add', rootIf(0), 'type', 'veth', 'peer', 'name', peerIf(0)]);
    if (failVeth) return { namespaces: false, tbf: false, netem: false, notes: [`veth: ${failVeth}`] };
    const netemFail = tryRun('tc', ['qdisc', 'add', 'dev', rootIf(0), 'root', 'netem', 'delay', '1ms']);
    if (netemFail) notes.push(`tc netem: ${netemFail}`);
    else run('tc', ['qdisc', 'del', 'dev', rootIf(0), 'root']);
    const tbfFail = tryRun('tc', ['qdisc', 'add', 'dev', rootIf(0), 'root', 'tbf', 'rate', '100mbit', 'burst', '64kb', 'latency', '50ms']);
    if (tbfFail) notes.push(`tc tbf: ${tbfFail}`);
    return { namespaces: true, tbf: !tbfFail, netem: !netemFail, notes };
  } finally {
    cleanup(1);
  }
}

/** Removes the namespaces (and with them their veth pairs) of peers 0..n-1 and a few beyond. */
export function cleanup(n: number): void {
  for (let i = 0; i < n + 8; i++) {
    tryRun('ip', ['link', 'del', rootIf(i)]);
    tryRun('ip', ['netns', 'del', nsName(i)]);
  }
}

/**
 * A peer's uplink as a router sees it: packets leave one after another at the link rate from a
 * drop-tail queue holding at most `queueMs` of traffic. Kept in the relay rather than in a qdisc
 * on the peer's own interface, because there a full queue pushes back into the sending socket
 * (whose buffer libwebrtc cannot be told to enlarge) and the drops land in the wrong place.
 */
class Uplink {
  #free = 0;
  dropped = 0;
  constructor(private readonly bitsPerMs: number, private readonly queueMs: number) {}

  /** When a datagram of `bytes` finishes leaving, or null when the queue is full (dropped). */
  depart(bytes: number, now: number): number | null {
    const start = Math.max(now, this.#free);
    if (start - now > this.queueMs) {
      this.dropped++;
      return null;
    }
    this.#free = start + ((bytes + 28) * 8) / this.bitsPerMs; // + IPv4 and UDP headers
    return this.#free;
  }
}

/** Datagrams from one peer to another, each released at its due time (dues only grow). */
class DelayLine {
  readonly #q: { due: number; buf: Buffer; port: number; host: string }[] = [];
  #timer: NodeJS.Timeout | null = null;
  constructor(private readonly out: Socket) {}

  push(buf: Buffer, host: string, port: number, due: number): void {
    this.#q.push({ due, buf, host, port });
    if (!this.#timer) this.#arm();
  }

  #arm(): void {
    const wait = Math.max(0, this.#q[0].due - performance.now());
    this.#timer = setTimeout(() => {
      const now = performance.now() + 0.5;
      while (this.#q.length && this.#q[0].due <= now) {
        const p = this.#q.shift()!;
        this.out.send(p.buf, p.port, p.host);
      }
      this.#timer = null;
      if (this.#q.length) this.#arm();
    }, wait);
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}

interface RelayEnd {
  socket: Socket;
  port: number;
  /** Where the peer this end faces really listens (from its ICE candidate). */
  target: { host: string; port: number } | null;
}

/** Queue bound of the uplinks and of the downlinks' tbf: 50 ms of traffic at the link rate. */
const QUEUE_MS = 50;

export class EmulatedNet {
  /** For each ordered pair "i-j": the relay end facing i, for the link between i and j. */
  readonly #ends = new Map<string, RelayEnd>();
  readonly #lines: DelayLine[] = [];
  readonly #uplinks: Uplink[];
  stats = { candidatesRewritten: 0, candidatesDropped: 0, packetsRelayed: 0 };

  private constructor(readonly peers: number, readonly shaping: Shaping) {
    this.#uplinks = Array.from({ length: peers }, () => new Uplink(shaping.rateMbit * 1e3, QUEUE_MS));
  }

  /** Namespaces, shaped veth links and relay sockets for every pair of `peers` peers. */
  static async create(peers: number, shaping: Shaping): Promise<EmulatedNet> {
    cleanup(peers);
    for (let i = 0; i < peers; i++) {
      const ns = nsName(i);
      run('ip', ['netns', 'add', ns]);
      run('ip', ['link', 'add', rootIf(i), 'type', 'veth', 'peer', 'name', peerIf(i)]);
      run('ip', ['link', 'set', peerIf(i), 'netns', ns]);
      run('ip', ['addr', 'add', `${rootAddr(i)}/24`, 'dev', rootIf(i)]);
      run('ip', ['link', 'set', rootIf(i), 'up']);
      run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${peerAddr(i)}/24`, 'dev', peerIf(i)]);
      run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peerIf(i), 'up']);
      run('tc', ['qdisc', 'add', 'dev', rootIf(i), 'root', 'tbf', 'rate', `${shaping.rateMbit}mbit`, 'burst', '64kb', 'latency', `${QUEUE_MS}ms`]);
    }
    const net = new EmulatedNet(peers, shaping);
    for (let i = 0; i < peers; i++) for (let j = i + 1; j < peers; j++) await net.#pair(i, j);
    return net;
  }

  nsOf(i: number): string {
    return nsName(i);
  }

  /**
   * Datagrams dropped so far: by the uplink queues, by the downlinks' tbf (tc's counters), and
   * at the peers' own sockets (a peer too busy to read its socket in time).
   */
  drops(): { link: number; socket: number } {
    let link = this.#uplinks.reduce((s, u) => s + u.dropped, 0), socket = 0;
    for (let i = 0; i < this.peers; i++) {
      const m = /dropped (\d+)/.exec(run('tc', ['-s', 'qdisc', 'show', 'dev', rootIf(i)]));
      link += m ? Number(m[1]) : 0;
      socket += socketDrops(nsName(i));
    }
    return { link, socket };
  }

  async #pair(i: number, j: number): Promise<void> {
    const open = async (k: number): Promise<RelayEnd> => {
      // Big buffers: a relay that drops datagrams while busy would measure SCTP's loss recovery.
      const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, rootAddr(k), () => resolve());
      });
      return { socket, port: socket.address().port, target: null };
    };
    const ei = await open(i), ej = await open(j);
    this.#ends.set(`${i}-${j}`, ei);
    this.#ends.set(`${j}-${i}`, ej);
    // What i sends to its end goes out of j's end to j, and back the same way.
    const toJ = new DelayLine(ej.socket), toI = new DelayLine(ei.socket);
    this.#lines.push(toJ, toI);
    const forward = (from: number, line: DelayLine, to: RelayEnd) => (buf: Buffer) => {
      if (!to.target) return;
      const left = this.#uplinks[from].depart(buf.length, performance.now());
      if (left === null) return;
      this.stats.packetsRelayed++;
      line.push(buf, to.target.host, to.target.port, left + this.shaping.delayMs);
    };
    ei.socket.on('message', forward(i, toJ, ej));
    ej.socket.on('message', forward(j, toI, ei));
  }

  /**
   * Signaling data from peer i for peer j as j must see it: i's one IPv4 UDP host candidate
   * becomes the relay's socket facing j (and the relay learns where i listens); every other
   * candidate is dropped (null). SDP loses any inline candidates.
   */
  rewrite(i: number, j: number, data: unknown): unknown | null {
    const d = data as { type?: string; sdp?: string; candidate?: { candidate?: string } };
    if (typeof d.sdp === 'string') return { ...d, sdp: d.sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n') };
    if (d.type !== 'candidate' || !d.candidate?.candidate) return data;
    const f = d.candidate.candidate.split(' ');
    const mine = this.#ends.get(`${i}-${j}`)!, theirs = this.#ends.get(`${j}-${i}`)!;
    if (f[2]?.toLowerCase() !== 'udp' || f[4] !== peerAddr(i) || f[7] !== 'host' || mine.target) {
      this.stats.candidatesDropped++;
      return null;
    }
    mine.target = { host: f[4], port: Number(f[5]) };
    f[4] = rootAddr(j);
    f[5] = String(theirs.port);
    this.stats.candidatesRewritten++;
    return { ...d, candidate: { ...d.candidate, candidate: f.join(' ') } };
  }

  close(): void {
    for (const l of this.#lines) l.close();
    for (const e of this.#ends.values()) e.socket.close();
    cleanup(this.peers);
  }
}
