// The coordinator's network face: one HTTP server on one port, with the WebSocket endpoint
// at /ws (signaling and control) and plain HTTP for the run config, the data shard, the
// checkpoint (checkpoint-routes.ts) and committed updates (with a bucket: a redirect to a presigned URL).
// Everything it serves or accepts has a size limit.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { MAX_CONTROL_BYTES } from '../protocol/messages.ts';
import { AUTH_ADDRESS_HEADER, AUTH_SIGNATURE_HEADER } from '../protocol/checkpoint-manifest.ts';
import { checkpointRoute } from './checkpoint-routes.ts';
import type { Coordinator } from './coordinator.ts';
import type { RewardsApi } from './rewards-api.ts';
import { commitView } from './run-record.ts';

export interface CoordinatorServer {
  port: number;
  url: string;
  /** Bytes this server has sent and received on its sockets (HTTP and WebSocket, headers included). */
  traffic(): { sent: number; received: number };
  close(): Promise<void>;
}

export interface ServeOptions {
  port?: number;
  host?: string;
  /** The token shard contributors train on (TSRD bytes). */
  shard: Uint8Array;
  log?: (line: string) => void;
  /** GET /rewards/<address>?t=&sig= (absent when the coordinator does not validate). */
  rewards?: RewardsApi;
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** One `bytes=a-b` range of a body of `length` bytes: null when there is none (the whole body), 'invalid' when it does not fit. */
function byteRange(header: string | undefined, length: number): { start: number; end: number } | null | 'invalid' {
  if (!header) return null;
  const m = /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (!m) return 'invalid';
  const [start, last] = [Number(m[1]), Number(m[2])];
  return start <= last && last < length ? { start, end: last + 1 } : 'invalid';
}

export async function serveCoordinator(coordinator: Coordinator, options: ServeOptions): Promise<CoordinatorServer> {
  const log = options.log ?? (() => {});
  const cors = {
    'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, PUT, OPTIONS',
    'access-control-allow-headers': `content-type, range, ${AUTH_ADDRESS_HEADER}, ${AUTH_SIGNATURE_HEADER}`, 'access-control-expose-headers': 'content-range, content-length',
  };
  const reply = (res: ServerResponse, status: number, body: string | Uint8Array, type = 'application/json', extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...cors, ...extra });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, v: unknown, extra: Record<string, string> = {}) => reply(res, status, JSON.stringify(v), 'application/json', extra);

  const http: Server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (req.method === 'OPTIONS') return reply(res, 204, '');
      if (req.method === 'GET' && path === '/run') return json(res, 200, coordinator.config);
      if (req.method === 'GET' && path === '/status') return json(res, 200, coordinator.status());
      if (req.method === 'GET' && path === '/shard') return reply(res, 200, options.shard, 'application/octet-stream');
      if (await checkpointRoute(req, res, url, { run: coordinator.config.run, intake: coordinator.checkpoints, pieces: coordinator.checkpointPieces, json, count: (what) => void (coordinator.rejected[what] = (coordinator.rejected[what] ?? 0) + 1) })) return;
      // /commit/<round>: what a replica catching up needs (O(K)); /commit/<round>/record: the full record, for an operator (O(N)).
      const commit = /^\/commit\/(\d+)(\/record)?$/.exec(path);
      if (req.method === 'GET' && commit) {
        const round = Number(commit[1]);
        const c = coordinator.commit(round);
        return c ? json(res, 200, commit[2] ? c : commitView(c)) : json(res, 404, { error: `no commit for round ${commit[1]} here (committed rounds: ${coordinator.runState().oldestCommit}..${coordinator.round - 1})` });
      }
      const rewards = /^\/rewards\/([1-9A-HJ-NP-Za-km-z]{40,60})$/.exec(path);
      if (req.method === 'GET' && rewards) {
        if (!options.rewards) return json(res, 404, { error: 'this coordinator does not validate (no GPU), so it keeps no rewards' });
        const r = options.rewards.handle(rewards[1], url.searchParams.get('t'), url.searchParams.get('sig'));
        return json(res, r.status, r.body);
      }
      const update = /^\/update\/(\d+)\/([1-9A-HJ-NP-Za-km-z]{40,60})$/.exec(path);
      if (req.method === 'GET' && update) {
        // With a bucket the bytes come from there (a presigned GET), never through here.
        const url = await coordinator.bucket?.downloadUrl(Number(update[1]), update[2], coordinator.updateKept(Number(update[1]), update[2]));
        if (url) return reply(res, 307, '', 'text/plain', { location: url });
        const u = coordinator.storedUpdate(Number(update[1]), update[2]);
        if (!u) return json(res, 404, { error: 'no such update stored (kept: the committed ones since the last checkpoint, the others for a few rounds)' });
        // A Range: the pieces a replica still misses after its neighbours (src/contributor/gather.ts).
        const range = byteRange(req.headers.range, u.length);
        if (range === 'invalid') return reply(res, 416, JSON.stringify({ error: `range ${req.headers.range} is not within the ${u.length}-byte update` }), 'application/json', { 'content-range': `bytes */${u.length}` });
        if (range) return reply(res, 206, u.subarray(range.start, range.end), 'application/octet-stream', { 'content-range': `bytes ${range.start}-${range.end - 1}/${u.length}` });
        return reply(res, 200, u, 'application/octet-stream');
      }
      json(res, 404, { error: `no ${req.method} ${path} here` });
    } catch (e) {
      log(`http error: ${(e as Error).message}`);
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
    }
  });

  // Every byte on the wire, counted per socket: the coordinator's cost in traffic.
  const sockets = new Set<Socket>();
  const closedTraffic = { sent: 0, received: 0 };
  http.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      closedTraffic.sent += socket.bytesWritten;
      closedTraffic.received += socket.bytesRead;
    });
  });
  const traffic = () => {
    const t = { ...closedTraffic };
    for (const socket of sockets) {
      t.sent += socket.bytesWritten;
      t.received += socket.bytesRead;
    }
    return t;
  };

  const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: coordinator.config.maxMessageBytes + 64 * 1024 });
  wss.on('connection', (ws: WebSocket) => {
    const session = coordinator.connect({
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return session.onBinary(bytesOf(data));
      const text = bytesOf(data);
      if (text.length > MAX_CONTROL_BYTES) return ws.close(1009, 'control message too large');
      session.onText(new TextDecoder().decode(text));
    });
    ws.on('close', () => session.onClose());
    ws.on('error', (e) => log(`websocket error: ${e.message}`));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 8787, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const host = options.host ?? '127.0.0.1';
  return {
    port,
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}/ws`,
    traffic,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
