// The validator's worker thread (started by validator-thread.ts): its own Dawn device and
// replica, scoring what the coordinator's thread sends, one request at a time. Nothing here
// touches the ledger or the coordinator: rows are recorded on the coordinator's thread.
import { parentPort, workerData } from 'node:worker_threads';
import { NoGpuError } from '../gpu/errors.ts';
import { openNodeGpu } from '../node/dawn.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import { splitShard } from '../train/sampler.ts';
import type { SamplingOptions } from './scoring.ts';
import { CoordinatorStore } from './state-store.ts';
import { storedPayloads } from './run-record.ts';
import { Validator, type ValidatorEngine } from './validator.ts';

/** What the thread is started with. */
export interface ValidatorWorkerData {
  config: RunConfig;
  /** The run's token shard (split into training and held-out parts here, as the coordinator does). */
  tokens: ArrayLike<number>;
  validFraction: number;
  sampling: SamplingOptions;
  software: boolean;
  /** The coordinator's state folder: the uncommitted updates are read from its store here, one at a time. */
  storeDir?: string;
}

type Method = 'warmUp' | 'loadStart' | 'apply' | 'evaluate' | 'restoreCopyHistory' | 'encodeWeights' | 'weightsRound' | 'destroy';
export interface ValidatorRequest {
  id: number;
  method: Method;
  args: unknown[];
}
export type ValidatorWorkerMessage =
  | { type: 'ready' }
  | { type: 'failed'; noGpu: boolean; message: string }
  | { type: 'log'; line: string }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; message: string };

/** The buffers of a reply worth moving rather than copying: a whole buffer's bytes. */
function transferable(value: unknown): ArrayBuffer[] {
  return value instanceof Uint8Array && value.byteOffset === 0 && value.buffer instanceof ArrayBuffer && value.byteLength === value.buffer.byteLength ? [value.buffer] : [];
}

async function serve(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('validator-worker.ts runs as a worker thread (validator-thread.ts starts it)');
  const data = workerData as ValidatorWorkerData;
  const send = (m: ValidatorWorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let gpu;
  try {
    gpu = await openNodeGpu({ adapter: data.software ? 'software' : 'auto' });
  } catch (e) {
    send({ type: 'failed', noGpu: e instanceof NoGpuError, message: (e as Error).message });
    port.close();
    return;
  }
  const { train, valid } = splitShard(data.tokens, { validFraction: data.validFraction });
  const stored = data.storeDir ? storedPayloads(new CoordinatorStore(data.storeDir), data.config) : undefined;
  const validator = new Validator(data.config, gpu, train, valid, (line) => send({ type: 'log', line }), data.sampling, stored);
  const call = (r: ValidatorRequest): Promise<unknown> => (validator[r.method] as (...a: unknown[]) => Promise<unknown>).apply(validator, r.args);
  // One request at a time, in the order sent: the replica is one state.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (r: ValidatorRequest) => {
    queue = queue.then(async () => {
      try {
        const value = await call(r as ValidatorRequest & { method: keyof ValidatorEngine });
        send({ type: 'reply', id: r.id, ok: true, value }, transferable(value));
      } catch (e) {
        send({ type: 'reply', id: r.id, ok: false, message: (e as Error).message });
      }
      if (r.method === 'destroy') {
        gpu.destroy();
        // With the port closed and the device gone the thread has nothing left and ends.
        port.close();
      }
    });
  });
  send({ type: 'ready' });
}

await serve();
