// The protocol's HTTP side, as the engine sees it: what a contributor fetches from (and puts
// to) the coordinator — the run config, the data shard, updates, commits, checkpoints. The
// engine is environment-free, so each shell passes its own client: Node's fetch
// (src/node/http-client.ts) or the page's (renderer/engine/http.ts).

export interface HttpClient {
  /** The body, or null on 404; throws on other failures. `onProgress` (optional to honour): bytes so far of the total (0: unknown). */
  get(url: string, onProgress?: (done: number, total: number) => void): Promise<Uint8Array | null>;
  /**
   * Bytes [start, end) of the body (an HTTP Range request), or null on 404. Optional: without
   * it a caller takes the whole body and slices it; a server that ignores Range is sliced alike.
   */
  getRange?(url: string, start: number, end: number): Promise<Uint8Array | null>;
  /** `headers`: e.g. a signed upload's (checkpoint-manifest.ts signRequest). */
  put(url: string, body: Uint8Array, headers?: Record<string, string>): Promise<{ status: number; text: string }>;
}
