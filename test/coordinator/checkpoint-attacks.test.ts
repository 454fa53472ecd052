// The checkpoint attacks of issue 19, as an attacker would run them against the coordinator's
// HTTP face (this file uses only what the coordinator had before sharded checkpoints, so it
// reproduces them on that code: there every test here fails):
//   - a joined key that was not asked PUTs its own weights as the run's checkpoint;
//   - the asked uploader PUTs weights that are not the ones the run committed;
//   - four concurrent unauthenticated 250 MiB PUT /checkpoint bodies (buffered whole before).
import { request } from 'node:http';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveCoordinator, type CoordinatorServer } from '../../src/coordinator/server.ts';
import { devKeys, joinAll, makeCoordinator, modelUpdate, removeTempDirs, seal, testConfig, type Keys } from './helpers.ts';

let k: Keys;
beforeAll(async () => {
  k = await devKeys();
});
const servers: CoordinatorServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  removeTempDirs();
});

async function serveRound(): Promise<{ http: string; asked: string; h: ReturnType<typeof makeCoordinator> }> {
  const h = makeCoordinator(testConfig({ minMembers: 2 }));
  const server = await serveCoordinator(h.coordinator, { port: 0, shard: new Uint8Array(16) });
  servers.push(server);
  const peers = joinAll(h.coordinator, [k.alice, k.bob]);
  for (const [i, p] of peers.entries()) p.binary(seal(p.key!, 0, modelUpdate(h.config, 0, i + 1)));
  const asked = peers[0].last('commit')!.checkpointBy!;
  return { http: `http://127.0.0.1:${server.port}`, asked, h };
}

/** Whether the coordinator serves `bytes` (or anything containing them) as its checkpoint. */
async function serves(http: string, bytes: Uint8Array): Promise<boolean> {
  const r = await fetch(`${http}/checkpoint`);
  const body = new Uint8Array(await r.arrayBuffer());
  return r.status === 200 && Buffer.from(body).includes(Buffer.from(bytes.subarray(bytes.length - 64)));
}

describe('checkpoint attacks (issue 19)', () => {
  it('a joined key the coordinator did not ask cannot make its weights the run’s checkpoint', async () => {
    const { http, asked, h } = await serveRound();
    const attacker = asked === k.alice.address ? k.bob : k.alice;
    const poisoned = seal(attacker, 1, new Uint8Array(4096).fill(7), { kind: 'weights' });
    const put = await fetch(`${http}/checkpoint`, { method: 'PUT', body: poisoned });
    expect(put.status).toBeGreaterThanOrEqual(400);
    expect(await serves(http, poisoned)).toBe(false);
    expect(h.coordinator.status().checkpointRound).toBe(-1);
  });

  it('the asked uploader cannot replace the checkpoint with weights the run did not commit', async () => {
    const { http, asked, h } = await serveRound();
    const uploader = [k.alice, k.bob].find((x) => x.address === asked)!;
    const poisoned = seal(uploader, 1, new Uint8Array(4096).fill(9), { kind: 'weights' });
    const put = await fetch(`${http}/checkpoint`, { method: 'PUT', body: poisoned });
    expect(put.status).toBeGreaterThanOrEqual(400);
    expect(await serves(http, poisoned)).toBe(false);
    expect(h.coordinator.status().checkpointRound).toBe(-1);
  });

  it('four concurrent unauthenticated 250 MiB PUTs are refused unread: the coordinator’s memory does not grow', async () => {
    const { http } = await serveRound();
    const BODY = 250 * 1024 * 1024;
    const CHUNK = new Uint8Array(1024 * 1024);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const watch = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const { port } = new URL(http);
    const put = (path: string) =>
      new Promise<{ status: number | null; sent: number }>((resolve) => {
        let sent = 0;
        let status: number | null = null;
        const req = request({ host: '127.0.0.1', port, path, method: 'PUT', headers: { 'content-length': String(BODY) } }, (res) => {
          status = res.statusCode ?? null;
          res.resume();
          res.on('end', () => resolve({ status, sent }));
        });
        // Written lazily, as a network would deliver it: the attacker's memory stays small too.
        const pump = () => {
          while (sent < BODY) {
            sent += CHUNK.length;
            if (!req.write(CHUNK)) return void req.once('drain', pump);
          }
          req.end();
        };
        req.on('error', () => resolve({ status, sent }));
        req.on('close', () => resolve({ status, sent }));
        pump();
      });
    const t0 = performance.now();
    const results = await Promise.all(['/checkpoint', '/checkpoint', '/checkpoint', '/checkpoint'].map(put));
    const status = await fetch(`${http}/status`);
    clearInterval(watch);
    const grewMiB = (peak - before) / 2 ** 20;
    console.log(`4 × 250 MiB unauthenticated PUT /checkpoint: statuses ${results.map((r) => r.status).join(', ')}; peak RSS +${grewMiB.toFixed(0)} MiB; ${(performance.now() - t0).toFixed(0)} ms`);
    expect(status.status).toBe(200);
    for (const r of results) expect(r.status === null || r.status >= 400).toBe(true);
    // Buffered whole, four bodies are 1,000 MiB; refused unread, the socket buffers are all.
    expect(grewMiB).toBeLessThan(150);
  }, 60_000);
});
