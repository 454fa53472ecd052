// A link's path from its WebRTC stats (the selected candidate pair, as Chromium, libwebrtc and
// Firefox report it), the swarm's tally of pairs by path, and the TURN flags (secret from a
// file or the environment, mistakes naming the flag, the secret never printed).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { routeFromStats } from '../../src/net/link-path.ts';
import { LinkBook, linksLine } from '../../src/cli/swarm-links.ts';
import { TURN_SECRET_ENV, turnFromFlags } from '../../src/cli/turn-flags.ts';

const candidates = (local: string, remote: string) => [
  { id: 'L1', type: 'local-candidate', candidateType: local },
  { id: 'R1', type: 'remote-candidate', candidateType: remote },
  { id: 'L2', type: 'local-candidate', candidateType: 'host' },
  { id: 'R2', type: 'remote-candidate', candidateType: 'host' },
];

describe('routeFromStats', () => {
  it('reads the pair the transport selected (Chromium, libwebrtc)', () => {
    const reports = [
      ...candidates('relay', 'srflx'),
      { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'succeeded', nominated: true },
      { id: 'P2', type: 'candidate-pair', localCandidateId: 'L2', remoteCandidateId: 'R2', state: 'failed' },
      { id: 'T', type: 'transport', selectedCandidatePairId: 'P1' },
    ];
    expect(routeFromStats(reports)).toEqual({ path: 'relayed', local: 'relay', remote: 'srflx' });
  });

  it("a pair marked selected (Firefox), or else the nominated one that succeeded; no relay at either end is direct", () => {
    const pair = { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'succeeded' };
    expect(routeFromStats([...candidates('srflx', 'prflx'), { ...pair, selected: true }])).toEqual({ path: 'direct', local: 'srflx', remote: 'prflx' });
    expect(routeFromStats([...candidates('host', 'relay'), { ...pair, nominated: true }])?.path).toBe('relayed');
  });

  it('no selected pair (not connected), or candidates it cannot find: null, not a guess', () => {
    expect(routeFromStats([...candidates('host', 'host'), { id: 'P', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'in-progress' }])).toBeNull();
    expect(routeFromStats([{ id: 'P', type: 'candidate-pair', selected: true, localCandidateId: 'x', remoteCandidateId: 'y' }])).toBeNull();
    expect(routeFromStats([])).toBeNull();
  });
});

describe('the swarm tally of pairs by path', () => {
  it('counts each pair once, by its latest link up; a pair that never linked is via the store', () => {
    const book = new LinkBook();
    book.note('a', { peer: 'b', up: false });
    book.note('a', { peer: 'b', up: true, path: 'direct', route: 'srflx/srflx' });
    book.note('b', { peer: 'a', up: true, path: 'direct', route: 'srflx/srflx' });
    book.note('a', { peer: 'c', up: true, path: 'relayed', route: 'relay/srflx' });
    book.note('c', { peer: 'a', up: false });
    book.note('c', { peer: 'd', up: false });
    book.note('d', { peer: 'c', up: false });
    const t = book.tally((x) => x.toUpperCase());
    expect(t).toMatchObject({ direct: 1, relayed: 1, store: 1 });
    expect(t.pairs).toEqual([
      { peers: ['A', 'B'], path: 'direct', route: 'srflx/srflx' },
      { peers: ['A', 'C'], path: 'relayed', route: 'relay/srflx' },
      { peers: ['C', 'D'], path: 'store' },
    ]);
    expect(linksLine(t)).toBe('links between neighbours: 1 direct, 1 through the relay, 1 via the store (never linked)');
    expect(linksLine(new LinkBook().tally((x) => x))).toBeNull();
  });

  it('counts a pair by the path its link reported last: a path event (ICE moved) replaces the one told at link-up; a pair never linked stays via the store', () => {
    const book = new LinkBook();
    book.note('a', { peer: 'b', up: true, path: 'relayed', route: 'relay/srflx' }); // first nominated under load
    book.note('b', { peer: 'a', up: true, path: 'relayed', route: 'srflx/relay' });
    book.notePath('a', { peer: 'b', path: 'direct', route: 'srflx/srflx' });
    book.note('a', { peer: 'c', up: false });
    book.notePath('c', { peer: 'a', path: 'direct', route: 'host/host' }); // no link known: ignored
    const t = book.tally((x) => x.toUpperCase());
    expect(t).toMatchObject({ direct: 1, relayed: 0, store: 1 });
    expect(t.pairs).toEqual([{ peers: ['A', 'B'], path: 'direct', route: 'srflx/srflx' }, { peers: ['A', 'C'], path: 'store' }]);
  });
});

describe('TURN flags', () => {
  const mistake = (m: string) => new Error(`usage: ${m}`);
  const secret = 'a-secret-of-enough-length';

  it('reads the secret from --turn-secret-file or the environment, never needing it on the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-turn-'));
    try {
      writeFileSync(join(dir, 's'), `${secret}\n`);
      const fromFile = turnFromFlags({ turn: 'turn:t.example.org:3478', 'turn-secret-file': join(dir, 's') }, mistake, {})!;
      const fromEnv = turnFromFlags({ turn: 'turn:t.example.org:3478' }, mistake, { [TURN_SECRET_ENV]: secret })!;
      expect(fromFile.grant('x', 0)).toEqual(fromEnv.grant('x', 0));
      expect(turnFromFlags({}, mistake, {})).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('each mistake names its flag and says what to give, without the secret', () => {
    expect(() => turnFromFlags({ turn: 'turn:t.example.org' }, mistake, {})).toThrow(/usage: --turn-secret-file .*TESSERA_TURN_SECRET/);
    expect(() => turnFromFlags({ turn: 'turn:t.example.org', 'turn-secret-file': '/nonexistent/x' }, mistake, {})).toThrow(/usage: --turn-secret-file cannot be read \(ENOENT\)/);
    expect(() => turnFromFlags({ 'turn-ttl': '600' }, mistake, {})).toThrow(/usage: --turn is needed/);
    expect(() => turnFromFlags({ turn: 'turn:t.example.org', 'turn-ttl': 'soon' }, mistake, { [TURN_SECRET_ENV]: secret })).toThrow(/usage: --turn-ttl must be a whole number/);
    let message = '';
    try {
      turnFromFlags({ turn: 'ftp:x' }, mistake, { [TURN_SECRET_ENV]: secret });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/usage: --turn has 'ftp:x'/);
    expect(message).not.toContain(secret);
  });
});
