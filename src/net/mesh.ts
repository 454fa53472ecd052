// The contributor's WebRTC links to the other peers of its run, one PeerLink each. For a
// pair, the peer with the smaller address makes the offer, so two peers never both dial;
// signaling data goes through the coordinator. A link that drops is redialled while the peer
// is still listed. Received messages reach the caller with the link's remote address: an
// envelope signed by anyone else than the peer it arrived from is the caller's to refuse.
// With `onRoute`, each open link's route is read again at bounded times (route-watch.ts) and a
// change is reported: the path a link uses as it is now, not only as it was at link-up.
import { PeerLink, type PeerLinkOptions, type PeerLinkStats } from './peer-link.ts';
import type { IceServer } from '../protocol/run-config.ts';
import type { LinkRoute } from './link-path.ts';
import { RouteWatch } from './route-watch.ts';

export interface MeshOptions {
  wrtc?: unknown;
  /** STUN/TURN servers; a function when they change (short-lived TURN credentials): each new link takes the current ones. */
  iceServers: IceServer[] | (() => IceServer[]);
  maxMessageBytes: number;
  /** A message not fully received this long after its first frame is dropped. */
  messageTimeoutMs?: number;
  /** Pause before redialling a dropped link. */
  redialMs?: number;
  sendSignal(to: string, data: unknown): void;
  onMessage(from: string, message: Uint8Array): void;
  /** A link came up (with its route: direct or relayed, null when the stats did not say) or went down. */
  onLink?(peer: string, up: boolean, reason: string, route?: LinkRoute | null): void;
  /** An open link's route changed since onLink or the last onRoute told it (ICE moved to another candidate pair); read ROUTE_SETTLE_MS after link-up, then every ROUTE_REFRESH_MS, and on refreshRoutes(). */
  onRoute?(peer: string, route: LinkRoute): void;
}

export class PeerMesh {
  private readonly links = new Map<string, PeerLink>();
  private wanted = new Set<string>();
  private readonly waiters = new Map<string, (() => void)[]>();
  /** Peers a link of this mesh has been up with at some time. */
  private readonly everLinked = new Set<string>();
  private closed = false;
  /** Totals of links that have closed (live links add their own). */
  private retired = { bytesSent: 0, bytesReceived: 0, dropped: 0 };
  /** The open links' routes, read again now and then (only with options.onRoute). */
  private readonly routeWatch: RouteWatch | null;
  private routeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly self: string,
    private readonly options: MeshOptions,
  ) {
    const onRoute = options.onRoute;
    this.routeWatch = onRoute ? new RouteWatch({ now: () => performance.now(), read: (p) => this.linkRoute(p), onChange: (p, r) => onRoute(p, r) }) : null;
  }

  /** The peers of the run (self may be among them): dial the new ones, drop the gone ones. */
  setPeers(peers: readonly string[]): void {
    this.wanted = new Set(peers.filter((p) => p !== this.self));
    for (const [addr, link] of this.links) if (!this.wanted.has(addr)) this.retire(addr, link);
    for (const addr of this.wanted) if (!this.links.has(addr) && this.self < addr) this.open(addr, true);
  }

  /** Signaling data from `from`, relayed by the coordinator. */
  signal(from: string, data: unknown): void {
    if (this.closed || from === this.self) return;
    let link = this.links.get(from);
    const offer = (data as { type?: unknown } | null)?.type === 'offer';
    if (link && offer && this.self > from) {
      // The dialler gave up on the old link (timeout, restart) and offers a new one.
      this.retire(from, link);
      link = undefined;
    }
    if (!link) {
      if (this.self < from || !offer) return; // we dial this one, or a stray message of a closed link
      link = this.open(from, false);
    }
    link.signal(data);
  }

  private open(remote: string, initiator: boolean): PeerLink {
    const messageTimeoutMs = this.options.messageTimeoutMs ?? 120_000;
    const opts: PeerLinkOptions = {
      initiator,
      wrtc: this.options.wrtc,
      iceServers: typeof this.options.iceServers === 'function' ? this.options.iceServers() : this.options.iceServers,
      limits: { maxMessageBytes: this.options.maxMessageBytes, timeoutMs: messageTimeoutMs, maxInFlight: 4 },
    };
    const link = new PeerLink(remote, opts, (data) => this.options.sendSignal(remote, data));
    this.links.set(remote, link);
    link.onConnect(() => {
      this.everLinked.add(remote);
      this.routeWatch?.up(remote, link.route);
      this.scheduleRoutes();
      this.options.onLink?.(remote, true, 'connected', link.route);
      for (const w of this.waiters.get(remote) ?? []) w();
      this.waiters.delete(remote);
    });
    link.onMessage((m) => this.options.onMessage(remote, m));
    link.onClose((reason) => {
      if (this.links.get(remote) !== link) return;
      this.retire(remote, link);
      this.options.onLink?.(remote, false, reason);
      if (!this.closed && this.wanted.has(remote) && this.self < remote) {
        setTimeout(() => {
          if (!this.closed && this.wanted.has(remote) && !this.links.has(remote)) this.open(remote, true);
        }, this.options.redialMs ?? 1000);
      }
    });
    return link;
  }

  private retire(addr: string, link: PeerLink): void {
    this.links.delete(addr);
    this.routeWatch?.down(addr);
    const s = link.stats;
    this.retired.bytesSent += s.bytesSent;
    this.retired.bytesReceived += s.bytesReceived;
    this.retired.dropped += s.messagesDropped + s.framesDropped;
    link.close();
  }

  isConnected(addr: string): boolean {
    return this.links.get(addr)?.connected ?? false;
  }

  /** Each open link's route (direct or relayed; null when its stats did not say). */
  routes(): Map<string, LinkRoute | null> {
    return new Map([...this.links].filter(([, l]) => l.connected).map(([a, l]) => [a, l.route]));
  }

  /** The open link to `addr`'s counts (bytes, messages, keepalives each way), or null when none is open. */
  linkStats(addr: string): PeerLinkStats | null {
    const link = this.links.get(addr);
    return link?.connected ? link.stats : null;
  }

  /** The link's route to `addr` as its stats say now (null without an open link). */
  async linkRoute(addr: string): Promise<LinkRoute | null> {
    const link = this.links.get(addr);
    return link?.connected ? link.refreshRoute() : null;
  }

  /** Reads every open link's route now and reports the changed ones through onRoute (before a summary is told: bounded, each read ≤ 2 s). */
  async refreshRoutes(): Promise<void> {
    await this.routeWatch?.refresh(true);
  }

  /** One timer for the route reads the watch has due next. */
  private scheduleRoutes(): void {
    const watch = this.routeWatch;
    if (!watch || this.closed) return;
    clearTimeout(this.routeTimer);
    const at = watch.wakeAt();
    if (at === null) return;
    this.routeTimer = setTimeout(() => void watch.refresh().finally(() => this.scheduleRoutes()), Math.max(0, at - performance.now()));
  }

  /** The peers listed now that no link has ever come up with: pairs that could not link, whose updates went through the store. */
  neverLinked(): string[] {
    return [...this.wanted].filter((a) => !this.everLinked.has(a));
  }

  /** Peers with an open link. */
  get connectedPeers(): string[] {
    return [...this.links].filter(([, l]) => l.connected).map(([a]) => a);
  }

  /** Resolves once the link to `addr` is up, or false after `timeoutMs`. */
  waitFor(addr: string, timeoutMs: number): Promise<boolean> {
    if (this.isConnected(addr)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const list = this.waiters.get(addr) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      this.waiters.set(addr, list);
    });
  }

  /** Sends to one peer; false when there is no open link or it failed mid-way. */
  async send(to: string, message: Uint8Array): Promise<boolean> {
    const link = this.links.get(to);
    if (!link || !link.connected) return false;
    try {
      await link.send(message);
      return true;
    } catch {
      return false;
    }
  }

  /** Sends to each of `to` in parallel; says who got it. */
  async sendAll(to: readonly string[], message: Uint8Array): Promise<{ sent: string[]; failed: string[] }> {
    const targets = to.filter((a) => a !== this.self);
    const ok = await Promise.all(targets.map((a) => this.send(a, message)));
    return { sent: targets.filter((_, i) => ok[i]), failed: targets.filter((_, i) => !ok[i]) };
  }

  stats(): { bytesSent: number; bytesReceived: number; dropped: number; links: number } {
    const t = { ...this.retired, links: 0 };
    for (const l of this.links.values()) {
      t.bytesSent += l.stats.bytesSent;
      t.bytesReceived += l.stats.bytesReceived;
      t.dropped += l.stats.messagesDropped + l.stats.framesDropped;
      if (l.connected) t.links++;
    }
    return t;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.routeTimer);
    for (const [a, l] of this.links) this.retire(a, l);
  }
}
