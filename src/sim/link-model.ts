// The network between simulated peers, modelled rather than opened: a thousand peers with
// eight links each would be thousands of real sockets in one process. Each peer has an
// uplink and a downlink (Mbit/s), a round-trip time and a loss rate; some pairs cannot link
// directly at all (NATs without a relay). A transfer's bytes wait until both the sender's
// uplink and the receiver's downlink are free (one transfer's bytes at a time per link, first
// come first served) and take them at the slower of the two rates, slowed by retransmissions
// (1 / (1 − loss)); the round trip (the request, the first byte's way) adds latency but does
// not hold the links. A server's link (`shared`: the coordinator, the bucket) is booked only
// for the bytes at its own rate, so it carries many slower peers' transfers at once. Pure: times are given and returned, nothing sleeps, so a fake clock
// tests it.

export interface LinkSpec {
  upMbps: number;
  downMbps: number;
  rttMs: number;
  /** Fraction of packets lost, [0, 1): each costs a retransmission. */
  loss: number;
  /**
   * A server's link (the coordinator, the bucket): it carries many transfers at once, each
   * booking only its bytes at this link's rate, instead of being held for the whole of a
   * slower peer's transfer (which would serialise N peers' uploads behind one another).
   */
  shared?: boolean;
}

export interface Transfer {
  /** When the bytes start moving (both links free), ms. */
  start: number;
  /** When the last byte arrives, ms. */
  done: number;
}

const BITS_PER_BYTE = 8;
const BITS_PER_MBIT = 1e6;

/** Milliseconds the bytes occupy a path of `mbps`, retransmissions included. */
export function wireMs(bytes: number, mbps: number, loss: number): number {
  return (1000 * (bytes * BITS_PER_BYTE)) / (mbps * BITS_PER_MBIT) / (1 - loss);
}

/** Milliseconds to move `bytes` over an idle path: one round trip plus the bytes. */
export function transferMs(bytes: number, mbps: number, rttMs: number, loss: number): number {
  return rttMs + wireMs(bytes, mbps, loss);
}

/** A 32-bit mix of two numbers (order-free), for the pairs that cannot link. */
function pairHash(a: number, b: number, seed: number): number {
  const [lo, hi] = a < b ? [a, b] : [b, a];
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(hi + seed, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return (h >>> 0) / 2 ** 32;
}

export class LinkModel {
  private readonly specs = new Map<number, LinkSpec>();
  private readonly upFree = new Map<number, number>();
  private readonly downFree = new Map<number, number>();

  /** `unlinkable`: the fraction of pairs that cannot link directly (decided by a seeded hash, so runs repeat). */
  constructor(private readonly o: { unlinkable: number; seed: number }) {
    if (!(o.unlinkable >= 0 && o.unlinkable <= 1)) throw new RangeError(`unlinkable must be in [0, 1], got ${o.unlinkable}`);
  }

  addNode(id: number, spec: LinkSpec): void {
    if (!(spec.upMbps > 0 && spec.downMbps > 0 && spec.rttMs >= 0 && spec.loss >= 0 && spec.loss < 1)) throw new RangeError(`bad link spec for node ${id}: ${JSON.stringify(spec)}`);
    this.specs.set(id, { ...spec });
  }

  spec(id: number): LinkSpec {
    const s = this.specs.get(id);
    if (!s) throw new RangeError(`no node ${id} in the link model`);
    return s;
  }

  /** Whether two peers can open a direct link (the coordinator is always reachable: give it no pair test). */
  canLink(a: number, b: number): boolean {
    return a !== b && pairHash(a, b, this.o.seed) >= this.o.unlinkable;
  }

  /** Books a transfer from `from`'s uplink to `to`'s downlink, asked for at `now`. */
  transfer(from: number, to: number, bytes: number, now: number): Transfer {
    const a = this.spec(from);
    const b = this.spec(to);
    const start = Math.max(now, this.upFree.get(from) ?? 0, this.downFree.get(to) ?? 0);
    const loss = 1 - (1 - a.loss) * (1 - b.loss);
    const sent = start + wireMs(bytes, Math.min(a.upMbps, b.downMbps), loss);
    this.upFree.set(from, a.shared ? start + wireMs(bytes, a.upMbps, loss) : sent);
    this.downFree.set(to, b.shared ? start + wireMs(bytes, b.downMbps, loss) : sent);
    return { start, done: sent + Math.max(a.rttMs, b.rttMs) };
  }

  /** When `id`'s uplink is next free (a peer choosing whom to fetch from prefers the idle). */
  upFreeAt(id: number): number {
    return this.upFree.get(id) ?? 0;
  }

  /** A node gone: its queues are forgotten (a peer that rejoins starts with idle links). */
  reset(id: number): void {
    this.upFree.delete(id);
    this.downFree.delete(id);
  }
}
