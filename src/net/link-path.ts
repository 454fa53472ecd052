// Which way a connected WebRTC link's packets travel, read from its stats (the selected ICE
// candidate pair): 'direct' when both ends use their own or a STUN-found (server-reflexive)
// address, 'relayed' when either end sends through a TURN server. A pair of peers that has
// no link at all exchanges updates through the coordinator's store ('store', counted by the
// callers). Environment-free: the reports are plain objects from RTCPeerConnection.getStats.

export type LinkPath = 'direct' | 'relayed';
/** How a pair of peers exchanges updates: over a link (direct or relayed) or via the store. */
export type PeerPath = LinkPath | 'store';

/** A path in words, for logs and the UI. */
export const PATH_WORDS: Record<PeerPath, string> = {
  direct: 'direct',
  relayed: 'through the relay',
  store: 'via the store',
};

export interface LinkRoute {
  path: LinkPath;
  /** The ICE candidate types of each end: host, srflx, prflx or relay. */
  local: string;
  remote: string;
}

type Report = Record<string, unknown>;

/** The selected pair's route, or null when the stats name none (not connected yet). */
export function routeFromStats(reports: readonly Report[]): LinkRoute | null {
  const byId = new Map<string, Report>();
  for (const r of reports) if (typeof r.id === 'string') byId.set(r.id, r);
  // Chromium and libwebrtc name the pair on the transport; Firefox marks it `selected`; else the
  // nominated pair that succeeded.
  const transport = reports.find((r) => r.type === 'transport' && typeof r.selectedCandidatePairId === 'string');
  const pairs = reports.filter((r) => r.type === 'candidate-pair');
  const pair =
    (transport && byId.get(transport.selectedCandidatePairId as string)) ??
    pairs.find((p) => p.selected === true) ??
    pairs.find((p) => p.nominated === true && p.state === 'succeeded');
  if (!pair) return null;
  const local = byId.get(pair.localCandidateId as string);
  const remote = byId.get(pair.remoteCandidateId as string);
  const typeOf = (c: Report | undefined) => (typeof c?.candidateType === 'string' ? c.candidateType : 'unknown');
  const route = { local: typeOf(local), remote: typeOf(remote) };
  if (route.local === 'unknown' && route.remote === 'unknown') return null;
  return { path: route.local === 'relay' || route.remote === 'relay' ? 'relayed' : 'direct', ...route };
}
