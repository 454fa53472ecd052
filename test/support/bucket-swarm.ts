// A small real swarm for the update store: a coordinator served over HTTP + WebSocket (the real
// server.ts and coordinator.ts, real clock), and N protocol clients over real WebSockets that,
// round after round, send a real signed SparseLoCo update of the 'tiny' model the way a
// contributor does (src/contributor/update-store-client.ts: the bucket's presigned PUT when
// offered, else the socket), then fetch every committed update the way gather.ts fetches from
// the store (GET /update/<round>/<sender>, redirects followed) and check it against the commit.
// What it measures: the coordinator's bytes on the wire per round (server.traffic()).
import WebSocket from 'ws';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { serveCoordinator, type CoordinatorServer } from '../../src/coordinator/server.ts';
import { CoordinatorStore } from '../../src/coordinator/state-store.ts';
import type { ObjectStore } from '../../src/coordinator/object-store.ts';
import { openEnvelope } from '../../src/net/envelope.ts';
import { toHex } from '../../src/base/hex.ts';
import { PROTOCOL_VERSION, joinChallenge, parseServerMessage, type ServerMessage } from '../../src/protocol/messages.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import { UpdateUploads, type UploadPath } from '../../src/contributor/update-store-client.ts';
import { Refusals } from '../../src/contributor/inbox.ts';
import { Traffic } from '../../src/contributor/traffic.ts';
import { systemClock } from '../../src/contributor/waiting.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { signedUpdate } from '../coordinator/helpers.ts';

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** One protocol client: every message queued, awaited by type. */
export class SwarmClient {
  readonly ws: WebSocket;
  readonly got: ServerMessage[] = [];
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;
  readonly refusals = new Refusals(() => {});
  readonly traffic = new Traffic();
  readonly uploads: UpdateUploads;

  constructor(
    url: string,
    readonly key: Hotkey,
  ) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data) => {
      const m = parseServerMessage(data.toString());
      if (!m) throw new Error(`malformed message from the coordinator: ${data.toString().slice(0, 200)}`);
      this.got.push(m);
      // As contributor.ts routes them.
      if (m.type === 'upload-url') this.uploads.offer(m);
      if (m.type === 'accepted') this.uploads.accepted(m.round);
      if (m.type === 'rejected') this.uploads.refused(m.what);
      for (const w of this.waiters.splice(0)) w();
    });
    this.uploads = new UpdateUploads({
      key,
      http: nodeHttpClient(30_000),
      clock: systemClock,
      refusals: this.refusals,
      traffic: this.traffic,
      coordinator: () => ({
        send: (m) => this.send(m),
        sendBinary: (bytes) => (this.ws.send(bytes), true),
      }),
    });
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  /** The first message of `type` matching `where`, waited for (up to `ms`). */
  async next<T extends ServerMessage['type']>(type: T, where: (m: Of<T>) => boolean = () => true, ms = 30_000): Promise<Of<T>> {
    const until = Date.now() + ms;
    for (;;) {
      const m = this.got.find((x): x is Of<T> => x.type === type && where(x as Of<T>));
      if (m) return m;
      if (Date.now() > until) throw new Error(`${this.key.address.slice(0, 8)}: no '${type}' within ${ms} ms; got ${this.got.map((x) => x.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** hello → challenge → join → welcome. */
  async join(): Promise<Of<'welcome'>> {
    await this.opened;
    this.send({ type: 'hello', version: PROTOCOL_VERSION });
    const c = await this.next('challenge');
    this.send({ type: 'join', address: this.key.address, signature: toHex(this.key.sign(joinChallenge(c.run, c.nonce))) });
    return this.next('welcome');
  }

  close(): void {
    this.ws.terminate();
  }
}

export interface SwarmRound {
  round: number;
  /** The coordinator's bytes on the wire during the round (sending, receiving). */
  coordinatorSent: number;
  coordinatorReceived: number;
  /** Where each member's update went. */
  paths: UploadPath[];
  /** Committed updates fetched by all members (from the bucket or the coordinator) and their bytes. */
  fetched: number;
  fetchedBytes: number;
  updateBytes: number;
  /** Each member's update envelope as it sent it (what it holds and would serve its neighbours), by address. */
  envelopes: Map<string, Uint8Array>;
}

export interface BucketSwarm {
  coordinator: Coordinator;
  store: CoordinatorStore;
  server: CoordinatorServer;
  clients: SwarmClient[];
  http: string;
  stop(): Promise<void>;
}

/** A served coordinator (bucket or disk store) and N joined clients. */
export async function startBucketSwarm(config: RunConfig, keys: Hotkey[], stateDir: string, bucket?: ObjectStore): Promise<BucketSwarm> {
  const store = new CoordinatorStore(stateDir);
  const coordinator = new Coordinator(config, store, { syncGraceMs: 0, bucket });
  const server = await serveCoordinator(coordinator, { port: 0, shard: new Uint8Array(16) });
  coordinator.start(50);
  const clients = keys.map((k) => new SwarmClient(server.url, k));
  await Promise.all(clients.map((c) => c.join()));
  return {
    coordinator, store, server, clients, http: `http://127.0.0.1:${server.port}`,
    async stop() {
      for (const c of clients) c.close();
      coordinator.stop();
      await server.close();
    },
  };
}

/** One round: every client synced at `round`, trains (a fixed real update), uploads, then fetches and checks the commit's updates. */
export async function swarmRound(s: BucketSwarm, config: RunConfig, round: number): Promise<SwarmRound> {
  const before = s.server.traffic();
  for (const c of s.clients) c.send({ type: 'synced', round, weightsHash: 'w'.repeat(64), stage: 0 });
  await Promise.all(s.clients.map((c) => c.next('round', (m) => m.round === round)));
  let updateBytes = 0;
  const envelopes = new Map<string, Uint8Array>();
  const paths = await Promise.all(
    s.clients.map(async (c, i) => {
      if (s.coordinator.bucket) await c.next('upload-url', (m) => m.round === round);
      const envelope = signedUpdate(c.key, config, round, 1000 * round + i + 1);
      updateBytes = envelope.length;
      envelopes.set(c.key.address, envelope);
      return c.uploads.send(round, envelope);
    }),
  );
  const commits = await Promise.all(s.clients.map((c) => c.next('commit', (m) => m.round === round)));
  const http = nodeHttpClient(30_000);
  let fetched = 0;
  let fetchedBytes = 0;
  await Promise.all(
    s.clients.map(async (c, i) => {
      for (const e of commits[i].included) {
        if (e.sender === c.key.address) continue; // its own: held
        // As gather.ts fetchFromStore: the store's copy, checked against the signed commit.
        const bytes = await http.get(`${s.http}/update/${round}/${e.sender}`);
        if (!bytes) throw new Error(`no stored update of ${e.sender} for round ${round}`);
        const { header } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
        if (header.sender !== e.sender || toHex(header.payloadHash) !== e.hash) throw new Error(`the stored update of ${e.sender} does not match the commit`);
        fetched++;
        fetchedBytes += bytes.length;
      }
    }),
  );
  const after = s.server.traffic();
  return { round, coordinatorSent: after.sent - before.sent, coordinatorReceived: after.received - before.received, paths, fetched, fetchedBytes, updateBytes, envelopes };
}
