// The checkpoint scheduler (src/contributor/checkpoint-scheduler.ts) on a hand-moved clock:
// whom it asks which pieces they hold, which piece it fetches from whom range by range, what a
// bad piece, a bad range, a silent, busy, spent or vanished neighbour costs, and that the store
// is asked for exactly what no neighbour can give. Pure: the "hash check" is the test's
// comparison of the bytes with the file's. Then the serving side's bounds, on a mesh double.
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_SERVES, CheckpointPeers, MAX_CONCURRENT_CHECKPOINT_SENDS } from '../../src/contributor/checkpoint-peers.ts';
import { Changes } from '../../src/contributor/waiting.ts';
import { openEnvelope } from '../../src/net/envelope.ts';
import { MAX_CHECKPOINT_RANGE_BYTES, decodeRange, encodeCheckpointPeerMessage, parseCheckpointPeerMessage } from '../../src/protocol/checkpoint-peer-messages.ts';
import { devKeys, testConfig } from '../coordinator/helpers.ts';
import { BUSY_BACKOFF_MS, CheckpointScheduler, RANGE_TIMEOUT_MS, STALL_MS, STORE_AT_ONCE, type CheckpointAction } from '../../src/contributor/checkpoint-scheduler.ts';

const PIECE = 1000;
const RANGE = 400;

/** A "checkpoint file" of `n` pieces (the last one short), named p0, p1, … */
function checkpoint(n: number) {
  const file = new Uint8Array(n * PIECE - 300).map((_, i) => (i * 7 + 3) & 0xff);
  const hashes = Array.from({ length: n }, (_, i) => `p${i}`);
  const clock = { t: 0 };
  const buffer = new Uint8Array(file.length);
  const sched = new CheckpointScheduler({ now: () => clock.t, pieces: hashes, pieceBytes: PIECE, buffer, rangeBytes: RANGE });
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

/** Fetches every piece a plan asks of neighbours until nothing is asked (answering each range as asked). */
function drain(c: ReturnType<typeof checkpoint>, connected: string[]): void {
  for (let guard = 0; guard < 1000; guard++) {
    const wanted = c.sched.plan(connected).filter((a) => a.type === 'want');
    if (wanted.length === 0) return;
    for (const a of wanted) c.answer(a);
  }
}

describe('checkpoint scheduler (fake clock)', () => {
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

describe('checkpoint serving bounds (a peer holding the checkpoint)', () => {
  it('sends at most MAX_CONCURRENT_CHECKPOINT_SENDS ranges at once (busy beyond), each asker at most one checkpoint’s worth, everyone at most CHECKPOINT_SERVES (spent beyond)', async () => {
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
    const piece = { hash: 'a'.repeat(64), bytes: new Uint8Array(3 * MAX_CHECKPOINT_RANGE_BYTES) };
    expect(server.keep(7, 0, [piece])).toBe(true);
    const want = (from: string, start: number) => server.admit(from, encodeCheckpointPeerMessage({ type: 'want', round: 7, stage: 0, hash: piece.hash, start, end: start + MAX_CHECKPOINT_RANGE_BYTES }));
    const reasons = () => sent.filter((s) => s.kind === 'checkpoint').map((s) => `${s.to}:${(s.body as { reason: string }).reason}`);
    expect(MAX_CONCURRENT_CHECKPOINT_SENDS).toBe(2);
    for (const from of ['bob', 'carol', 'dave']) want(from, 0);
    expect(sent.filter((s) => s.kind === 'checkpoint-range').map((s) => s.to)).toEqual(['bob', 'carol']);
    expect(reasons()).toEqual(['dave:busy']);
    // Sends done: Bob takes the rest of the checkpoint and one range more (a retry's worth); the next is refused 'spent'.
    const flush = async () => {
      for (const s of sent.splice(0)) s.done();
      await new Promise((r) => setTimeout(r, 0));
    };
    await flush();
    for (const start of [1, 2, 0, 1]) {
      want('bob', start * MAX_CHECKPOINT_RANGE_BYTES);
      await flush();
    }
    want('bob', 2 * MAX_CHECKPOINT_RANGE_BYTES);
    expect(reasons()).toEqual(['bob:spent']);
    expect(server.serving).toEqual({ ranges: 5, bytes: 5 * MAX_CHECKPOINT_RANGE_BYTES, refused: 3 });
    // Everyone together: CHECKPOINT_SERVES checkpoints' worth (4 × 3 ranges), then spent for all.
    sent.length = 0;
    for (const from of ['carol', 'erin', 'frank', 'gina']) {
      for (const start of [0, 1, 2]) {
        want(from, start * MAX_CHECKPOINT_RANGE_BYTES);
        await flush();
      }
    }
    expect(CHECKPOINT_SERVES * 3).toBe(12);
    expect(server.serving.ranges).toBe(12);
    expect(sent).toEqual([]);
    want('hal', 0);
    expect(reasons()).toEqual(['hal:spent']);
    // Another round's or another stage's checkpoint is not held: 'missing'; which answers [] for it.
    sent.length = 0;
    server.admit('ian', encodeCheckpointPeerMessage({ type: 'which', round: 8, stage: 0 }));
    server.admit('ian', encodeCheckpointPeerMessage({ type: 'want', round: 8, stage: 0, hash: piece.hash, start: 0, end: 10 }));
    expect(sent.map((s) => s.body)).toEqual([{ type: 'holds', round: 8, stage: 0, pieces: [] }, expect.objectContaining({ type: 'refuse', reason: 'missing' })]);
    expect(server.admit('ian', new TextEncoder().encode('{"type":"want"}'))).toMatchObject({ reason: 'checkpoint-malformed' });
  });
});
