// RouteWatch (src/net/route-watch.ts) on a hand-moved clock with a fake stats source: a link's
// route is read ROUTE_SETTLE_MS after it came up, then every ROUTE_REFRESH_MS, and on demand;
// only a route that differs from the one last reported is reported; a link that went down is
// not read, and a read that answers after its link went down (or down and up) is dropped.
import { describe, expect, it } from 'vitest';
import type { LinkRoute } from '../../src/net/link-path.ts';
import { ROUTE_REFRESH_MS, ROUTE_SETTLE_MS, RouteWatch } from '../../src/net/route-watch.ts';

const relayed: LinkRoute = { path: 'relayed', local: 'relay', remote: 'srflx' };
const direct: LinkRoute = { path: 'direct', local: 'srflx', remote: 'srflx' };

function watch() {
  const clock = { t: 1000 };
  /** What each link's stats say now; a function to hold a read open. */
  const stats = new Map<string, LinkRoute | null | (() => Promise<LinkRoute | null>)>();
  const reads: string[] = [];
  const changes: string[] = [];
  const w = new RouteWatch({
    now: () => clock.t,
    read: async (peer) => {
      reads.push(peer);
      const s = stats.get(peer);
      if (s === undefined) throw new Error('no stats');
      return typeof s === 'function' ? s() : s;
    },
    onChange: (peer, r) => changes.push(`${peer}:${r.path}:${r.local}/${r.remote}`),
  });
  return { clock, stats, reads, changes, w };
}

describe('RouteWatch (fake clock, fake stats)', () => {
  it('reads a link ROUTE_SETTLE_MS after link-up, then every ROUTE_REFRESH_MS, and reports only a changed route', async () => {
    const { clock, stats, reads, changes, w } = watch();
    expect(w.wakeAt()).toBeNull();
    w.up('bob', relayed);
    w.up('carol', direct);
    expect(w.wakeAt()).toBe(1000 + ROUTE_SETTLE_MS);
    stats.set('bob', direct); // ICE moved bob's link to a direct pair
    stats.set('carol', direct);
    await w.refresh();
    expect(reads).toEqual([]); // not due yet
    clock.t += ROUTE_SETTLE_MS;
    await w.refresh();
    expect(reads).toEqual(['bob', 'carol']);
    expect(changes).toEqual(['bob:direct:srflx/srflx']);
    expect(w.wakeAt()).toBe(clock.t + ROUTE_REFRESH_MS);
    // Unchanged since: nothing reported; due again only after ROUTE_REFRESH_MS.
    await w.refresh();
    expect(reads).toHaveLength(2);
    clock.t += ROUTE_REFRESH_MS;
    await w.refresh();
    expect(reads).toHaveLength(4);
    expect(changes).toHaveLength(1);
    // The candidate types alone changing is a change too (srflx → host on the same path).
    stats.set('carol', { path: 'direct', local: 'host', remote: 'host' });
    await w.refresh(true); // on demand: every link, due or not
    expect(changes).toEqual(['bob:direct:srflx/srflx', 'carol:direct:host/host']);
  });

  it('a link that went down is not read; a read answering after its link went down, or down and up, is dropped; a failed or empty read changes nothing', async () => {
    const { clock, stats, reads, changes, w } = watch();
    w.up('bob', relayed);
    w.up('carol', null); // its stats did not say at link-up
    w.down('bob');
    stats.set('carol', null);
    clock.t += ROUTE_SETTLE_MS;
    await w.refresh();
    expect(reads).toEqual(['carol']);
    expect(changes).toEqual([]);
    // A read held open while the link goes down and comes up again (relayed): its answer is stale.
    let answer!: (r: LinkRoute) => void;
    stats.set('carol', () => new Promise<LinkRoute>((r) => (answer = r)));
    const pending = w.refresh(true);
    w.down('carol');
    w.up('carol', relayed);
    answer(direct);
    await pending;
    expect(changes).toEqual([]);
    // The new link is read in its turn, and what its stats say then is reported.
    stats.set('carol', direct);
    clock.t += ROUTE_SETTLE_MS;
    await w.refresh();
    expect(changes).toEqual(['carol:direct:srflx/srflx']);
    // A stats call that throws: nothing reported, the link read again later.
    stats.delete('carol');
    await w.refresh(true);
    expect(changes).toHaveLength(1);
    expect(w.wakeAt()).toBe(clock.t + ROUTE_REFRESH_MS);
    w.down('carol');
    expect(w.wakeAt()).toBeNull();
  });
});
