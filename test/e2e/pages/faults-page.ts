// Page of harness.test.ts: each request makes one kind of noise or failure, so the test can
// check that the harness reports it (console lines, fast failure on page and worker errors).
import { bridge } from './bridge.ts';
import type { FaultsWorker } from './faults-worker.ts';
import { spawnWorker } from './worker-rpc.ts';

const worker = spawnWorker<FaultsWorker>('/faults-worker.js');

bridge.handle('log', async (m) => {
  console.log(`page says ${String(m.text)}`);
  return { length: await worker.call('log', String(m.text)) };
});
bridge.handle('worker-throws', async (m) => {
  try {
    await worker.call('throws', String(m.text));
    return { caught: null };
  } catch (e) {
    return { caught: (e as Error).message };
  }
});
bridge.on('page-throws', (m) => {
  throw new Error(String(m.text));
});
bridge.on('page-rejects', (m) => void Promise.reject(new Error(String(m.text))));
bridge.handle('worker-fatal', async (m) => ({ result: await worker.call('fatal', String(m.text)) }));
bridge.handle('worker-rejects', async (m) => ({ result: await worker.call('reject', String(m.text)) }));

bridge.on('bad-worker', () => void spawnWorker('/missing-worker.js'));

void bridge.send({ type: 'ready' });
