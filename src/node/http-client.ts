// HTTP for the contributor in Node: Node 20's fetch, bodies as Uint8Array, bounded waits.
import type { HttpClient } from '../protocol/http.ts';

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
    async getRange(url, start, end) {
      const r = await fetch(url, { headers: { range: `bytes=${start}-${end - 1}` }, signal: AbortSignal.timeout(timeoutMs) });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): HTTP ${r.status} ${await r.text()}`);
      const body = new Uint8Array(await r.arrayBuffer());
      // 206: the range itself; 200: a server that ignores Range sent the whole body.
      const part = r.status === 206 ? body : body.subarray(start, end);
      if (part.length !== end - start) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): ${part.length} bytes came back`);
      return part;
    },
    async put(url, body, headers = {}) {
      const r = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream', ...headers }, signal: AbortSignal.timeout(timeoutMs) });
      return { status: r.status, text: await r.text() };
    },
  };
}
