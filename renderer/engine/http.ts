// The contributor's HTTP through fetch (page or worker): bodies as Uint8Array, null on 404,
// bounded waits so a dead coordinator is noticed instead of waited on forever.
import type { HttpClient } from '../../src/protocol/http.ts';
import { fetchPut, fetchRange } from '../../src/net/fetch-http.ts';

export function fetchHttpClient(timeoutMs = 120_000): HttpClient {
  return {
    async get(url) {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${await r.text()}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    getRange: (url, start, end) => fetchRange(url, start, end, timeoutMs, { cache: 'no-store' }),
    put: (url, body, headers = {}) => fetchPut(url, body, headers, timeoutMs),
  };
}
