// A link's path as it stands, not only as it was at link-up: ICE may nominate a relayed pair
// first (the first to answer, under load) and move to a direct one once its checks succeed, or
// move again later. RouteWatch reads each open link's route from its stats at bounded times —
// ROUTE_SETTLE_MS after the link came up, then every ROUTE_REFRESH_MS, and whenever its owner
// asks (before a summary is reported) — never per message, and reports a route that differs
// from the one last reported (path or candidate types). A read that fails or says nothing
// changes nothing. Environment-free, on the caller's clock: PeerMesh drives it with a timer;
// test/net/route-watch.test.ts on a fake clock with a fake stats source.
import type { LinkRoute } from './link-path.ts';

/** The first read after a link comes up: long enough for ICE to finish checking the pairs it had when it connected. */
export const ROUTE_SETTLE_MS = 5000;
/** Then each open link's route is read this often (one getStats call per link). */
export const ROUTE_REFRESH_MS = 30_000;

export interface RouteWatchOptions {
  now(): number;
  /** The link's route as its stats say now (null: not connected, or the stats did not say). */
  read(peer: string): Promise<LinkRoute | null>;
  /** An open link's route differs from the one last reported for it. */
  onChange(peer: string, route: LinkRoute): void;
}

interface Watched {
  /** The route last reported (at link-up or by onChange). */
  route: LinkRoute | null;
  /** When the route is next read. */
  nextAt: number;
}

const same = (a: LinkRoute | null, b: LinkRoute) => a !== null && a.path === b.path && a.local === b.local && a.remote === b.remote;

export class RouteWatch {
  readonly #links = new Map<string, Watched>();

  constructor(private readonly o: RouteWatchOptions) {}

  /** A link to `peer` came up, its route read then (null when its stats did not say). */
  up(peer: string, route: LinkRoute | null): void {
    this.#links.set(peer, { route, nextAt: this.o.now() + ROUTE_SETTLE_MS });
  }

  /** The link to `peer` went down: not read again until it comes up. */
  down(peer: string): void {
    this.#links.delete(peer);
  }

  /** When refresh() next has a link to read, or null with no link open. */
  wakeAt(): number | null {
    let at = Infinity;
    for (const w of this.#links.values()) at = Math.min(at, w.nextAt);
    return Number.isFinite(at) ? at : null;
  }

  /** Reads the links that are due (`all`: every open link), at once, and reports those whose route changed. */
  async refresh(all = false): Promise<void> {
    const now = this.o.now();
    const due = [...this.#links].filter(([, w]) => all || w.nextAt <= now);
    for (const [, w] of due) w.nextAt = now + ROUTE_REFRESH_MS;
    await Promise.all(
      due.map(async ([peer, w]) => {
        const route = await this.o.read(peer).catch(() => null);
        // A link that went down (or down and up again) meanwhile: this read is of no use.
        if (!route || this.#links.get(peer) !== w || same(w.route, route)) return;
        w.route = route;
        this.o.onChange(peer, route);
      }),
    );
  }
}
