// How each pair of neighbours in `tessera swarm` exchanged updates, from the contributors'
// `link` and `path` events: over a direct WebRTC link (own or STUN-found addresses), through
// the TURN relay, or — a pair that tried and never linked — via the coordinator's store. A pair
// is counted once, by its latest link that came up, with the path that link last reported
// (a `path` event: ICE moved to another candidate pair; each contributor reads its links'
// paths again before it stops, so the summary has them as they stood at the end).
import { PATH_WORDS, type PeerPath } from '../net/link-path.ts';

export interface LinkTally {
  direct: number;
  relayed: number;
  store: number;
  pairs: { peers: [string, string]; path: PeerPath; route?: string }[];
}

interface PairState {
  path: PeerPath;
  route?: string;
}

export class LinkBook {
  readonly #pairs = new Map<string, PairState>();

  /** `self` reported a link event about `peer`. */
  note(self: string, e: { peer: string; up: boolean; path?: 'direct' | 'relayed'; route?: string }): void {
    const key = self < e.peer ? `${self} ${e.peer}` : `${e.peer} ${self}`;
    const known = this.#pairs.get(key);
    if (e.up) this.#pairs.set(key, { path: e.path ?? 'direct', route: e.route });
    else if (!known) this.#pairs.set(key, { path: 'store' });
  }

  /** `self` reported that its open link to `peer` now travels `path` (a pair not known linked is left alone). */
  notePath(self: string, e: { peer: string; path: 'direct' | 'relayed'; route: string }): void {
    const key = self < e.peer ? `${self} ${e.peer}` : `${e.peer} ${self}`;
    const known = this.#pairs.get(key);
    if (known && known.path !== 'store') this.#pairs.set(key, { path: e.path, route: e.route });
  }

  /** The counts, with each pair named by `nameOf`. */
  tally(nameOf: (address: string) => string): LinkTally {
    const t: LinkTally = { direct: 0, relayed: 0, store: 0, pairs: [] };
    for (const [key, s] of this.#pairs) {
      t[s.path]++;
      const [a, b] = key.split(' ').map(nameOf);
      t.pairs.push({ peers: [a, b], path: s.path, ...(s.route ? { route: s.route } : {}) });
    }
    t.pairs.sort((x, y) => x.peers.join().localeCompare(y.peers.join()));
    return t;
  }
}

/** One line for a person: how the pairs of neighbours exchanged updates. */
export function linksLine(t: LinkTally): string | null {
  if (t.direct + t.relayed + t.store === 0) return null;
  return `links between neighbours: ${t.direct} ${PATH_WORDS.direct}, ${t.relayed} ${PATH_WORDS.relayed}, ${t.store} ${PATH_WORDS.store} (never linked)`;
}
