// `npm run bench -- turn`: what the TURN relay costs on loopback. coturn (Debian's turnserver)
// on 127.0.0.1 with the TURN REST shared secret, two PeerLinks in this process given
// credentials the way the coordinator grants them (TurnGrants), once forced through the relay
// (iceTransportPolicy 'relay'; the stats must say 'relayed') and once direct, each sending
// 1, 10 and 50 MB messages. Needs `turnserver` (apt-get install coturn).
// `--sizes 1,10,50` (MB).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import wrtc from '@roamhq/wrtc';
import { TurnGrants } from '../../src/coordinator/turn.ts';
import { PeerLink } from '../../src/net/peer-link.ts';
import type { IceServer } from '../../src/protocol/run-config.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const MB = 1e6;
const TURN_PORT = 34780;
const SECRET = 'bench-turn-secret-0123456789';

async function pair(maxMessageBytes: number, iceServers: IceServer[], policy: 'all' | 'relay'): Promise<[PeerLink, PeerLink]> {
  const limits = { maxMessageBytes, timeoutMs: 300_000, maxInFlight: 4 };
  let b: PeerLink | null = null;
  const a = new PeerLink('b', { initiator: true, wrtc, iceServers, iceTransportPolicy: policy, limits }, (d) => setImmediate(() => b?.signal(d)));
  b = new PeerLink('a', { initiator: false, wrtc, iceServers, iceTransportPolicy: policy, limits }, (d) => setImmediate(() => a.signal(d)));
  await Promise.all([a, b].map((l) => new Promise<void>((resolve, reject) => {
    l.onConnect(resolve);
    l.onClose(reject);
  })));
  return [a, b];
}

async function throughput(label: string, iceServers: IceServer[], policy: 'all' | 'relay', sizesMB: number[]): Promise<BenchRow[]> {
  const [a, b] = await pair(Math.max(...sizesMB) * MB + 1, iceServers, policy);
  try {
    let arrived: (() => void) | null = null;
    b.onMessage(() => arrived?.());
    const once = async (bytes: number) => {
      const got = new Promise<void>((r) => (arrived = r));
      const t0 = performance.now();
      await a.send(new Uint8Array(bytes));
      await got;
      return performance.now() - t0;
    };
    await once(MB); // warm-up
    const rows: BenchRow[] = [];
    for (const mb of sizesMB) {
      const ms = await once(mb * MB);
      rows.push({ link: label, path: a.route?.path ?? 'unknown', route: a.route ? `${a.route.local}/${a.route.remote}` : '–', 'message MB': mb, ms, 'MB/s': (mb * MB) / 1e3 / ms, 'Mbit/s': (mb * 8 * MB) / 1e3 / ms });
    }
    return rows;
  } finally {
    a.close();
    b.close();
  }
}

export async function runTurnBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { sizes: { type: 'string' } } });
  const sizes = values.sizes?.split(',').map(Number).filter((n) => n > 0) ?? [1, 10, 50];
  if (spawnSync('which', ['turnserver']).status !== 0) {
    console.error('turn bench: coturn is not installed (apt-get install coturn)');
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-turn-bench-'));
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(conf, ['listening-ip=127.0.0.1', 'relay-ip=127.0.0.1', `listening-port=${TURN_PORT}`, 'min-port=49300', 'max-port=49400', 'use-auth-secret', `static-auth-secret=${SECRET}`, 'realm=bench.test', 'allow-loopback-peers', 'no-tls', 'no-dtls', 'no-cli', 'log-file=stdout', `pidfile=${join(dir, 'pid')}`, ''].join('\n'), { mode: 0o600 });
  const coturn = spawn('turnserver', ['-c', conf], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const grant = new TurnGrants({ urls: [`turn:127.0.0.1:${TURN_PORT}?transport=udp`], secret: SECRET, ttlSeconds: 600 }).grant('bench', Date.now());
    const rows = [...(await throughput('direct (loopback)', [], 'all', sizes)), ...(await throughput('TURN relay (coturn, loopback)', grant.servers, 'relay', sizes))];
    printTable('PeerLink throughput on loopback: direct vs through coturn', rows);
    console.log(`\nwrote ${writeResults('turn', { date: new Date().toISOString(), sizesMB: sizes, rows })}`);
    return rows.some((r) => r.link !== 'direct (loopback)' && r.path !== 'relayed') ? 1 : 0;
  } finally {
    coturn.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
