// HTTP for the contributor in Node: Node 20's fetch, bodies as Uint8Array, bounded waits.
import type { HttpClient } from '../protocol/http.ts';
import { fetchPut, fetchRange } from '../net/fetch-http.ts';

export function nodeHttpClient(timeoutMs = 120_000): HttpClient {
  return {
    async get(url, onProgress) {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${await r.text()}`);
      if (!onProgress || !r.body) return new Uint8Array(await r.arrayBuffer());
      // Read piece by piece to report bytes so far (of content-length, 0 when not sent).
      const total = Number(r.headers.get('content-length')) || 0;
      const parts: Uint8Array[] = [];
      let done = 0;
      for await (const part of r.body as unknown as AsyncIterable<Uint8Array>) {
        parts.push(part);
        done += part.length;
        onProgress(done, total);
      }
      const body = new Uint8Array(done);
      let at = 0;
      for (const p of parts) {
        body.set(p, at);
        at += p.length;
      }
      return body;
    },
    getRange: (url, start, end) => fetchRange(url, start, end, timeoutMs),
    put: (url, body, headers = {}) => fetchPut(url, body, headers, timeoutMs),
  };
}
