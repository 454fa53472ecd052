// An Exchange (src/contributor/exchange.ts) in-process, on doubles: a clock the test moves by
// hand, a replica whose steps take fake time, a mesh and a coordinator link that record what
// is sent, and an Inbox in front of it as in the contributor. The test plays the coordinator
// (its messages, as Contributor.onServer hands them over) and the neighbours (envelopes
// sealed with their hotkeys: updates, and have/want/refuse of the gather exchange). Real
// envelopes and signatures; no GPU, WebRTC or sockets.
import { openEnvelope, peekEnvelope, sealEnvelope, type MessageKind } from '../../src/net/envelope.ts';
import { encodePeerMessage, parsePeerMessage, type PeerMessage } from '../../src/protocol/peer-messages.ts';
import { decodePiece, encodePiece, envelopeRoot, listPieces, pieceRange } from '../../src/net/pieces.ts';
import { toHex } from '../../src/base/hex.ts';
import type { ClientMessage, CommitEntry, ServerMessage } from '../../src/protocol/messages.ts';
import type { HttpClient } from '../../src/protocol/http.ts';
import { parseRunConfig, type RunConfig } from '../../src/protocol/run-config.ts';
import type { ContributorEvent, StopMode } from '../../src/contributor/events.ts';
import { Exchange, type ExchangeReplica, type SwarmCounts } from '../../src/contributor/exchange.ts';
import { Inbox, Refusals } from '../../src/contributor/inbox.ts';
import type { CommitInfo } from '../../src/contributor/sync.ts';
import { Traffic } from '../../src/contributor/traffic.ts';
import { Changes, Serial, type Clock } from '../../src/contributor/waiting.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
export { devKeys, type Keys } from '../coordinator/helpers.ts';

export const RUN = 'exchange-test';
const HTTP_BASE = 'http://coordinator.test';

/** Timers fire only when the test advances the clock. */
export class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fire: () => void }[] = [];

  now = (): number => this.t;

  sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = { at: this.t + ms, fire: () => done() };
      const done = () => {
        this.timers = this.timers.filter((x) => x !== timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.timers.push(timer);
      signal?.addEventListener('abort', done, { once: true });
    });

  /** Moves time on by `ms`, firing each timer due on the way (in time order) and letting the code it wakes run. */
  async advance(ms: number): Promise<void> {
    await settle(); // what the last message woke registers its timers first
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      due.fire();
      await settle();
    }
    this.t = end;
    await settle();
  }

  get pending(): number {
    return this.timers.length;
  }
}

/** Lets every promise chain that can move, move (real macrotasks: the fake clock holds no real timer). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A replica whose inner step takes STEP_MS of the fake clock; its "update" names the round. */
export class FakeReplica implements ExchangeReplica {
  static readonly STEP_MS = 500;
  readonly stepsTaken: { round: number; step: number }[] = [];
  discarded = 0;
  readonly applied: { round: number; payloads: Uint8Array[] }[] = [];
  /** Payloads whose first byte is this are refused by checkUpdate (a corrupt update). */
  static readonly CORRUPT = 0xba;

  constructor(private readonly clock: FakeClock) {}

  async trainStep(round: number, step: number) {
    await this.clock.sleep(FakeReplica.STEP_MS);
    this.stepsTaken.push({ round, step });
    return { step: step + 1, loss: 3 - 0.1 * step, lr: 1e-3, gradNorm: 1, tokens: 256, ms: FakeReplica.STEP_MS };
  }

  discardRound(): void {
    this.discarded++;
  }

  async compress(round: number): Promise<Uint8Array> {
    return updatePayload(round, 0xa1);
  }

  apply(payloads: readonly Uint8Array[], round: number) {
    this.applied.push({ round, payloads: [...payloads] });
    // An empty payload (FORGED_PAYLOAD) is refused, as the real decoder refuses it ('truncated').
    const rejected = payloads.flatMap((p, index) => (p.length === 0 ? [{ index, reason: 'truncated', message: 'an empty update' }] : []));
    return { accepted: payloads.length - rejected.length, rejected };
  }

  async weightsHash(): Promise<string> {
    return `weights-after-${this.applied.length}`;
  }

  checkUpdate(payload: Uint8Array): { reason: string; message: string } | null {
    return payload[0] === FakeReplica.CORRUPT ? { reason: 'corrupt', message: 'the update does not decode' } : null;
  }
}

/** A peer's update payload for `round` (any bytes do: the fake replica only checks the first). */
export function updatePayload(round: number, tag: number): Uint8Array {
  return new Uint8Array([tag, round, 7, 7, 7]);
}

/** A piece we served: which update (payload hash), which piece, its bytes. */
export interface SentPiece {
  hash: string;
  index: number;
  data: Uint8Array;
}

/** What went to one neighbour: a gather message, or a piece of an update (an answer to its want). */
export type Sent = { to: string; gather: PeerMessage } | { to: string; piece: SentPiece };

/** The mesh: linked neighbours, and every send recorded (with the bytes, as a real mesh counts them). */
export class FakeMesh {
  readonly linked = new Set<string>();
  readonly sends: Sent[] = [];
  bytesSent = 0;
  /** While set, sends of pieces stay under way until `finish()` (a slow uplink). */
  slow = false;
  private underWay: (() => void)[] = [];
  async send(to: string, envelope: Uint8Array): Promise<boolean> {
    if (!this.linked.has(to)) return false;
    this.bytesSent += envelope.length;
    const { header, payload } = openEnvelope(envelope, { run: RUN, maxPayloadBytes: 64e6 });
    if (header.kind === 'gather') this.sends.push({ to, gather: parsePeerMessage(payload)! });
    else if (header.kind === 'piece') this.sends.push({ to, piece: decodePiece(payload)! });
    else throw new Error(`the gather sent a '${header.kind}' envelope to a neighbour`);
    if (this.slow && header.kind === 'piece') await new Promise<void>((r) => this.underWay.push(r));
    return true;
  }
  /** Every piece send under way completes. */
  finish(): void {
    for (const r of this.underWay.splice(0)) r();
  }
  isConnected(addr: string): boolean {
    return this.linked.has(addr);
  }
  get connectedPeers(): string[] {
    return [...this.linked].sort();
  }
  stats() {
    return { bytesSent: this.bytesSent, bytesReceived: 0, dropped: 0, links: this.linked.size };
  }
  /** The gather messages sent so far (to whom, what). */
  get gathers(): { to: string; gather: PeerMessage }[] {
    return this.sends.filter((x): x is { to: string; gather: PeerMessage } => 'gather' in x);
  }
  get pieces(): { to: string; piece: SentPiece }[] {
    return this.sends.filter((x): x is { to: string; piece: SentPiece } => 'piece' in x);
  }
  /** The wants and want-lists sent to `to` so far. */
  wantsTo(to: string): Extract<PeerMessage, { type: 'want' | 'want-list' }>[] {
    return this.gathers.flatMap((x) => (x.to === to && (x.gather.type === 'want' || x.gather.type === 'want-list') ? [x.gather] : []));
  }
}

/** The coordinator's socket, as the exchange uses it. */
export class FakeCoordinatorLink {
  readonly text: ClientMessage[] = [];
  readonly binary: Uint8Array[] = [];
  send(m: ClientMessage): void {
    this.text.push(m);
  }
  sendBinary(bytes: Uint8Array): boolean {
    this.binary.push(bytes);
    return true;
  }
}

/** The coordinator's HTTP: updates it holds, by "round/sender"; every GET recorded (a ranged one as "url bytes=start-end"). */
export class FakeHttp implements HttpClient {
  readonly updates = new Map<string, Uint8Array>();
  readonly gets: string[] = [];
  async get(url: string): Promise<Uint8Array | null> {
    this.gets.push(url);
    return this.find(url);
  }
  async getRange(url: string, start: number, end: number): Promise<Uint8Array | null> {
    this.gets.push(`${url} bytes=${start}-${end}`);
    return this.find(url)?.subarray(start, end) ?? null;
  }
  private find(url: string): Uint8Array | null {
    const m = /\/update\/(\d+)\/(\w+)$/.exec(url);
    return (m && this.updates.get(`${m[1]}/${m[2]}`)) ?? null;
  }
  async put(): Promise<{ status: number; text: string }> {
    return { status: 200, text: '' };
  }
}

export interface Harness {
  exchange: Exchange;
  inbox: Inbox;
  clock: FakeClock;
  replica: FakeReplica;
  mesh: FakeMesh;
  link: FakeCoordinatorLink;
  http: FakeHttp;
  refusals: Refusals;
  events: ContributorEvent[];
  committed: CommitInfo[];
  config: RunConfig;
  /** Our neighbours as the coordinator lists them. */
  peers: string[];
  state: { stopMode: StopMode | null; disconnected: boolean; swarm: SwarmCounts | null };
  /** A control message from the coordinator, handed over as Contributor.onServer does. */
  hear(m: ServerMessage): void;
  /** A message from a peer's link. */
  fromPeer(link: Hotkey, bytes: Uint8Array): void;
  /** A have/want/refuse from a neighbour, signed by it. */
  gatherFrom(link: Hotkey, m: PeerMessage): void;
  /** Neighbour `link` answers what we asked it for `env` (its list, its pieces) and goes on answering until we ask nothing more: how many answers. */
  serve(link: Hotkey, env: Uint8Array): Promise<number>;
  of<T extends ContributorEvent['event']>(event: T): Extract<ContributorEvent, { event: T }>[];
}

export function makeExchange(me: Hotkey, overrides: Record<string, unknown> = {}): Harness {
  const config = parseRunConfig({ run: RUN, innerSteps: 3, minMembers: 2, batch: 2, seq: 16, ...overrides });
  const clock = new FakeClock();
  const replica = new FakeReplica(clock);
  const mesh = new FakeMesh();
  const link = new FakeCoordinatorLink();
  const http = new FakeHttp();
  const events: ContributorEvent[] = [];
  const onEvent = (e: ContributorEvent) => events.push(e);
  const refusals = new Refusals(onEvent);
  const committed: CommitInfo[] = [];
  const peers: string[] = [];
  /** Wants each neighbour has answered through serve(), by its address. */
  const servedWants = new Map<string, number>();
  const state = { stopMode: null as StopMode | null, disconnected: false, swarm: null as SwarmCounts | null };
  const changes = new Changes(clock, () => state.stopMode === 'now' || state.disconnected);
  const work = new Serial();
  const exchange = new Exchange({
    key: me, clock, changes, http, httpBase: HTTP_BASE,
    config: () => config,
    stage: () => 0,
    replica: () => replica,
    mesh: () => mesh,
    coordinator: () => link,
    swarm: () => state.swarm,
    stopMode: () => state.stopMode,
    disconnected: () => state.disconnected,
    moving: () => false,
    trainPipelined: () => Promise.reject(new Error('not a pipelined run')),
    committed: async (commit) => void committed.push(commit),
    exclusive: (fn) => work.run(fn),
    onEvent, refusals, traffic: new Traffic(),
  });
  const inbox = new Inbox({
    config: () => config,
    peers: () => peers,
    piece: (from, header, payload) => exchange.gather.admitPiece(from, header, payload),
    gather: (from, payload) => exchange.gather.admitMessage(from, payload),
    handoff: () => ({ reason: 'unexpected-kind', message: 'no pipeline here' }),
    weightsRequest: () => {},
    weights: () => false,
    checkpoint: () => ({ reason: 'unexpected-kind', message: 'no checkpoint fetch here' }),
    checkpointRange: () => ({ reason: 'unexpected-kind', message: 'no checkpoint fetch here' }),
  }, refusals);
  return {
    exchange, inbox, clock, replica, mesh, link, http, refusals, events, committed, config, peers, state,
    hear(m) {
      if (m.type === 'round') exchange.announce(m);
      else if (m.type === 'commit') exchange.commitHeard(m);
      else if (m.type === 'accepted') exchange.confirmed(m.round, m.hash);
      else if (m.type === 'swarm') state.swarm = { peers: m.peers, ready: m.ready, need: m.need };
      changes.notify();
    },
    fromPeer(from, bytes) {
      inbox.admit(from.address, bytes);
    },
    gatherFrom(from, m) {
      inbox.admit(from.address, sealEnvelope(from, { kind: 'gather', run: RUN, round: m.round, stage: 0 }, encodePeerMessage(m)));
    },
    async serve(from, env) {
      const hash = toHex(peekEnvelope(env).payloadHash);
      const list = listPieces(env);
      let answered = 0;
      for (;;) {
        const wants = mesh.wantsTo(from.address).filter((w) => w.hash === hash).slice(servedWants.get(from.address) ?? 0);
        if (wants.length === 0) return answered;
        servedWants.set(from.address, (servedWants.get(from.address) ?? 0) + wants.length);
        for (const w of wants) {
          if (w.type === 'want-list') this.gatherFrom(from, { type: 'list', round: w.round, hash, bytes: list.bytes, pieceBytes: list.pieceBytes, pieces: list.hashes });
          else {
            const at = pieceRange(list, w.piece);
            inbox.admit(from.address, sealEnvelope(from, { kind: 'piece', run: RUN, round: w.round, stage: 0 }, encodePiece(hash, w.piece, env.subarray(at.start, at.end))));
          }
          answered++;
        }
        await settle();
      }
    },
    of: (event) => events.filter((e) => e.event === event) as never,
  };
}

/** A 'piece' envelope from `key`: piece `index` of `env` (or `data` in its place). */
export function pieceEnvelope(key: Hotkey, round: number, env: Uint8Array, index: number, data?: Uint8Array): Uint8Array {
  const at = pieceRange(listPieces(env), index);
  return sealEnvelope(key, { kind: 'piece', run: RUN, round, stage: 0 }, encodePiece(toHex(peekEnvelope(env).payloadHash), index, data ?? env.subarray(at.start, at.end)));
}

/** The coordinator's `round`, sent to members only; a run of one stage lists nobody. */
export function announce(h: Harness, round: number, memberCount: number): void {
  h.hear({ type: 'round', round, memberCount, members: [], stages: [], seed: 1, deadline: h.clock.t + 60_000, tokensTrained: round * 1000 });
}

/** A signed envelope of this run from `key`. */
export function envelope(key: Hotkey, round: number, payload: Uint8Array, kind: MessageKind = 'update', run = RUN): Uint8Array {
  return sealEnvelope(key, { kind, run, round, stage: 0 }, payload);
}

/** The commit entry for an update envelope (its sender, payload hash and piece root), as the coordinator makes it. */
export function entry(key: Hotkey, env: Uint8Array): CommitEntry {
  return { sender: key.address, hash: toHex(peekEnvelope(env).payloadHash), stage: 0, pieces: envelopeRoot(env) };
}
