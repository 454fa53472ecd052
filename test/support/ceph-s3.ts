// A real S3-compatible server for tests: a throwaway single-node Ceph (monitor, one OSD on
// memstore) with radosgw, started by test/support/ceph/start-ceph-s3.sh in a temporary folder
// and stopped (its own pids only) by stop-ceph-s3.sh. Never a mock: what the tests talk to is
// Ceph's own S3 gateway. `cephAvailable()` says whether the binaries are installed (CI installs
// them: .ci/run); the tests skip with that message only where they are not.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const HERE = join(dirname(fileURLToPath(import.meta.url)), 'ceph');
const BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'];
/** Ceph's start on a 2-core machine takes ~12 s; this is a safety net, not a timing. */
const START_LIMIT_MS = 180_000;

export interface CephS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Seconds from the script's start until S3 answered. */
  startSeconds: number;
  /** A new bucket (name: 3–63 of a-z0-9-). */
  createBucket(name: string): Promise<void>;
  stop(): void;
}

/** Why Ceph cannot run here (a binary missing), or null when it can. */
export function cephUnavailable(): string | null {
  const missing = BINARIES.filter((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0);
  return missing.length ? `Ceph is not installed (missing ${missing.join(', ')}): apt-get install ceph-mon ceph-osd ceph-mgr radosgw` : null;
}

/** Two free TCP ports next to each other are not guaranteed: a free one for radosgw, another for the monitor. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startCephS3(): Promise<CephS3> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ceph-'));
  const [port, monPort] = [await freePort(), await freePort()];
  const t0 = performance.now();
  // spawnSync: the script returns once S3 answers; its daemons run on in the background.
  const r = spawnSync('bash', [join(HERE, 'start-ceph-s3.sh'), dir, String(port)], { encoding: 'utf8', timeout: START_LIMIT_MS, env: { ...process.env, CEPH_MON_PORT: String(monPort) } });
  const startSeconds = (performance.now() - t0) / 1000;
  const stop = () => void spawnSync('bash', [join(HERE, 'stop-ceph-s3.sh'), dir], { timeout: 60_000 });
  if (r.status !== 0) {
    stop();
    throw new Error(`Ceph did not start (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${r.stderr.slice(-2000)}`);
  }
  const vars = Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const s3: CephS3 = {
    endpoint: vars.S3_ENDPOINT,
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
    region: 'us-east-1',
    startSeconds,
    async createBucket(name) {
      const client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        client.destroy();
      }
    },
    stop,
  };
  return s3;
}
