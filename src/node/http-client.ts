// HTTP for the contributor in Node: Node 20's fetch, bodies as Uint8Array, bounded waits.
import type { HttpClient } from '../net/contributor.ts';

export function nodeHttpClient(timeoutMs = 120_000): HttpClient {
  return {
    async get(url) {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${await r.text()}`);
      return new Uint8Array(await r.arrayBuffer());
    },
    async put(url, body) {
      const r = await fetch(url, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(timeoutMs) });
      return { status: r.status, text: await r.text() };
    },
  };
}
