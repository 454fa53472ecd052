// The parts of an HttpClient (src/protocol/http.ts) that are the same in every environment
// with fetch (Node 20, pages, workers): a Range read and a PUT. Each shell's client adds what
// differs (Node's progress, the page's cache policy) and uses these for the rest.
import type { HttpClient } from '../protocol/http.ts';

/** What each request may add (a page asks past its HTTP cache); a timeout is always set. */
export interface FetchInit {
  cache?: 'no-store';
}

/** Bytes [start, end) of `url`'s body, or null on 404. */
export async function fetchRange(url: string, start: number, end: number, timeoutMs: number, init: FetchInit = {}): Promise<Uint8Array | null> {
  const r = await fetch(url, { ...init, headers: { range: `bytes=${start}-${end - 1}` }, signal: AbortSignal.timeout(timeoutMs) });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): HTTP ${r.status} ${await r.text()}`);
  const body = new Uint8Array(await r.arrayBuffer());
  // 206: the range itself; 200: a server that ignores Range sent the whole body.
  const part = r.status === 206 ? body : body.subarray(start, end);
  if (part.length !== end - start) throw new Error(`GET ${url} (bytes ${start}-${end - 1}): ${part.length} bytes came back`);
  return part;
}

/** A PUT of `body` (octet-stream unless `headers` say otherwise): its status and text. */
export async function fetchPut(url: string, body: Uint8Array, headers: Record<string, string>, timeoutMs: number): ReturnType<HttpClient['put']> {
  const r = await fetch(url, {
    method: 'PUT',
    body: body as Uint8Array<ArrayBuffer>,
    headers: { 'content-type': 'application/octet-stream', ...headers },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: r.status, text: await r.text() };
}
