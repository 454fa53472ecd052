// PeerMesh over real WebRTC (@roamhq/wrtc) on loopback, signaling handed across in-process:
// which listed peers never linked (a pair that could not link exchanges updates through the
// store, and `tessera swarm` counts it so even when the run ends before the dial gives up).
import wrtc from '@roamhq/wrtc';
import { afterAll, describe, expect, it } from 'vitest';
import { PeerMesh } from '../../src/net/mesh.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';

afterAll(async () => expect(await releaseWebRtc()).toEqual([]));

describe('PeerMesh.neverLinked', () => {
  it('names the listed peers no link ever came up with, and not those that linked (even after their link closed)', async () => {
    const meshes = new Map<string, PeerMesh>();
    const ups: string[] = [];
    const make = (self: string) => {
      const mesh = new PeerMesh(self, {
        wrtc, iceServers: [], maxMessageBytes: 1 << 20,
        // 'c' never answers: its signaling goes nowhere, as to a peer behind a NAT no relay crosses.
        sendSignal: (to, data) => setImmediate(() => meshes.get(to)?.signal(self, JSON.parse(JSON.stringify(data)))),
        onMessage: () => {},
        onLink: (peer, up) => up && ups.push(`${self}-${peer}`),
      });
      meshes.set(self, mesh);
      return mesh;
    };
    const a = make('a');
    const b = make('b');
    try {
      a.setPeers(['a', 'b', 'c']);
      b.setPeers(['a', 'b']);
      expect(a.neverLinked().sort()).toEqual(['b', 'c']);
      expect(await a.waitFor('b', 20_000)).toBe(true);
      expect(a.neverLinked()).toEqual(['c']);
      expect(ups).toContain('a-b');
      b.close(); // a's link to b goes down; it did link once
      await new Promise((r) => setTimeout(r, 200));
      expect(a.neverLinked()).toEqual(['c']);
    } finally {
      a.close();
      b.close();
    }
  }, 60_000);
});
