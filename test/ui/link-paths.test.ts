// Which way each link travels, in the page's words: link events (with the path read from
// WebRTC's stats) folded into the run status, and the words the dashboard shows.
import { describe, expect, it } from 'vitest';
import { foldEvent, IDLE } from '../../renderer/state/run-status.ts';
import { blockedPeerNotice, linkPathsText } from '../../renderer/state/human.ts';
import type { EngineEvent } from '../../renderer/engine/messages.ts';

const A = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const B = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const C = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';

describe('link paths in the page', () => {
  it('folds each link up with its path, forgets it when it closes, and says it in words (a blocked one: via the store)', () => {
    const events: EngineEvent[] = [
      { event: 'link', peer: A, up: true, reason: 'connected', path: 'direct', route: 'srflx/srflx' },
      { event: 'link', peer: B, up: true, reason: 'connected', path: 'relayed', route: 'relay/prflx' },
      { event: 'link', peer: C, up: false, reason: 'ERR_ICE_CONNECTION_FAILURE: Ice connection failed.' },
    ];
    const s = events.reduce(foldEvent, { ...IDLE, activity: 'training' as const });
    expect(s.paths).toEqual({ [A]: 'direct', [B]: 'relayed' });
    expect(linkPathsText(s.paths, s.blocked)).toBe('5Grwva…utQY direct · 5FHneW…94ty through the relay · 5FLSig…S59Y via the store');
    const closed = foldEvent(s, { event: 'link', peer: B, up: false, reason: 'closed by the remote peer' });
    expect(closed.paths).toEqual({ [A]: 'direct' });
    expect(linkPathsText(IDLE.paths, IDLE.blocked)).toBe('no links yet');
    expect(blockedPeerNotice(C, 'ICE failed').text).toMatch(/TURN server .*tessera coordinator --turn.*via the store/);
  });

  it("shows a link's path as it stands: a path event (ICE moved to another pair) replaces the one told at link-up; none for a peer not linked", () => {
    const up = foldEvent({ ...IDLE, activity: 'training' as const }, { event: 'link', peer: A, up: true, reason: 'connected', path: 'relayed', route: 'relay/srflx' });
    expect(linkPathsText(up.paths, up.blocked)).toBe('5Grwva…utQY through the relay');
    const moved = foldEvent(up, { event: 'path', peer: A, path: 'direct', route: 'srflx/srflx' });
    expect(linkPathsText(moved.paths, moved.blocked)).toBe('5Grwva…utQY direct');
    expect(foldEvent(moved, { event: 'path', peer: B, path: 'direct', route: 'host/host' }).paths).toEqual({ [A]: 'direct' });
  });
});
