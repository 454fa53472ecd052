// What the simulated contributors share in one process: the link model, who holds which
// committed update (so a peer can fetch from a neighbour), one real decode per distinct
// update (every peer then waits its measured time: N×K decodes of the same bytes in one
// process would measure this machine, not the protocol) and the per-round counters the
// report reads.
import type { LinkModel } from './link-model.ts';
import type { SimBucket } from './sim-bucket.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { decodeUpdate } from '../sparseloco/wire.ts';
import { parameterLayout, preset } from '../model/config.ts';
import { configHash } from '../model/identity.ts';

/** The coordinator (and its update store) in the link model: every peer reaches it. */
export const COORDINATOR_NODE = -1;

export interface PeerRoundBytes {
  /** Update bytes: own update to the store, plus what it served to neighbours. */
  up: number;
  /** Update bytes: the K committed, from neighbours or the store. */
  down: number;
  /** Updates held at once (its own plus those fetched and not yet applied). */
  held: number;
  /** Updates it served to neighbours. */
  served: number;
}

export class SimContext {
  /** round → hash → peer index → when it holds that update (ms). */
  private readonly holders = new Map<number, Map<string, Map<number, number>>>();
  private readonly decodes = new Map<string, number>();
  /**
   * hash → how to get the payload, from its sender (its own update, remade from its recipe) or
   * a store fetch: what the one real decode reads. Bytes are made on demand, never kept: a
   * round's N updates of 18.6 MB (1b) would not fit in memory.
   */
  private readonly payloads = new Map<string, { round: number; payload: () => Uint8Array; envelopeBytes: number }>();
  /** round → peer index → bytes. */
  readonly bytes = new Map<number, Map<number, PeerRoundBytes>>();
  /** round → control bytes (JSON both ways, plus commit and checkpoint reads over HTTP). */
  readonly control = new Map<number, number>();
  /** round → the part of `control` read over HTTP (catch-up: stored commits, checkpoints). */
  readonly controlHttp = new Map<number, number>();
  /** round → fingerprints of θ_start(round + 1) the peers reached after applying the commit of round. */
  readonly fingerprints = new Map<number, Map<number, string>>();
  /** round → updates fetched from the store (over HTTP) and from neighbours (modelled). */
  readonly sources = new Map<number, { store: number; neighbour: number }>();
  /** The round whose traffic is being counted (the round in progress, or the next). */
  currentRound = 0;
  /** The modelled bucket the coordinator's updates go through (--store bucket), or null (its own store). */
  bucket: SimBucket | null = null;
  private readonly layout;
  private readonly hash;

  constructor(
    readonly config: RunConfig,
    readonly links: LinkModel,
    readonly http: string,
    readonly now: () => number = Date.now,
  ) {
    const cfg = preset(config.model);
    this.layout = parameterLayout(cfg);
    this.hash = configHash(cfg);
  }

  peerBytes(round: number, peer: number): PeerRoundBytes {
    let r = this.bytes.get(round);
    if (!r) this.bytes.set(round, (r = new Map()));
    let b = r.get(peer);
    if (!b) r.set(peer, (b = { up: 0, down: 0, held: 0, served: 0 }));
    return b;
  }

  countControl(bytes: number, over: 'ws' | 'http' = 'ws'): void {
    this.control.set(this.currentRound, (this.control.get(this.currentRound) ?? 0) + bytes);
    if (over === 'http') this.controlHttp.set(this.currentRound, (this.controlHttp.get(this.currentRound) ?? 0) + bytes);
  }

  countSource(round: number, from: 'store' | 'neighbour'): void {
    let s = this.sources.get(round);
    if (!s) this.sources.set(round, (s = { store: 0, neighbour: 0 }));
    s[from]++;
  }

  /** `peer` holds the update `hash` of `round` from time `at` on (its own once accepted, or one it fetched). */
  hold(round: number, hash: string, peer: number, at: number): void {
    let r = this.holders.get(round);
    if (!r) this.holders.set(round, (r = new Map()));
    let h = r.get(hash);
    if (!h) r.set(hash, (h = new Map()));
    if (!h.has(peer)) h.set(peer, at);
  }

  /**
   * Of `candidates`, one that holds `hash` by `now`, can link with `peer` and has served
   * fewer than K updates this round (so a peer's upload stays ≤ K + 1 updates: its own and K
   * served, whatever N is): the one whose uplink frees first.
   */
  source(round: number, hash: string, peer: number, candidates: Iterable<number>, now: number): number | null {
    const h = this.holders.get(round)?.get(hash);
    if (!h) return null;
    let best: number | null = null;
    for (const c of candidates) {
      const at = h.get(c);
      if (at === undefined || at > now || !this.links.canLink(peer, c) || this.peerBytes(round, c).served >= this.config.gatherK) continue;
      if (best === null || this.links.upFreeAt(c) < this.links.upFreeAt(best)) best = c;
    }
    return best;
  }

  /** The payload of `hash` can be had in this process (its sender's own, or fetched from the store). */
  keepPayload(round: number, hash: string, payload: () => Uint8Array, envelopeBytes: number): void {
    if (!this.payloads.has(hash)) this.payloads.set(hash, { round, payload, envelopeBytes });
  }

  /** The signed envelope's size of an update held in this process (what a neighbour sends). */
  envelopeBytes(hash: string): number {
    return this.payloads.get(hash)?.envelopeBytes ?? 0;
  }

  /** Peers by address (for the neighbour lists the coordinator sends). */
  readonly peerIndex = new Map<string, number>();

  indexOf(address: string): number | null {
    return this.peerIndex.get(address) ?? null;
  }

  hasPayload(hash: string): boolean {
    return this.payloads.has(hash);
  }

  /** Decodes an update once (validating it as a replica would) and says how long that took, ms (making its bytes, the simulation's own cost, not counted). */
  decodeMs(round: number, hash: string): number {
    let ms = this.decodes.get(hash);
    if (ms === undefined) {
      const kept = this.payloads.get(hash);
      if (!kept) throw new Error(`update ${hash.slice(0, 12)} of round ${round} is not in this process`);
      const payload = kept.payload();
      const t0 = performance.now();
      decodeUpdate(payload, { configHash: this.hash, round, layout: this.layout, maxBytes: this.config.maxMessageBytes });
      this.decodes.set(hash, (ms = performance.now() - t0));
    }
    return ms;
  }

  /** Forgets rounds before `round` (holders), keeping memory bounded over a long run. */
  forget(round: number): void {
    for (const r of this.holders.keys()) if (r < round) this.holders.delete(r);
    for (const [h, p] of this.payloads) {
      if (p.round >= round) continue;
      this.payloads.delete(h);
      this.decodes.delete(h);
    }
  }

  noteFingerprint(round: number, peer: number, fingerprint: string): void {
    let r = this.fingerprints.get(round);
    if (!r) this.fingerprints.set(round, (r = new Map()));
    r.set(peer, fingerprint);
  }
}
