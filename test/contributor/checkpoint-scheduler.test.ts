// The checkpoint scheduler (src/contributor/checkpoint-scheduler.ts) on a hand-moved clock:
// whom it asks which pieces they hold, which piece it fetches from whom range by range, what a
// bad piece, a bad range, a silent, busy, spent or vanished neighbour costs, and that the store
// is asked for exactly what no neighbour can give (the rules with one range in flight, as
// first written, then with several: the bounds on what is asked of a neighbour at once, a
// seeded run of random answers and 'busy' refusals that never exceeds them nor asks a byte
// twice but the refused, and a slow or refusing neighbour's pipeline moved elsewhere). Pure:
// the "hash check" is the test's comparison of the bytes with the file's. Then the serving
// side's bounds, on a mesh double.
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_SERVES, CheckpointPeers, MAX_CONCURRENT_CHECKPOINT_SENDS } from '../../src/contributor/checkpoint-peers.ts';
import { Changes } from '../../src/contributor/waiting.ts';
import { openEnvelope } from '../../src/net/envelope.ts';
import { MAX_CHECKPOINT_RANGE_BYTES, decodeRange, encodeCheckpointPeerMessage, parseCheckpointPeerMessage } from '../../src/protocol/checkpoint-peer-messages.ts';
import { devKeys, testConfig } from '../coordinator/helpers.ts';
import {
  BUSY_BACKOFF_MS, BYTES_IN_FLIGHT_PER_PEER, CheckpointScheduler, RANGES_IN_FLIGHT_PER_PEER, RANGE_TIMEOUT_MS, STALL_MS, STORE_AT_ONCE,
  type CheckpointAction, type CheckpointSchedulerOptions,
} from '../../src/contributor/checkpoint-scheduler.ts';

const PIECE = 1000;
const RANGE = 400;

/** A "checkpoint file" of `n` pieces (the last one short), named p0, p1, …; one range in flight per neighbour unless `bounds` say otherwise. */
function checkpoint(n: number, bounds: Pick<CheckpointSchedulerOptions, 'rangesInFlight' | 'bytesInFlight'> = { rangesInFlight: 1 }) {
  const file = new Uint8Array(n * PIECE - 300).map((_, i) => (i * 7 + 3) & 0xff);
  const hashes = Array.from({ length: n }, (_, i) => `p${i}`);
  const clock = { t: 0 };
  const buffer = new Uint8Array(file.length);
  const sched = new CheckpointScheduler({ now: () => clock.t, pieces: hashes, pieceBytes: PIECE, buffer, rangeBytes: RANGE, ...bounds });
  const range = (a: CheckpointAction) => (a.type === 'want' ? file.subarray(a.index * PIECE + a.start, a.index * PIECE + a.end) : new Uint8Array(0));
  /** Answers a want with the file's bytes; when the piece is whole, checks it as the caller would. */
  const answer = (a: CheckpointAction, bytes = range(a)) => {
    if (a.type !== 'want') throw new Error(`not a want: ${JSON.stringify(a)}`);
    const got = sched.onRange(a.peer, a.hash, a.start, bytes);
    if (got && 'whole' in got) {
      const ok = sched.bytesOf(got.whole).every((b, i) => b === file[got.whole * PIECE + i]);
      return sched.checked(got.whole, ok);
    }
    return got;
  };
  const wants = (actions: CheckpointAction[]) => actions.flatMap((a) => (a.type === 'want' ? [`${a.peer}:${a.index}@${a.start}`] : a.type === 'store' ? [`store:${a.index}`] : []));
  return { file, hashes, clock, buffer, sched, answer, wants };
}

/** Fetches every piece a plan asks of neighbours until nothing is asked (answering each range as asked; `outstanding` first). */
function drain(c: ReturnType<typeof checkpoint>, connected: string[], outstanding: CheckpointAction[] = []): void {
  for (let guard = 0; guard < 1000; guard++) {
    const wanted = [...outstanding.splice(0), ...c.sched.plan(connected)].filter((a) => a.type === 'want');
    if (wanted.length === 0) return;
    for (const a of wanted) c.answer(a);
  }
}

describe('checkpoint scheduler, one range in flight per neighbour (fake clock)', () => {
  it('asks each neighbour which pieces it holds, fetches each piece from one holder range by range, and takes only the rest from the store after STALL_MS', () => {
    const c = checkpoint(4);
    expect(c.sched.plan(['bob', 'carol'])).toEqual([{ type: 'which', peer: 'bob' }, { type: 'which', peer: 'carol' }]);
    expect(c.sched.onHolds('bob', ['p0', 'p1', 'p2', 'junk'])).toBeNull();
    expect(c.sched.onHolds('dave', ['p3'])).toMatchObject({ reason: 'unasked' });
    // Carol has not answered yet: the pieces nobody holds wait for her, Bob's start now.
    expect(c.wants(c.sched.plan(['bob', 'carol']))).toEqual(['bob:0@0']);
    expect(c.sched.onHolds('carol', [])).toBeNull();
    // One piece at a time per neighbour, one range outstanding: p0 in three ranges.
    const first = c.sched.plan(['bob', 'carol']);
    expect(first).toEqual([]); // bob:0@0 still outstanding, p3 not yet stalled
    expect(c.answer({ type: 'want', peer: 'bob', index: 0, hash: 'p0', start: 0, end: RANGE })).toBeNull();
    const next = c.sched.plan(['bob', 'carol']);
    expect(c.wants(next)).toEqual(['bob:0@400']);
    c.clock.t = STALL_MS;
    // p3: no neighbour holds it: the store, for that piece only.
    expect(c.wants(c.sched.plan(['bob', 'carol']))).toEqual(['store:3']);
    c.answer(next[0]);
    drain(c, ['bob', 'carol']);
    c.sched.bytesOf(3).set(c.file.subarray(3 * PIECE));
    c.sched.fromStore(3);
    expect(c.sched.complete).toBe(true);
    expect(c.buffer).toEqual(c.file);
    expect(c.sched.sources).toEqual({ piecesFromPeers: 3, piecesFromStore: 1, bytesFromPeers: 3 * PIECE, bytesFromStore: PIECE - 300, byPeer: { bob: 3 } });
  });

  it('a piece that hashes wrong is refused and fetched elsewhere; its sender, and one that sends the wrong length, are never asked again', () => {
    const c = checkpoint(3);
    c.sched.plan(['bob', 'carol', 'dave']);
    for (const p of ['bob', 'carol', 'dave']) c.sched.onHolds(p, c.hashes);
    const asks = c.sched.plan(['bob', 'carol', 'dave']);
    expect(c.wants(asks)).toEqual(['bob:0@0', 'carol:1@0', 'dave:2@0']);
    // Bob's piece 0, whole in three ranges, with a flipped byte in the last.
    let a: CheckpointAction = asks[0];
    for (let k = 0; k < 2; k++) {
      expect(c.answer(a)).toBeNull();
      a = c.sched.plan(['bob', 'carol', 'dave']).find((x) => x.type === 'want' && x.peer === 'bob')!;
    }
    const lie = c.file.slice(2 * RANGE, PIECE);
    lie[0] ^= 1;
    expect(c.answer(a, lie)).toMatchObject({ reason: 'bad-checkpoint-piece' });
    // Carol answers with the wrong length: refused at once.
    expect(c.answer(asks[1], new Uint8Array(5))).toMatchObject({ reason: 'bad-checkpoint-range' });
    // Pieces 0 and 1 go to Dave in turn (he is busy with 2 first); Bob and Carol get nothing more.
    expect(c.answer(asks[2])).toBeNull();
    drain(c, ['bob', 'carol', 'dave']);
    expect(c.sched.complete).toBe(true);
    expect(c.buffer).toEqual(c.file);
    expect(c.sched.sources.byPeer).toEqual({ dave: 3 });
    // A late range from Bob is no fault, and changes nothing.
    expect(c.sched.onRange('bob', 'p0', 0, c.file.subarray(0, RANGE))).toBeNull();
  });

  it('a vanished or silent neighbour loses its piece (what it sent is dropped); busy waits BUSY_BACKOFF_MS; spent and missing move on; with nobody left, the store', () => {
    const c = checkpoint(4);
    const all = ['bob', 'carol'];
    c.sched.plan(all);
    c.sched.onHolds('bob', c.hashes);
    c.sched.onHolds('carol', ['p0', 'p1']);
    expect(c.wants(c.sched.plan(all))).toEqual(['bob:0@0', 'carol:1@0']);
    // Bob sends one range of p0, then his link drops: p0 starts over with Carol once she is free.
    c.answer({ type: 'want', peer: 'bob', index: 0, hash: 'p0', start: 0, end: RANGE });
    c.sched.linkDown('bob');
    expect(c.wants(c.sched.plan(['carol']))).toEqual([]);
    // Carol is busy: her piece waits BUSY_BACKOFF_MS, then is asked again of her.
    expect(c.sched.onRefuse('carol', 'p1', 0, 'busy')).toBeNull();
    expect(c.wants(c.sched.plan(['carol']))).toEqual([]);
    c.clock.t += BUSY_BACKOFF_MS;
    expect(c.wants(c.sched.plan(['carol']))).toEqual(['carol:1@0']);
    // Then silent past RANGE_TIMEOUT_MS: not asked again for this checkpoint.
    c.clock.t += RANGE_TIMEOUT_MS;
    const after = c.sched.plan(['carol']);
    // Nobody usable holds anything now: after STALL_MS the store, STORE_AT_ONCE pieces at a time.
    expect(c.wants(after)).toEqual([]);
    c.clock.t += STALL_MS;
    expect(STORE_AT_ONCE).toBe(2);
    expect(c.wants(c.sched.plan(['carol']))).toEqual(['store:0', 'store:1']);
    expect(c.sched.wakeAt()).toBe(c.clock.t); // p2, p3 stalled too: they go as the store frees up
    c.sched.bytesOf(0).set(c.file.subarray(0, PIECE));
    c.sched.fromStore(0);
    expect(c.wants(c.sched.plan(['carol']))).toEqual(['store:2']);
    // A neighbour that comes back is asked again which it holds; 'spent' and 'missing' move on at once.
    const back = checkpoint(2);
    back.sched.plan(['bob', 'carol']);
    back.sched.onHolds('bob', back.hashes);
    back.sched.onHolds('carol', back.hashes);
    expect(back.wants(back.sched.plan(['bob', 'carol']))).toEqual(['bob:0@0', 'carol:1@0']);
    back.sched.onRefuse('bob', 'p0', 0, 'spent');
    back.sched.onRefuse('carol', 'p1', 0, 'missing');
    expect(back.wants(back.sched.plan(['bob', 'carol']))).toEqual(['carol:0@0']);
  });
});

describe('checkpoint scheduler, several ranges in flight per neighbour (fake clock)', () => {
  it('asks a neighbour for ranges up to its bounds, runs its pipeline on into the next piece, and asks more as ranges arrive', () => {
    expect(RANGES_IN_FLIGHT_PER_PEER).toBe(4);
    expect(BYTES_IN_FLIGHT_PER_PEER).toBe(16 * 1024 * 1024);
    // Bytes bound the pipeline here: a piece's worth (1000 bytes: ranges of 400, 400, 200).
    const c = checkpoint(4, { rangesInFlight: 4, bytesInFlight: PIECE });
    c.sched.plan(['bob']);
    c.sched.onHolds('bob', ['p0', 'p1', 'p2']);
    expect(c.wants(c.sched.plan(['bob']))).toEqual(['bob:0@0', 'bob:0@400', 'bob:0@800']);
    expect(c.sched.inFlight().get('bob')).toEqual({ ranges: 3, bytes: PIECE });
    // The first range frees 400 bytes: the next piece's first range goes out before p0 is whole.
    expect(c.answer({ type: 'want', peer: 'bob', index: 0, hash: 'p0', start: 0, end: RANGE })).toBeNull();
    expect(c.wants(c.sched.plan(['bob']))).toEqual(['bob:1@0']);
    expect(c.wants(c.sched.plan(['bob']))).toEqual([]); // nothing twice
    c.answer({ type: 'want', peer: 'bob', index: 0, hash: 'p0', start: RANGE, end: 2 * RANGE });
    c.answer({ type: 'want', peer: 'bob', index: 0, hash: 'p0', start: 2 * RANGE, end: PIECE });
    expect(c.sched.states().slice(0, 2)).toEqual(['done', 'peer']);
    expect(c.wants(c.sched.plan(['bob']))).toEqual(['bob:1@400', 'bob:1@800']);
    // Ranges bound it here: two at once, across pieces as well.
    const d = checkpoint(3, { rangesInFlight: 2 });
    d.sched.plan(['bob', 'carol']);
    d.sched.onHolds('bob', d.hashes);
    d.sched.onHolds('carol', d.hashes);
    const first = d.sched.plan(['bob', 'carol']);
    expect(d.wants(first)).toEqual(['bob:0@0', 'bob:0@400', 'carol:1@0', 'carol:1@400']);
    d.answer(first[0]);
    d.answer(first[1]);
    // Bob's p0 has one range left, then the third piece (the neighbour with the least asked takes a new piece).
    const second = d.sched.plan(['bob', 'carol']);
    expect(d.wants(second)).toEqual(['bob:0@800', 'bob:2@0']);
    drain(d, ['bob', 'carol'], [...first.slice(2), ...second]);
    expect(d.sched.complete).toBe(true);
    expect(d.buffer).toEqual(d.file);
  });

  it('seeded random answers, out of order, with busy refusals: never more asked of a neighbour than its bounds, no byte asked twice but the refused, the file whole from peers', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const bounds = { rangesInFlight: 3, bytesInFlight: 1000 };
    const c = checkpoint(12, bounds);
    const peers = ['bob', 'carol', 'dave'];
    c.sched.plan(peers);
    c.sched.onHolds('bob', c.hashes);
    c.sched.onHolds('carol', c.hashes.filter((_, i) => i % 2 === 0));
    c.sched.onHolds('dave', c.hashes.slice(6));
    type Want = Extract<CheckpointAction, { type: 'want' }>;
    let outstanding: Want[] = [];
    const seen = new Set<string>();
    let askedBytes = 0;
    let refusedBytes = 0;
    let most = 0;
    for (let step = 0; !c.sched.complete; step++) {
      if (step > 10_000) throw new Error('the fetch did not end');
      for (const a of c.sched.plan(peers)) {
        if (a.type !== 'want') throw new Error(`asked ${JSON.stringify(a)}: every piece has a holder`);
        const key = `${a.index}@${a.start}`;
        expect(seen.has(key), `asked ${key} again while it was outstanding`).toBe(false);
        seen.add(key);
        askedBytes += a.end - a.start;
        outstanding.push(a);
      }
      for (const [peer, l] of c.sched.inFlight()) {
        const mine = outstanding.filter((w) => w.peer === peer);
        expect(l).toEqual({ ranges: mine.length, bytes: mine.reduce((n, w) => n + w.end - w.start, 0) });
        expect(l.ranges).toBeLessThanOrEqual(bounds.rangesInFlight);
        expect(l.bytes).toBeLessThanOrEqual(bounds.bytesInFlight);
        most = Math.max(most, l.ranges);
      }
      if (outstanding.length === 0) {
        c.clock.t += BUSY_BACKOFF_MS; // only 'busy' backoffs hold anything back
        continue;
      }
      const k = Math.floor(random() * outstanding.length);
      const w = outstanding[k];
      outstanding = outstanding.filter((_, i) => i !== k);
      seen.delete(`${w.index}@${w.start}`);
      if (random() < 0.15) {
        refusedBytes += w.end - w.start;
        expect(c.sched.onRefuse(w.peer, w.hash, w.start, 'busy')).toBeNull();
      } else expect(c.answer(w)).toBeNull();
    }
    expect(c.buffer).toEqual(c.file);
    expect(askedBytes).toBe(c.file.length + refusedBytes);
    expect(refusedBytes).toBeGreaterThan(0);
    expect(most).toBe(bounds.rangesInFlight);
    expect(c.sched.sources).toMatchObject({ piecesFromPeers: 12, piecesFromStore: 0, bytesFromPeers: c.file.length });
  });

  it("a slow, refusing or lying neighbour's pipeline moves to another holder: what it sent of those pieces is dropped, its late ranges ignored", () => {
    const c = checkpoint(4, { rangesInFlight: 4 });
    const all = ['bob', 'carol'];
    c.sched.plan(all);
    c.sched.onHolds('bob', c.hashes);
    c.sched.onHolds('carol', c.hashes);
    // Each new piece goes to the holder with the least asked of it.
    const asks = c.sched.plan(all);
    expect(c.wants(asks)).toEqual(['bob:0@0', 'bob:0@400', 'bob:0@800', 'carol:1@0', 'carol:1@400', 'carol:1@800', 'bob:2@0', 'carol:3@0']);
    // Bob sends p0 whole and then nothing while Carol keeps sending: Bob's pipeline is filled
    // (asking more of him is no progress), and after RANGE_TIMEOUT_MS his p2 goes to Carol.
    for (const a of asks.slice(0, 6)) c.answer(a);
    c.answer(asks[7]);
    const more = c.sched.plan(all);
    expect(c.wants(more)).toEqual(['bob:2@400', 'bob:2@800', 'carol:3@400']); // p3 is the short last piece
    c.clock.t += RANGE_TIMEOUT_MS - 1;
    c.answer(more[2]);
    expect(c.wants(c.sched.plan(all))).toEqual([]);
    c.clock.t += 1;
    const moved = c.sched.plan(all);
    expect(c.wants(moved)).toEqual(['carol:2@0', 'carol:2@400', 'carol:2@800']);
    expect(c.sched.inFlight().get('bob')).toBeUndefined();
    expect(c.answer(asks[6])).toBeNull(); // Bob's late range: no fault, not kept
    drain(c, all, moved);
    expect(c.sched.complete).toBe(true);
    expect(c.buffer).toEqual(c.file);
    expect(c.sched.sources.byPeer).toEqual({ bob: 1, carol: 3 });
    // 'spent' with two pieces under way: both go elsewhere.
    const d = checkpoint(3, { rangesInFlight: 4 });
    d.sched.plan(all);
    d.sched.onHolds('bob', d.hashes);
    d.sched.onHolds('carol', d.hashes);
    expect(d.wants(d.sched.plan(all))).toEqual(['bob:0@0', 'bob:0@400', 'bob:0@800', 'carol:1@0', 'carol:1@400', 'carol:1@800', 'bob:2@0']);
    expect(d.sched.onRefuse('bob', 'p2', 0, 'spent')).toBeNull();
    expect(d.sched.states()).toEqual(['missing', 'peer', 'missing']);
    const toCarol = d.sched.plan(all);
    expect(d.wants(toCarol)).toEqual(['carol:0@0']);
    // A wrong-length range from Carol: refused, and both her pieces go back to missing.
    expect(d.answer(toCarol[0], new Uint8Array(3))).toMatchObject({ reason: 'bad-checkpoint-range' });
    expect(d.sched.states()).toEqual(['missing', 'missing', 'missing']);
    expect(d.sched.plan(all)).toEqual([]);
    // A liar with two whole pieces in hand at once: both dropped, the liar blamed once, then the store.
    const e = checkpoint(2, { rangesInFlight: 4 });
    e.sched.plan(['bob']);
    e.sched.onHolds('bob', e.hashes);
    const lies = e.sched.plan(['bob']);
    expect(e.wants(lies)).toEqual(['bob:0@0', 'bob:0@400', 'bob:0@800', 'bob:1@0']);
    const whole = (a: CheckpointAction) => (a.type === 'want' ? e.sched.onRange(a.peer, a.hash, a.start, new Uint8Array(a.end - a.start)) : null);
    expect(lies.map(whole)).toEqual([null, null, { whole: 0 }, null]);
    const last = e.sched.plan(['bob']);
    expect(e.wants(last)).toEqual(['bob:1@400']);
    expect(whole(last[0])).toEqual({ whole: 1 });
    expect(e.sched.checked(0, false)).toMatchObject({ reason: 'bad-checkpoint-piece' });
    expect(e.sched.checked(1, false)).toBeNull();
    expect(e.sched.plan(['bob'])).toEqual([]);
    e.clock.t += STALL_MS;
    expect(e.wants(e.sched.plan(['bob']))).toEqual(['store:0', 'store:1']);
  });
});

describe('checkpoint serving bounds (a peer holding the checkpoint)', () => {
  it('sends at most RANGES_IN_FLIGHT_PER_PEER ranges at once to one asker and MAX_CONCURRENT_CHECKPOINT_SENDS to all (busy beyond), each asker at most one checkpoint’s worth, everyone at most CHECKPOINT_SERVES (spent beyond)', async () => {
    const keys = await devKeys();
    const config = testConfig();
    const sent: { to: string; kind: string; body: unknown; done: () => void }[] = [];
    const mesh = {
      connectedPeers: [] as string[],
      isConnected: () => true,
      send: (to: string, bytes: Uint8Array) => {
        const { header, payload } = openEnvelope(bytes, { run: config.run, maxPayloadBytes: 8 << 20 });
        const body = header.kind === 'checkpoint' ? parseCheckpointPeerMessage(payload) : decodeRange(payload)!.data.length;
        return new Promise<boolean>((resolve) => sent.push({ to, kind: header.kind, body, done: () => resolve(true) }));
      },
    };
    const clock = { now: () => 0, sleep: async () => {} };
    const server = new CheckpointPeers({ key: keys.alice, clock, changes: new Changes(clock, () => false), config: () => config, stage: () => 0, mesh: () => mesh, refused: () => {} });
    const RANGES = 6;
    const piece = { hash: 'a'.repeat(64), bytes: new Uint8Array(RANGES * MAX_CHECKPOINT_RANGE_BYTES) };
    expect(server.keep(7, 0, [piece])).toBe(true);
    const want = (from: string, start: number) => server.admit(from, encodeCheckpointPeerMessage({ type: 'want', round: 7, stage: 0, hash: piece.hash, start, end: start + MAX_CHECKPOINT_RANGE_BYTES }));
    const reasons = () => sent.filter((s) => s.kind === 'checkpoint').map((s) => `${s.to}:${(s.body as { reason: string }).reason}`);
    const sentTo = () => sent.filter((s) => s.kind === 'checkpoint-range').map((s) => s.to);
    const flush = async () => {
      for (const s of sent.splice(0)) s.done();
      await new Promise((r) => setTimeout(r, 0));
    };
    // One asker: RANGES_IN_FLIGHT_PER_PEER ranges at once (what a joiner asks of a neighbour), 'busy' beyond.
    expect(RANGES_IN_FLIGHT_PER_PEER).toBe(4);
    for (const start of [0, 1, 2, 0, 1]) want('bob', start * MAX_CHECKPOINT_RANGE_BYTES);
    expect(sentTo()).toEqual(['bob', 'bob', 'bob', 'bob']);
    expect(reasons()).toEqual(['bob:busy']);
    // Everyone together: MAX_CONCURRENT_CHECKPOINT_SENDS at once.
    expect(MAX_CONCURRENT_CHECKPOINT_SENDS).toBe(8);
    for (const start of [0, 1, 2, 0]) want('carol', start * MAX_CHECKPOINT_RANGE_BYTES);
    want('dave', 0);
    expect(sentTo()).toEqual([...Array(4).fill('bob'), ...Array(4).fill('carol')]);
    expect(reasons()).toEqual(['bob:busy', 'dave:busy']);
    // Sends done: Dave is served; Bob, after the checkpoint's worth and one range more (a retry's worth), is 'spent'.
    await flush();
    want('dave', 0);
    expect(sentTo()).toEqual(['dave']);
    await flush();
    for (const start of [4, 5, 0]) {
      want('bob', start * MAX_CHECKPOINT_RANGE_BYTES);
      await flush();
    }
    want('bob', MAX_CHECKPOINT_RANGE_BYTES);
    expect(reasons()).toEqual(['bob:spent']);
    await flush();
    expect(server.serving.ranges).toBe(12); // Bob 7, Carol 4, Dave 1
    // Everyone together: CHECKPOINT_SERVES checkpoints' worth (4 × 6 ranges), then spent for all.
    expect(CHECKPOINT_SERVES * RANGES).toBe(24);
    for (const from of ['erin', 'gina']) {
      for (let start = 0; start < RANGES; start++) {
        want(from, start * MAX_CHECKPOINT_RANGE_BYTES);
        await flush();
      }
    }
    expect(server.serving.ranges).toBe(24);
    want('hal', 0);
    expect(reasons()).toEqual(['hal:spent']);
    expect(server.serving).toEqual({ ranges: 24, bytes: 24 * MAX_CHECKPOINT_RANGE_BYTES, refused: 4 });
    // Another round's or another stage's checkpoint is not held: 'missing'; which answers [] for it.
    sent.length = 0;
    server.admit('ian', encodeCheckpointPeerMessage({ type: 'which', round: 8, stage: 0 }));
    server.admit('ian', encodeCheckpointPeerMessage({ type: 'want', round: 8, stage: 0, hash: piece.hash, start: 0, end: 10 }));
    expect(sent.map((s) => s.body)).toEqual([{ type: 'holds', round: 8, stage: 0, pieces: [] }, expect.objectContaining({ type: 'refuse', reason: 'missing' })]);
    expect(server.admit('ian', new TextEncoder().encode('{"type":"want"}'))).toMatchObject({ reason: 'checkpoint-malformed' });
  });
});
