// Page of the NAT test (test/swarm/nat-turn.test.ts): a member of the run in a browser tab
// whose Chromium runs behind a NAT namespace. It joins the coordinator named in the URL
// (?coordinator=ws://…) with a fresh hotkey, takes the STUN/TURN servers the coordinator grants
// (its 'ice' message) and links with its neighbours through the same PeerMesh the contributor
// uses, on the page's own RTCPeerConnection. What happened is kept in window.__nat for the
// test to read: the grant, each link's path (direct or relayed) and the bytes received.
import { CoordinatorClient, type SocketLike } from '../../../src/net/signaling.ts';
import { PeerMesh } from '../../../src/net/mesh.ts';
import type { IceServer } from '../../../src/protocol/run-config.ts';
import { Hotkey, cryptoReady } from '../../../src/wallet/keys.ts';

const HEARTBEAT_MS = 2000;

export interface NatPageState {
  address: string;
  /** The TURN usernames granted (expiry:address). */
  grants: string[];
  links: { peer: string; up: boolean; reason: string; path?: string; route?: string }[];
  /** Sizes of the messages received from peers, with the sender. */
  received: { from: string; bytes: number; first: number }[];
  error: string | null;
}

const state: NatPageState = { address: '', grants: [], links: [], received: [], error: null };
(globalThis as unknown as { __nat: NatPageState }).__nat = state;

async function main(): Promise<void> {
  const url = new URLSearchParams((globalThis as unknown as { location: { search: string } }).location.search).get('coordinator');
  if (!url) throw new Error('no ?coordinator= in the URL');
  await cryptoReady();
  const { key } = Hotkey.generate();
  state.address = key.address;
  let ice: IceServer[] = [];
  const client = new CoordinatorClient(url, key, (u) => new WebSocket(u) as unknown as SocketLike);
  const mesh = new PeerMesh(key.address, {
    iceServers: () => ice,
    maxMessageBytes: 1 << 20,
    sendSignal: (to, data) => client.send({ type: 'signal', to, data }),
    onMessage: (from, m) => state.received.push({ from, bytes: m.length, first: m[0] ?? -1 }),
    onLink: (peer, up, reason, route) => state.links.push({ peer, up, reason, ...(route ? { path: route.path, route: `${route.local}/${route.remote}` } : {}) }),
  });
  client.onMessage((m) => {
    if (m.type === 'ice') {
      ice = m.servers;
      state.grants.push(...m.servers.flatMap((s) => (s.username ? [s.username] : [])));
    }
    if (m.type === 'neighbours') mesh.setPeers(m.neighbours);
    if (m.type === 'signal') mesh.signal(m.from, m.data);
  });
  await client.connect();
  setInterval(() => client.send({ type: 'heartbeat' }), HEARTBEAT_MS);
}

main().catch((e: Error) => (state.error = e.message));
