// Who links with whom: the coordinator gives each peer at most `degree` neighbours (the run's
// `neighbours`), not N − 1. A new peer links to random peers with free slots (of a few drawn,
// the least linked: so links spread evenly); when none has a free slot it splits a random
// link u–v into u–new–v (u and v keep their degree, the new peer gains two). A peer that
// leaves frees its neighbours' slots: they link with each other first, then are topped up the
// same way. Random graphs of this kind are connected with overwhelming probability
// (test/coordinator/neighbours.test.ts checks 1,000 joins and 300 leaves).
//
// Every operation returns the peers whose set changed: only they are told (the coordinator
// sends each its whole, bounded, set). Deterministic for a seed, so tests are repeatable.
//
// A pipelined run (stages > 1) uses the complete graph (`degree` Infinity): each stage needs
// links to the peers of its neighbouring stages for activations, and choosing only those is
// left for later. Its size is then bounded by MAX_NEIGHBOURS (a known limit, see the README).
import { Rng } from '../model/config.ts';

/** Peers drawn per pick; the least linked of them is taken. */
const CHOICES = 3;
/** Random draws before falling back to a scan (the scan is rare: only when free slots are scarce). */
const DRAWS = 16;

export class NeighbourGraph {
  private readonly links = new Map<string, Set<string>>();
  /** Every peer, for uniform draws (swap-removal keeps it dense). */
  private readonly peers: string[] = [];
  private readonly index = new Map<string, number>();
  /** Peers with fewer than `degree` links, for uniform draws. */
  private readonly open: string[] = [];
  private readonly openIndex = new Map<string, number>();
  private readonly rng: Rng;

  constructor(
    readonly degree: number,
    seed: number,
  ) {
    if (!(degree >= 1)) throw new RangeError(`a peer needs at least one neighbour, got ${degree}`);
    this.rng = new Rng(seed);
  }

  get size(): number {
    return this.peers.length;
  }

  has(address: string): boolean {
    return this.links.has(address);
  }

  /** A peer's neighbours, sorted (empty for an unknown peer). */
  neighboursOf(address: string): string[] {
    return [...(this.links.get(address) ?? [])].sort();
  }

  degreeOf(address: string): number {
    return this.links.get(address)?.size ?? 0;
  }

  areLinked(a: string, b: string): boolean {
    return this.links.get(a)?.has(b) ?? false;
  }

  /** Adds a peer and links it; the peers whose set changed (the new one included). */
  add(address: string): Set<string> {
    const changed = new Set<string>([address]);
    if (this.links.has(address)) return changed;
    this.links.set(address, new Set());
    this.index.set(address, this.peers.length);
    this.peers.push(address);
    this.markOpen(address);
    if (this.degree === Infinity) {
      for (const p of this.peers) if (p !== address) this.link(address, p, changed);
      return changed;
    }
    this.fill(address, changed);
    return changed;
  }

  /** Removes a peer; its neighbours link with each other, then are topped up. The peers whose set changed. */
  remove(address: string): Set<string> {
    const changed = new Set<string>();
    const mine = this.links.get(address);
    if (!mine) return changed;
    const orphans = [...mine].sort();
    for (const n of orphans) {
      this.links.get(n)!.delete(address);
      this.markOpen(n);
      changed.add(n);
    }
    this.links.delete(address);
    this.dropFrom(this.peers, this.index, address);
    this.dropFrom(this.open, this.openIndex, address);
    if (this.degree === Infinity) return changed;
    // The orphans were linked through the leaver: linking them pairwise keeps that path.
    for (let i = 0; i < orphans.length; i++) {
      for (let j = i + 1; j < orphans.length && this.degreeOf(orphans[i]) < this.degree; j++) {
        const a = orphans[i];
        const b = orphans[j];
        if (this.degreeOf(b) < this.degree && !this.areLinked(a, b)) this.link(a, b, changed);
      }
    }
    for (const n of orphans) this.fill(n, changed);
    return changed;
  }

  /** Links `p` until it has its share: min(degree, others), as far as free slots or splits allow. */
  private fill(p: string, changed: Set<string>): void {
    const want = Math.min(this.degree, this.peers.length - 1);
    while (this.degreeOf(p) < want) {
      const q = this.pickOpen(p);
      if (q !== null) {
        this.link(p, q, changed);
        continue;
      }
      // Nobody has a free slot: split a link u–v into u–p–v (needs two free slots of p's).
      if (want - this.degreeOf(p) < 2 || !this.split(p, changed)) return;
    }
  }

  /** A peer with a free slot that `p` is not linked to: the least linked of a few drawn, else a scan. */
  private pickOpen(p: string): string | null {
    let best: string | null = null;
    let found = 0;
    for (let i = 0; i < DRAWS && found < CHOICES && this.open.length > 0; i++) {
      const q = this.open[this.rng.nextU32() % this.open.length];
      if (q === p || this.areLinked(p, q)) continue;
      found++;
      if (best === null || this.degreeOf(q) < this.degreeOf(best)) best = q;
    }
    if (best !== null) return best;
    for (const q of this.open) if (q !== p && !this.areLinked(p, q)) return q;
    return null;
  }

  /** Replaces a random link u–v (neither end linked to p) with u–p and p–v. */
  private split(p: string, changed: Set<string>): boolean {
    for (let i = 0; i < DRAWS; i++) {
      const u = this.peers[this.rng.nextU32() % this.peers.length];
      if (u === p || this.areLinked(p, u)) continue;
      const ns = [...this.links.get(u)!].filter((v) => v !== p && !this.areLinked(p, v));
      if (ns.length === 0) continue;
      const v = ns[this.rng.nextU32() % ns.length];
      this.links.get(u)!.delete(v);
      this.links.get(v)!.delete(u);
      this.link(p, u, changed);
      this.link(p, v, changed);
      return true;
    }
    return false;
  }

  private link(a: string, b: string, changed: Set<string>): void {
    this.links.get(a)!.add(b);
    this.links.get(b)!.add(a);
    changed.add(a);
    changed.add(b);
    for (const x of [a, b]) if (this.degreeOf(x) >= this.degree) this.dropFrom(this.open, this.openIndex, x);
  }

  private markOpen(p: string): void {
    if (this.degreeOf(p) < this.degree && !this.openIndex.has(p)) {
      this.openIndex.set(p, this.open.length);
      this.open.push(p);
    }
  }

  private dropFrom(list: string[], index: Map<string, number>, p: string): void {
    const i = index.get(p);
    if (i === undefined) return;
    const last = list.pop()!;
    if (last !== p) {
      list[i] = last;
      index.set(last, i);
    }
    index.delete(p);
  }
}
