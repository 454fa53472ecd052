// `npm run bench -- surface-http [--bodies 4] [--body-mib 250]`: what hostile uploads cost a
// real coordinator process (issue 19, "The surface": four concurrent unauthenticated 250 MiB
// `PUT /checkpoint` bodies once took its RSS from 215 to 1,497 MiB and stalled `/status` for
// 42 s). It starts `tessera coordinator --no-validate` as its own process, then, one attack
// at a time, sends --bodies concurrent --body-mib bodies (streamed, never held here) while a
// prober asks `GET /status` every PROBE_MS and a sampler reads the coordinator's RSS from
// /proc. Per attack: how the coordinator answered, the
// time to answer (and how much of the body this side had written by then: socket buffers, not
// what the coordinator read), its RSS before and at peak, and the slowest `/status` answer meanwhile.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { signRequest } from '../../src/protocol/checkpoint-manifest.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));
const MiB = 1 << 20;
/** How often `/status` is asked and RSS read while an attack runs. */
const PROBE_MS = 100;
/** Chunk of a streamed hostile body. */
const CHUNK = new Uint8Array(MiB).fill(0x5a);
/** An attack's bodies get this long to be answered before they are counted as hanging. */
const ATTACK_LIMIT_MS = 120_000;

interface Attack {
  name: string;
  path: string;
  /** Extra request headers (a signature), given the body's length. */
  headers: (length: number) => Record<string, string>;
}

interface BodyResult {
  status: number | 'reset' | 'hung';
  /** Body bytes written before the coordinator answered or closed. */
  sentBytes: number;
  ms: number;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** One PUT whose body is streamed MiB by MiB until the coordinator answers, closes, or it ends. */
function hostilePut(port: number, attack: Attack, bytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    let sent = 0;
    let settled = false;
    const done = (status: BodyResult['status']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ status, sentBytes: sent, ms: performance.now() - started });
    };
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: attack.path, headers: { 'content-length': String(bytes), ...attack.headers(bytes) } });
    const timer = setTimeout(() => done('hung'), ATTACK_LIMIT_MS);
    req.on('response', (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', () => done('reset'));
    const pump = () => {
      while (!settled && sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent);
        sent += n;
        if (!req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void req.once('drain', pump);
      }
      if (!settled) req.end();
    };
    pump();
  });
}

/** `GET /status`'s answer time, ms (Infinity when it fails). */
function statusMs(port: number): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/status', timeout: ATTACK_LIMIT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(performance.now() - started));
    });
    req.on('error', () => resolve(Infinity));
    req.end();
  });
}

async function startCoordinator(state: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, 'coordinator', '--no-validate', '--port', '0', '--state', state], { stdio: ['ignore', 'pipe', 'pipe'], cwd: state });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const seen = (d: Buffer) => {
      out += d.toString();
      const m = /ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => reject(new Error(`the coordinator exited (${code}) before serving:\n${out}`)));
  });
  return { child, port };
}

export async function runSurfaceHttpBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { bodies: { type: 'string', default: '4' }, 'body-mib': { type: 'string', default: '250' } } });
  const bodies = Number(values.bodies);
  const bytes = Number(values['body-mib']) * MiB;
  await cryptoReady();
  const stranger = Hotkey.fromSeed(new Uint8Array(32).fill(7)); // a key no one asked
  const state = mkdtempSync(join(tmpdir(), 'tessera-surface-http-'));
  const { child, port } = await startCoordinator(state);
  const pid = child.pid!;
  const sha = 'ab'.repeat(32);
  const attacks: Attack[] = [
    { name: 'unsigned PUT /checkpoint (the old route)', path: '/checkpoint', headers: () => ({}) },
    { name: 'unsigned PUT /checkpoint/piece/<sha256>', path: `/checkpoint/piece/${sha}`, headers: () => ({}) },
    { name: 'a signed PUT by a key not asked to upload', path: `/checkpoint/piece/${sha}`, headers: (n) => signRequest(stranger, 'local', 'PUT', `/checkpoint/piece/${sha}`, n) },
    { name: 'unsigned PUT /checkpoint/manifest', path: '/checkpoint/manifest', headers: () => ({}) },
  ];
  const rows: BenchRow[] = [];
  try {
    const idleProbe = await Promise.all(Array.from({ length: 5 }, () => statusMs(port)));
    for (const attack of attacks) {
      const rssBefore = rssMiB(pid);
      let rssPeak = rssBefore;
      let slowest = 0;
      let probes = 0;
      let running = true;
      const probing = (async () => {
        while (running) {
          const [ms] = await Promise.all([statusMs(port), new Promise((r) => setTimeout(r, PROBE_MS))]);
          slowest = Math.max(slowest, ms);
          probes++;
          rssPeak = Math.max(rssPeak, rssMiB(pid));
        }
      })();
      const results = await Promise.all(Array.from({ length: bodies }, () => hostilePut(port, attack, bytes)));
      await new Promise((r) => setTimeout(r, 3 * PROBE_MS)); // what it holds just after
      running = false;
      await probing;
      rssPeak = Math.max(rssPeak, rssMiB(pid));
      const statuses = [...new Set(results.map((r) => String(r.status)))].join(', ');
      rows.push({
        attack: attack.name,
        bodies: `${bodies} × ${bytes / MiB} MiB`,
        answered: statuses,
        'sent before the answer, max MiB': +(Math.max(...results.map((r) => r.sentBytes)) / MiB).toFixed(1),
        'answer, max ms': Math.round(Math.max(...results.map((r) => r.ms))),
        'RSS before MiB': Math.round(rssBefore),
        'RSS peak MiB': Math.round(rssPeak),
        '/status slowest ms': Math.round(slowest),
        '/status probes': probes,
      });
    }
    rows.push({ attack: 'none (idle /status, 5 asks)', bodies: '-', answered: '-', 'sent before the answer, max MiB': 0, 'answer, max ms': 0, 'RSS before MiB': Math.round(rssMiB(pid)), 'RSS peak MiB': Math.round(rssMiB(pid)), '/status slowest ms': Math.round(Math.max(...idleProbe)), '/status probes': idleProbe.length });
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    rmSync(state, { recursive: true, force: true });
  }
  printTable(`hostile uploads against a coordinator process (${bodies} concurrent bodies of ${bytes / MiB} MiB)`, rows);
  writeResults('surface-http', { bodies, bodyBytes: bytes, probeMs: PROBE_MS, rows });
  // A body the coordinator read whole, or an answer that never came, is the attack working.
  return rows.every((r) => r['answered'] !== 'hung' && (r['sent before the answer, max MiB'] as number) < bytes / MiB) ? 0 : 1;
}
