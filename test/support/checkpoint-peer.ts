// A contributor's checkpoint side alone, for tests and the checkpoint-sync benchmark: a real
// PeerMesh on @roamhq/wrtc, the contributor's Inbox and CheckpointPeers, linked in-process to
// the other peers made here (signaling handed across as the coordinator would relay it).
// A process that makes these must end libwebrtc before it exits (test/helpers/webrtc-release.ts).
import wrtc from '@roamhq/wrtc';
import { CheckpointPeers } from '../../src/contributor/checkpoint-peers.ts';
import { Inbox, Refusals } from '../../src/contributor/inbox.ts';
import { Changes, systemClock } from '../../src/contributor/waiting.ts';
import { PeerMesh } from '../../src/net/mesh.ts';
import type { RunConfig } from '../../src/protocol/run-config.ts';
import type { Hotkey } from '../../src/wallet/keys.ts';

export interface CheckpointPeer {
  key: Hotkey;
  mesh: PeerMesh;
  ckpt: CheckpointPeers;
  refusals: Refusals;
}

/** Peers of `keys`, each linked to every other, once `linked()` resolves. */
export function checkpointPeers(config: RunConfig, keys: Hotkey[], keepBytes?: number): { peers: CheckpointPeer[]; linked(): Promise<void>; close(): void } {
  const byAddress = new Map<string, CheckpointPeer>();
  const addresses = keys.map((k) => k.address);
  const peers = keys.map((key) => {
    const others = addresses.filter((a) => a !== key.address);
    const refusals = new Refusals(() => {});
    const changes = new Changes(systemClock, () => false);
    const mesh: PeerMesh = new PeerMesh(key.address, {
      wrtc, iceServers: [], maxMessageBytes: config.maxMessageBytes + 65536,
      sendSignal: (to, data) => setImmediate(() => byAddress.get(to)?.mesh.signal(key.address, JSON.parse(JSON.stringify(data)))),
      onMessage: (from, m) => inbox.admit(from, m),
      onLink: (p, up) => (up ? changes.notify() : ckpt.linkDown(p)),
    });
    const ckpt = new CheckpointPeers({ key, clock: systemClock, changes, config: () => config, stage: () => 0, mesh: () => mesh, refused: (r, from) => refusals.count(r.reason, from, r.message), keepBytes });
    const inbox = new Inbox({
      config: () => config, peers: () => others,
      piece: () => null, gather: () => null, handoff: () => null, weightsRequest: () => {}, weights: () => false,
      checkpoint: (from, payload) => ckpt.admit(from, payload),
      checkpointRange: (from, header, payload) => ckpt.admitRange(from, header, payload),
    }, refusals);
    const p = { key, mesh, ckpt, refusals };
    byAddress.set(key.address, p);
    return p;
  });
  return {
    peers,
    async linked() {
      for (const p of peers) p.mesh.setPeers(addresses);
      for (const p of peers) for (const a of addresses) if (a !== p.key.address && !(await p.mesh.waitFor(a, 30_000))) throw new Error(`${p.key.address} did not link to ${a}`);
    },
    close() {
      for (const p of peers) p.mesh.close();
    },
  };
}
