// The contributor's HTTP through fetch (page or worker): bodies as Uint8Array, null on 404,
// bounded waits so a dead coordinator is noticed instead of waited on forever.
import type { HttpClient } from '../../src/protocol/http.ts';

export function fetchHttpClient(timeoutMs = 120_000): HttpClient {
  return {
    async get(url) {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${await r.text()}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    async getRange(url, start, end) {
      const r = await fetch(url, { headers: { range: `bytes=${start}-${end - 1}` }, signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): HTTP ${r.status} ${await r.text()}`);
      const body = new Uint8Array(await r.arrayBuffer());
      // 206: the range itself; 200: a server that ignores Range sent the whole body.
      const part = r.status === 206 ? body : body.subarray(start, end);
      if (part.length !== end - start) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): ${part.length} bytes came back`);
      return part;
    },
    async put(url, body, headers = {}) {
      const r = await fetch(url, {
        method: 'PUT',
        body: body as Uint8Array<ArrayBuffer>,
        headers: { 'content-type': 'application/octet-stream', ...headers },
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: r.status, text: await r.text() };
    },
  };
}
