import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serveCoordinator, type CoordinatorServer } from '../../src/coordinator/server.ts';
import { toHex } from '../../src/base/hex.ts';
import { MAX_CONTROL_BYTES, PROTOCOL_VERSION, joinChallenge, parseServerMessage, type ServerMessage } from '../../src/protocol/messages.ts';
import { CoordinatorClient, type SocketLike } from '../../src/net/signaling.ts';
import { signRequest } from '../../src/protocol/checkpoint-manifest.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';
import { nodeHttpClient } from '../../src/node/http-client.ts';
import { devKeys, makeCoordinator, removeTempDirs, seal, signedUpdate, testConfig, type Harness, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});

const servers: CoordinatorServer[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  for (const s of servers.splice(0)) await s.close();
  removeTempDirs();
});

const SHARD = new Uint8Array(3000).map((_, i) => (i * 31) & 0xff);

async function serve(config = testConfig({ minMembers: 2, maxMessageBytes: 8192 })): Promise<{ h: Harness; server: CoordinatorServer; http: string }> {
  const h = makeCoordinator(config);
  const server = await serveCoordinator(h.coordinator, { port: 0, shard: SHARD });
  servers.push(server);
  expect(server.port).toBeGreaterThan(0);
  expect(server.url).toBe(`ws://127.0.0.1:${server.port}/ws`);
  return { h, server, http: `http://127.0.0.1:${server.port}` };
}

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** A raw WebSocket client: every parsed message queued, awaited by type. */
class Client {
  readonly ws: WebSocket;
  readonly got: ServerMessage[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    sockets.push(this.ws);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      const m = parseServerMessage(data.toString());
      expect(m).not.toBeNull();
      this.got.push(m!);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  async next<T extends ServerMessage['type']>(type: T, after = 0): Promise<Of<T>> {
    for (;;) {
      const m = this.got.slice(after).find((x): x is Of<T> => x.type === type);
      if (m) return m;
      await new Promise<void>((resolve, reject) => {
        this.waiters.push(resolve);
        void this.closed.then(() => reject(new Error(`closed while waiting for '${type}': got ${JSON.stringify(this.got)}`)));
      });
    }
  }

  /** hello → challenge → join → welcome. */
  async join(key: Hotkey): Promise<Of<'welcome'>> {
    await this.opened;
    this.send({ type: 'hello', version: PROTOCOL_VERSION });
    const c = await this.next('challenge');
    this.send({ type: 'join', address: key.address, signature: toHex(key.sign(joinChallenge(c.run, c.nonce))) });
    return this.next('welcome');
  }
}

async function getBytes(url: string): Promise<{ status: number; type: string | null; bytes: Uint8Array }> {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get('content-type'), bytes: new Uint8Array(await r.arrayBuffer()) };
}

describe('coordinator server: HTTP', () => {
  it('serves the run config, the status and the shard', async () => {
    const { h, http } = await serve();
    const run = await fetch(`${http}/run`);
    expect(run.status).toBe(200);
    expect(run.headers.get('access-control-allow-origin')).toBe('*');
    expect(await run.json()).toEqual(h.config);
    const status = await fetch(`${http}/status`);
    expect(await status.json()).toMatchObject({ run: 'test-run', round: 0, phase: 'waiting', peers: [], rejected: {}, plannedRounds: 100, tokensTrained: 0, validating: false, scoredRounds: 0, pendingRounds: 0 });
    const shard = await getBytes(`${http}/shard`);
    expect(shard).toMatchObject({ status: 200, type: 'application/octet-stream' });
    expect(shard.bytes).toEqual(SHARD);
  });

  it('answers 404 for unknown paths and methods, 204 to a CORS preflight', async () => {
    const { http } = await serve();
    for (const [method, path] of [['GET', '/'], ['GET', '/nope'], ['POST', '/run'], ['DELETE', '/checkpoint'], ['GET', '/commit/x'], ['GET', '/update/0/short'], ['GET', '/commit/0']]) {
      const r = await fetch(`${http}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(((await r.json()) as { error: string }).error).toBeTruthy();
    }
    const pre = await fetch(`${http}/checkpoint`, { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('PUT');
  });

  it('serves commits and committed updates after a round closes (checkpoints: checkpoint-trust.test.ts)', async () => {
    const { h, server, http } = await serve();
    const [a, b] = [new Client(server.url), new Client(server.url)];
    await a.join(k.alice);
    await b.join(k.bob);
    expect((await fetch(`${http}/checkpoint`)).status).toBe(404);
    expect((await fetch(`${http}/update/0/${k.alice.address}`)).status).toBe(404);

    a.send({ type: 'synced', round: 0, weightsHash: 'aa' });
    b.send({ type: 'synced', round: 0, weightsHash: 'aa' });
    expect((await a.next('round')).memberCount).toBe(2);
    const envelopes = [signedUpdate(k.alice, h.config, 0, 1), signedUpdate(k.bob, h.config, 0, 2)];
    a.ws.send(envelopes[0]);
    b.ws.send(envelopes[1]);
    const commit = await b.next('commit');
    expect(commit.included.map((e) => e.sender)).toEqual([k.alice.address, k.bob.address].sort());

    // A replica's view (entries and counts) and the operator's full record.
    const view = await fetch(`${http}/commit/0`);
    expect(view.status).toBe(200);
    const full = h.coordinator.commit(0)!;
    expect(await view.json()).toEqual({ round: 0, included: full.included, members: 2, delivered: 2, missing: 0, checkpointBy: full.checkpointBy });
    const record = await fetch(`${http}/commit/0/record`);
    expect(record.status).toBe(200);
    expect(await record.json()).toEqual(full);
    for (const [i, key] of [k.alice, k.bob].entries()) {
      const u = await getBytes(`${http}/update/0/${key.address}`);
      expect(u).toMatchObject({ status: 200, type: 'application/octet-stream' });
      expect(u.bytes).toEqual(envelopes[i]);
    }
    // A byte range of a stored update (the pieces a replica still misses), and one that does not fit.
    const part = await fetch(`${http}/update/0/${k.alice.address}`, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-19/${envelopes[0].length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(envelopes[0].subarray(10, 20));
    expect((await fetch(`${http}/update/0/${k.alice.address}`, { headers: { range: `bytes=0-${envelopes[0].length}` } })).status).toBe(416);
    const ranged = await nodeHttpClient().getRange!(`${http}/update/0/${k.bob.address}`, 5, 9);
    expect(ranged).toEqual(envelopes[1].subarray(5, 9));
    expect((await fetch(`${http}/update/0/${k.carol.address}`)).status).toBe(404);
    expect((await fetch(`${http}/update/1/${k.alice.address}`)).status).toBe(404);
    expect((await fetch(`${http}/commit/1`)).status).toBe(404);
    expect((await fetch(`${http}/commit/1/record`)).status).toBe(404);

  });

  it('refuses checkpoint uploads it should not read, with their status codes, before reading a body', async () => {
    const { server, http } = await serve();
    const a = new Client(server.url);
    await a.join(k.alice);
    const put = (path: string, body: Uint8Array, headers: Record<string, string> = {}) => fetch(`${http}${path}`, { method: 'PUT', body, headers });
    const body = new Uint8Array(5000);
    expect((await put('/checkpoint', body)).status).toBe(401); // unsigned
    expect((await put('/checkpoint/manifest', body)).status).toBe(401);
    // Signed by a joined member nobody asked.
    expect((await put('/checkpoint/manifest', body, signRequest(k.alice, 'test-run', 'PUT', '/checkpoint/manifest', body.length))).status).toBe(403);
    expect((await fetch(`${http}/checkpoint`)).status).toBe(404);
    expect((await fetch(`${http}/checkpoint/piece/${'ab'.repeat(32)}`)).status).toBe(404);
  });
});

describe('coordinator server: WebSocket', () => {
  it('runs the join handshake end to end', async () => {
    const { h, server } = await serve();
    const a = new Client(server.url);
    const welcome = await a.join(k.alice);
    expect(welcome).toEqual({ type: 'welcome', address: k.alice.address, config: h.config, state: { round: 0, phase: 'waiting', memberCount: 0, checkpointRound: -1, oldestCommit: 0 }, stage: 0 });
    expect((await a.next('neighbours')).neighbours).toEqual([]);
    expect(h.coordinator.status().peers).toEqual([k.alice.address]);
    // Signaling between two sockets, `from` set by the coordinator.
    const b = new Client(server.url);
    await b.join(k.bob);
    b.send({ type: 'signal', to: k.alice.address, from: k.carol.address, data: { type: 'renegotiate', renegotiate: true } });
    expect(await a.next('signal')).toEqual({ type: 'signal', from: k.bob.address, data: { type: 'renegotiate', renegotiate: true } });
    // A closed socket leaves the run.
    b.ws.close();
    await b.closed;
    await expect.poll(() => h.coordinator.status().peers).toEqual([k.alice.address]);
  });

  it("works with the contributor's own client", async () => {
    const { h, server } = await serve();
    const client = new CoordinatorClient(server.url, k.carol, (url) => {
      const ws = new WebSocket(url);
      sockets.push(ws);
      return ws as unknown as SocketLike;
    });
    const welcome = await client.connect(5000);
    expect(welcome).toEqual({ config: h.config, state: h.coordinator.runState(), stage: 0 });
    client.close();
    await expect.poll(() => h.coordinator.status().peers).toEqual([]);
  });

  it('closes a socket whose join signature is wrong (4001)', async () => {
    const { h, server } = await serve();
    const a = new Client(server.url);
    await a.opened;
    a.send({ type: 'hello', version: PROTOCOL_VERSION });
    const c = await a.next('challenge');
    a.send({ type: 'join', address: k.alice.address, signature: toHex(k.bob.sign(joinChallenge(c.run, c.nonce))) });
    expect(await a.closed).toEqual({ code: 4001, reason: 'bad join signature' });
    expect(h.coordinator.status().rejected).toEqual({ 'bad-join': 1 });
  });

  it('closes a socket that speaks another protocol version (4000), with an error first', async () => {
    const { server } = await serve();
    const a = new Client(server.url);
    await a.opened;
    a.send({ type: 'hello', version: 99 });
    expect((await a.closed).code).toBe(4000);
    expect(a.got.map((m) => m.type)).toEqual(['error']);
  });

  it('closes a socket that sends a control message over MAX_CONTROL_BYTES (1009)', async () => {
    const { server } = await serve();
    const a = new Client(server.url);
    await a.join(k.alice);
    a.send({ type: 'signal', to: k.alice.address, data: 'x'.repeat(MAX_CONTROL_BYTES) });
    expect((await a.closed).code).toBe(1009);
  });

  it('a signal nested 6,000 deep (12 KB) refuses its sender; the recipient stays connected and keeps receiving', async () => {
    const { h, server } = await serve();
    const [a, b] = [new Client(server.url), new Client(server.url)];
    await a.join(k.alice);
    await b.join(k.bob);
    a.send(`{"type":"signal","to":"${k.bob.address}","data":${'['.repeat(6000)}${']'.repeat(6000)}}`);
    expect((await a.next('rejected')).what).toBe('malformed-control');
    a.send({ type: 'signal', to: k.bob.address, data: { type: 'renegotiate', renegotiate: true } });
    expect(await b.next('signal')).toEqual({ type: 'signal', from: k.alice.address, data: { type: 'renegotiate', renegotiate: true } });
    expect(h.coordinator.status().peers).toEqual([k.alice.address, k.bob.address].sort());
    expect(b.ws.readyState).toBe(WebSocket.OPEN);
  }, 20_000); // a regression waits forever for the refusal: fail instead

  it('refuses binary messages before join, and over the size limit', async () => {
    const { h, server } = await serve();
    const a = new Client(server.url);
    await a.opened;
    a.ws.send(signedUpdate(k.alice, h.config, 0));
    const r = await a.next('rejected');
    expect(r.what).toBe('unknown-member');
    await a.join(k.alice);
    a.ws.send(seal(k.alice, 0, new Uint8Array(9000), { run: h.config.run }));
    expect((await a.next('rejected', a.got.indexOf(r) + 1)).what).toBe('envelope-size');
    // Past the socket's own limit (maxMessageBytes + 64 KiB) the socket is closed.
    a.ws.send(new Uint8Array(8192 + 64 * 1024 + 1));
    expect((await a.closed).code).toBe(1009);
  });
});
