// The gather exchange, one contributor's side: after a round's commit every replica needs
// exactly the K committed updates. Each is taken from what we hold (our own), else from a
// neighbour that announced it (`have`), asked with a `want` and answered with the author's
// own signed envelope, else from the run's update store (GET /update/<round>/<sender>).
// Whatever arrives is checked against the commit's payload hash before it is kept.
//
// Bounds, whatever the swarm's size N:
// - upload: our update once to the store, plus at most servingCap(K) = 2(K+1) updates served
//   to neighbours per round (a want beyond it is refused 'busy': the asker moves on);
// - memory: our own update and the round's committed K (the previous round's are dropped
//   when a new round's gather starts, and nothing we were not asked for is kept);
// - waits: a peer sends at most MAX_CONCURRENT_SERVES updates at once and refuses wants
//   beyond that at once; a neighbour that does not answer a want within WANT_TIMEOUT_MS is
//   skipped; an update nobody announced is fetched from the store after HAVE_WAIT_MS.
// Bad bytes from a neighbour are refused and counted (Refusals), never fatal.
// Environment-free; a state machine on the host's clock (test/contributor/gather.test.ts).
import { SIGNATURE_BYTES, openEnvelope, peekEnvelope, sealEnvelope, type EnvelopeHeader } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import { toHex } from '../base/hex.ts';
import type { CommitEntry } from '../protocol/messages.ts';
import type { HttpClient } from '../protocol/http.ts';
import { encodePeerMessage, parsePeerMessage, MAX_HAVE_HASHES, type PeerMessage, type RefuseReason } from '../protocol/peer-messages.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { Hotkey } from '../wallet/keys.ts';
import type { Refusal } from './inbox.ts';
import { SyncError } from './sync.ts';
import type { Traffic } from './traffic.ts';
import type { Changes, Clock } from './waiting.ts';

/**
 * How long a neighbour gets to answer a want before we try another: a 1b update (18.65 MB) takes
 * ~7.5 s on a 20 Mbit/s uplink, and a server sends at most MAX_CONCURRENT_SERVES at once.
 */
export const WANT_TIMEOUT_MS = 30_000;
/**
 * Updates a peer sends at once; a want beyond it is refused 'busy' at once rather than queued
 * behind them (the asker tries another holder or the store instead of waiting out its timeout).
 */
export const MAX_CONCURRENT_SERVES = 2;
/** How long an update no neighbour has announced waits for a `have` before we fetch it from the store. */
export const HAVE_WAIT_MS = 2000;
/** A peer serves at most this many updates per K+1 of a round: its upload stays bounded by K, not N. */
export const SERVE_FACTOR = 2;

/** Updates a peer serves per round at most: 2(K+1). */
export function servingCap(gatherK: number): number {
  return SERVE_FACTOR * (gatherK + 1);
}

export type GatherMesh = Pick<PeerMesh, 'send' | 'isConnected' | 'connectedPeers'>;

export interface GatherHost {
  key: Hotkey;
  clock: Clock;
  changes: Changes;
  http: HttpClient;
  httpBase: string;
  config(): RunConfig;
  stage(): number;
  mesh(): GatherMesh;
  /** The round whose θ_start we hold, and the coordinator's: messages outside [held − 1, coordRound + 1] are stale. */
  held(): number;
  coordRound(): number;
  traffic: Traffic;
}

interface Held {
  sender: string;
  envelope: Uint8Array;
  payload: Uint8Array;
}

/** One round's side of the exchange. */
class RoundGather {
  /** Updates we hold, by payload hash: our own and those gathered for the commit. */
  readonly held = new Map<string, Held>();
  /** Who announced what: payload hash → neighbours. */
  readonly holders = new Map<string, Set<string>>();
  /** Hashes each neighbour announced (a flood bound). */
  readonly announcedBy = new Map<string, number>();
  /** Updates we want: hash → the neighbours asked. The hash is the commit's: bytes that match it are the committed payload, whoever signed them. */
  readonly wanted = new Map<string, { asked: Set<string> }>();
  /** "neighbour/hash" of wants refused. */
  readonly refused = new Set<string>();
  /** Wants we sent to each neighbour (to spread our asks), and every "neighbour/hash" asked. */
  readonly askedOf = new Map<string, number>();
  readonly askedEver = new Set<string>();
  served = 0;
  refusedBusy = 0;
}

/** What gathering a commit's updates took. */
export interface Gathered {
  payloads: Uint8Array[];
  fromPeers: number;
  fromStore: number;
}

export class Gather {
  private readonly rounds = new Map<number, RoundGather>();
  /** Updates being sent to neighbours now. */
  private serving = 0;

  constructor(private readonly h: GatherHost) {}

  /** Updates held now, every round together (at most K + 1 once a commit's gather starts). */
  get heldCount(): number {
    let n = 0;
    for (const g of this.rounds.values()) n += g.held.size;
    return n;
  }

  /** Updates of round r served to neighbours, and wants refused because the cap was spent. */
  servedIn(r: number): { served: number; refusedBusy: number } {
    const g = this.rounds.get(r);
    return { served: g?.served ?? 0, refusedBusy: g?.refusedBusy ?? 0 };
  }

  private roundOf(r: number): RoundGather {
    let g = this.rounds.get(r);
    if (!g) this.rounds.set(r, (g = new RoundGather()));
    return g;
  }

  /** Forgets every round before `r`. */
  private dropBefore(r: number): void {
    for (const k of [...this.rounds.keys()]) if (k < r) this.rounds.delete(k);
  }

  // ---- our own update ----

  /** Our update of round r, as sent to the store (its envelope); offered to neighbours once the store accepts it. */
  own(r: number, hash: string, envelope: Uint8Array): void {
    this.dropBefore(r - 1); // the previous round's committed K stay a round longer: slower neighbours may still want them
    // The payload as a view into the envelope: one copy of the update in memory, not two.
    const { payloadLength } = peekEnvelope(envelope);
    const end = envelope.length - SIGNATURE_BYTES;
    this.roundOf(r).held.set(hash, { sender: this.h.key.address, envelope, payload: envelope.subarray(end - payloadLength, end) });
  }

  /** The store holds our update of round r: tell our neighbours; says how many were told (0 if it is not ours). */
  accepted(r: number, hash: string): number {
    if (!this.rounds.get(r)?.held.has(hash)) return 0;
    const peers = this.h.mesh().connectedPeers;
    for (const p of peers) this.send(p, { type: 'have', round: r, hashes: [hash] });
    return peers.length;
  }

  /** A neighbour's link came up: what we hold of the current rounds, so it can ask us. */
  linkUp(peer: string): void {
    for (const [round, g] of this.rounds) {
      const hashes = [...g.held.keys()].slice(0, MAX_HAVE_HASHES);
      if (hashes.length > 0) this.send(peer, { type: 'have', round, hashes });
    }
  }

  // ---- a commit's updates ----

  /** Exactly the committed updates of round r, in the commit's order; throws SyncError when the store lacks one we could not get elsewhere. */
  async collect(r: number, entries: readonly CommitEntry[]): Promise<Gathered> {
    this.dropBefore(r);
    const g = this.roundOf(r);
    const own = this.h.key.address;
    // Our own update stays only if committed: we hold the round's K and nothing else.
    for (const [hash, u] of g.held) if (u.sender === own && !entries.some((e) => e.hash === hash)) g.held.delete(hash);
    let fromPeers = 0;
    let fromStore = 0;
    // One fetch per distinct payload (a copier's re-signed update has its original's hash).
    const distinct = [...new Map(entries.map((e) => [e.hash, e])).values()];
    await Promise.all(
      distinct.map(async (e) => {
        const source = await this.obtain(r, g, e);
        if (source === 'peer') fromPeers++;
        if (source === 'store') fromStore++;
      }),
    );
    return { payloads: entries.map((e) => g.held.get(e.hash)!.payload), fromPeers, fromStore };
  }

  /** One committed update into `g.held`: says where it came from. */
  private async obtain(r: number, g: RoundGather, e: CommitEntry): Promise<'held' | 'peer' | 'store'> {
    if (g.held.has(e.hash)) return 'held';
    const { changes, clock } = this.h;
    g.wanted.set(e.hash, { asked: new Set() });
    const haveDeadline = clock.now() + HAVE_WAIT_MS;
    try {
      for (;;) {
        const peer = this.pickHolder(g, e.hash);
        if (peer) {
          if (await this.ask(r, g, e.hash, peer)) return 'peer';
          continue;
        }
        const left = haveDeadline - clock.now();
        if (left <= 0 || !(await changes.until(() => g.held.has(e.hash) || this.pickHolder(g, e.hash) !== null, left))) break;
        if (g.held.has(e.hash)) return 'peer'; // a late answer to an earlier want
      }
      if (g.held.has(e.hash)) return 'peer';
      await this.fetchFromStore(r, g, e);
      return 'store';
    } finally {
      g.wanted.delete(e.hash);
      if (g.held.has(e.hash)) this.announce(r, e.hash);
    }
  }

  /** A connected neighbour that announced `hash` and was not asked yet, the one we asked least. */
  private pickHolder(g: RoundGather, hash: string): string | null {
    const asked = g.wanted.get(hash)?.asked;
    const mesh = this.h.mesh();
    const candidates = [...(g.holders.get(hash) ?? [])].filter((p) => !asked?.has(p) && mesh.isConnected(p)).sort();
    candidates.sort((a, b) => (g.askedOf.get(a) ?? 0) - (g.askedOf.get(b) ?? 0));
    return candidates[0] ?? null;
  }

  /** Wants `hash` of `peer`: true once it arrived (from anyone), false when refused, unanswered or the link dropped. */
  private async ask(r: number, g: RoundGather, hash: string, peer: string): Promise<boolean> {
    g.wanted.get(hash)!.asked.add(peer);
    g.askedOf.set(peer, (g.askedOf.get(peer) ?? 0) + 1);
    g.askedEver.add(`${peer}/${hash}`);
    if (!this.send(peer, { type: 'want', round: r, hash })) return false;
    const mesh = this.h.mesh();
    await this.h.changes.until(() => g.held.has(hash) || g.refused.has(`${peer}/${hash}`) || !mesh.isConnected(peer), WANT_TIMEOUT_MS);
    return g.held.has(hash);
  }

  /** A committed update from the store, checked against the commit. */
  private async fetchFromStore(r: number, g: RoundGather, e: CommitEntry): Promise<void> {
    const config = this.h.config();
    const bytes = await this.h.http.get(`${this.h.httpBase}/update/${r}/${e.sender}`);
    if (!bytes) throw new SyncError(`the coordinator no longer has ${e.sender}'s update of round ${r}`);
    this.h.traffic.received(bytes.length);
    const { header, payload } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
    if (header.sender !== e.sender || header.round !== r || toHex(header.payloadHash) !== e.hash) throw new SyncError(`the coordinator's copy of ${e.sender}'s round-${r} update does not match its commit`);
    g.held.set(e.hash, { sender: e.sender, envelope: bytes, payload });
  }

  /** Tells our neighbours we hold `hash` of round r (they may ask us for it). */
  private announce(r: number, hash: string): void {
    for (const p of this.h.mesh().connectedPeers) this.send(p, { type: 'have', round: r, hashes: [hash] });
  }

  // ---- what neighbours send, admitted by the inbox ----

  /** An update envelope from neighbour `from` (signed by its author, checked): kept only if it answers one of our wants. */
  admitUpdate(from: string, header: EnvelopeHeader, envelope: Uint8Array, payload: Uint8Array): Refusal | null {
    const hash = toHex(header.payloadHash);
    const g = this.rounds.get(header.round);
    const want = g?.wanted.get(hash);
    if (!g || !want || !want.asked.has(from)) {
      // A late answer to a want we gave up on (we took it elsewhere meanwhile): no fault, dropped.
      if (g?.askedEver.has(`${from}/${hash}`)) return null;
      if (g?.held.has(hash)) return { reason: 'duplicate', message: `round ${header.round}'s update ${hash.slice(0, 12)} again` };
      return { reason: 'unasked', message: `an update of round ${header.round} we did not ask ${from} for` };
    }
    if (header.stage !== this.h.stage()) return { reason: 'wrong-stage', message: `an update of stage ${header.stage}; we hold stage ${this.h.stage()}` };
    g.held.set(hash, { sender: header.sender, envelope, payload });
    this.h.changes.notify();
    return null;
  }

  /** A neighbour's have/want/refuse (the payload of its signed 'gather' envelope). */
  admitMessage(from: string, payload: Uint8Array): Refusal | null {
    const m = parsePeerMessage(payload);
    if (!m) return { reason: 'gather-malformed', message: 'a gather message that does not parse' };
    const held = this.h.held();
    if (m.round > this.h.coordRound() + 1) return { reason: 'stale-round', message: `a '${m.type}' for round ${m.round}; we are at round ${held}` };
    switch (m.type) {
      case 'have':
        // A slower neighbour's news of a round we are past is no use, and no fault: ignored.
        return m.round + 1 < held ? null : this.heard(from, m.round, m.hashes);
      case 'want':
        this.serve(from, m.round, m.hash);
        return null;
      case 'refuse': {
        const g = this.rounds.get(m.round);
        if (!g?.wanted.get(m.hash)?.asked.has(from)) return { reason: 'unasked', message: `a refusal of a want we did not send ${from}` };
        g.refused.add(`${from}/${m.hash}`);
        this.h.changes.notify();
        return null;
      }
    }
  }

  private heard(from: string, round: number, hashes: readonly string[]): Refusal | null {
    const g = this.roundOf(round);
    const count = (g.announcedBy.get(from) ?? 0) + hashes.length;
    const most = this.h.config().gatherK + 1; // its own and the committed K
    if (count > most) return { reason: 'gather-flood', message: `${from} announced more than ${most} updates of round ${round}` };
    g.announcedBy.set(from, count);
    for (const hash of hashes) {
      const set = g.holders.get(hash) ?? new Set<string>();
      set.add(from);
      g.holders.set(hash, set);
    }
    this.h.changes.notify();
    return null;
  }

  /** Answers a want: the update's envelope while our serving cap lasts and few sends are under way, else a refusal at once. */
  private serve(to: string, round: number, hash: string): void {
    const g = this.rounds.get(round);
    const u = g?.held.get(hash);
    const refuse = (reason: RefuseReason) => this.send(to, { type: 'refuse', round, hash, reason });
    if (!g || !u) return void refuse('missing');
    if (g.served >= servingCap(this.h.config().gatherK) || this.serving >= MAX_CONCURRENT_SERVES) {
      g.refusedBusy++;
      return void refuse('busy');
    }
    g.served++;
    this.serving++;
    void this.h.mesh().send(to, u.envelope).finally(() => this.serving--);
  }

  /** A gather message to one neighbour (fire and forget: the link keeps the order); false when not linked. */
  private send(to: string, m: PeerMessage): boolean {
    const mesh = this.h.mesh();
    if (!mesh.isConnected(to)) return false;
    const envelope = sealEnvelope(this.h.key, { kind: 'gather', run: this.h.config().run, round: m.round, stage: this.h.stage() }, encodePeerMessage(m));
    void mesh.send(to, envelope);
    return true;
  }
}
