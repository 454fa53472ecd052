// A run's peer without a GPU, in a process of its own: a coordinator connection (joined with
// the hotkey it is given, heartbeating) and a PeerMesh on @roamhq/wrtc, driven over Node IPC
// by a live-swarm test (remote-peer.ts is the test's side). The tests' fake members and
// attacker are these, so that no Vitest worker loads libwebrtc (see
// test/helpers/webrtc-release.ts for why a process holding it must end it deliberately).
import wrtc from '@roamhq/wrtc';
import WebSocket from 'ws';
import { PeerMesh } from '../../src/net/mesh.ts';
import type { PeerLinkStats } from '../../src/net/peer-link.ts';
import type { LinkRoute } from '../../src/net/link-path.ts';
import type { ClientMessage, ServerMessage } from '../../src/protocol/messages.ts';
import type { IceServer } from '../../src/protocol/run-config.ts';
import { CoordinatorClient, type SocketLike } from '../../src/net/signaling.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

const HEARTBEAT_MS = 2000;

/** Test → peer. */
export type ToMeshPeer =
  | { type: 'join'; url: string; mnemonic: string; maxMessageBytes: number }
  /** A message to the coordinator. */
  | { type: 'send'; message: ClientMessage }
  /** Bytes to the coordinator (an envelope the test sealed). */
  | { type: 'binary'; bytes: Uint8Array }
  /** Bytes to one peer over its WebRTC link; answered by 'sent' with the same id. */
  | { type: 'peer'; id: number; to: string; bytes: Uint8Array }
  /** Each open link's counts; answered by 'linkStats' with the same id. */
  | { type: 'linkStats'; id: number }
  /** Each open link's path (direct or relayed) as its stats say now; answered by 'paths'. */
  | { type: 'paths'; id: number }
  | { type: 'close' };

/** Peer → test. */
export type FromMeshPeer =
  | { type: 'joined' }
  /** Every coordinator message but signaling, which the mesh consumes. */
  | { type: 'server'; message: ServerMessage }
  | { type: 'peer'; from: string; bytes: Uint8Array }
  /** `path`: direct or relayed (TURN), once up; `route`: the candidate types, local/remote. */
  | { type: 'link'; peer: string; up: boolean; reason: string; path?: string; route?: string }
  /** An open link's route as the mesh read it again, when it changed since it was told (ICE moved to another pair). */
  | { type: 'path'; peer: string; path: string; route: string }
  | { type: 'sent'; id: number; ok: boolean }
  | { type: 'linkStats'; id: number; links: Record<string, PeerLinkStats> }
  | { type: 'paths'; id: number; paths: Record<string, LinkRoute> }
  /** Links and socket closed, and libwebrtc's threads ended (`left`: those still running); it exits next. */
  | { type: 'closed'; left: string[] }
  | { type: 'error'; message: string };

const tell = (m: FromMeshPeer) => process.send!(m);

function main(): void {
  let client: CoordinatorClient | null = null;
  let mesh: PeerMesh | null = null;
  let heartbeat: ReturnType<typeof setInterval> | undefined;

  async function join(m: Extract<ToMeshPeer, { type: 'join' }>): Promise<void> {
    await cryptoReady();
    const key = Hotkey.fromMnemonic(m.mnemonic);
    const c = (client = new CoordinatorClient(m.url, key, (u) => new WebSocket(u) as unknown as SocketLike));
    // A coordinator with --turn grants STUN/TURN servers in its 'ice' message.
    let ice: IceServer[] = [];
    const peers = (mesh = new PeerMesh(key.address, {
      wrtc,
      iceServers: () => ice,
      maxMessageBytes: m.maxMessageBytes,
      sendSignal: (to, data) => c.send({ type: 'signal', to, data }),
      onMessage: (from, bytes) => tell({ type: 'peer', from, bytes }),
      onLink: (peer, up, reason, route) => tell({ type: 'link', peer, up, reason, ...(route ? { path: route.path, route: `${route.local}/${route.remote}` } : {}) }),
      onRoute: (peer, route) => tell({ type: 'path', peer, path: route.path, route: `${route.local}/${route.remote}` }),
    }));
    c.onMessage((s: ServerMessage) => {
      if (s.type === 'ice') ice = s.servers;
      if (s.type === 'neighbours') peers.setPeers(s.neighbours);
      if (s.type === 'signal') peers.signal(s.from, s.data);
      else tell({ type: 'server', message: s });
    });
    await c.connect();
    heartbeat = setInterval(() => c.send({ type: 'heartbeat' }), HEARTBEAT_MS);
    tell({ type: 'joined' });
  }

  process.on('message', (m: ToMeshPeer) => {
    void (async () => {
      switch (m.type) {
        case 'join':
          return join(m);
        case 'send':
          return client?.send(m.message);
        case 'binary':
          return void client?.sendBinary(m.bytes);
        case 'peer':
          return tell({ type: 'sent', id: m.id, ok: (await mesh?.send(m.to, m.bytes)) ?? false });
        case 'linkStats': {
          const links: Record<string, PeerLinkStats> = {};
          for (const peer of mesh?.connectedPeers ?? []) {
            const stats = mesh!.linkStats(peer);
            if (stats) links[peer] = stats;
          }
          return tell({ type: 'linkStats', id: m.id, links });
        }
        case 'paths': {
          const paths: Record<string, LinkRoute> = {};
          for (const peer of mesh?.connectedPeers ?? []) {
            const route = await mesh!.linkRoute(peer);
            if (route) paths[peer] = route;
          }
          return tell({ type: 'paths', id: m.id, paths });
        }
        case 'close':
          clearInterval(heartbeat);
          mesh?.close();
          client?.close();
          mesh = null;
          client = null;
          return tell({ type: 'closed', left: await releaseWebRtc() });
      }
    })().catch((e: Error) => tell({ type: 'error', message: `${m.type}: ${e.message}` }));
  });
  // Once closed (or when the test went away), the IPC channel was the last thing keeping it.
  process.on('disconnect', () => process.exit(0));
}

if (process.send) main();
