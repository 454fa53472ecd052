// Worker of harness.test.ts: logs, throws from a handler, and fails outside any handler.
import { serveWorker } from './worker-rpc.ts';

const handlers = {
  log(text: string) {
    console.log(`worker says ${text}`);
    return text.length;
  },
  throws(text: string): never {
    throw new Error(text);
  },
  fatal(text: string) {
    setTimeout(() => {
      throw new Error(text);
    });
    return 'scheduled';
  },
  reject(text: string) {
    void Promise.reject(new Error(text));
    return 'scheduled';
  },
};

export type FaultsWorker = typeof handlers;
serveWorker(handlers);
