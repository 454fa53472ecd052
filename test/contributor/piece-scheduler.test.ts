// The piece scheduler (src/contributor/piece-scheduler.ts) on a hand-moved clock: which piece
// it asks of whom, what it does when a neighbour is busy, spent, silent, gone or lying, and
// when it turns to the store — for only the missing pieces. Pure: no envelopes or links, just
// bytes cut into 1 KiB pieces and checked against their list and its root.
import { describe, expect, it } from 'vitest';
import { ASKS_PER_NEIGHBOUR, BUSY_BACKOFF_MS, PIECE_TIMEOUT_MS, PieceScheduler, STALL_MS, type PieceAction } from '../../src/contributor/piece-scheduler.ts';
import { listPieces, pieceRange, pieceRoot, type PieceList } from '../../src/net/pieces.ts';

const PIECE = 1024;

/** An "update" of `n` pieces (the last one short), its list and the root a commit would name. */
function update(n: number, tag: number): { bytes: Uint8Array; hash: string; list: PieceList; root: string } {
  const bytes = new Uint8Array(n * PIECE - 100).map((_, i) => (i * 31 + tag) & 0xff);
  const list = listPieces(bytes, PIECE);
  return { bytes, hash: tag.toString(16).padStart(64, '0'), list, root: pieceRoot(list) };
}

const piece = (u: { bytes: Uint8Array; list: PieceList }, i: number) => {
  const at = pieceRange(u.list, i);
  return u.bytes.subarray(at.start, at.end);
};

function harness(holders: Record<string, string[]>) {
  const clock = { t: 0 };
  const sched = new PieceScheduler({ now: () => clock.t, maxEnvelopeBytes: 1 << 20 });
  const plan = (): PieceAction[] => sched.plan((hash) => holders[hash] ?? []);
  const wants = (actions: PieceAction[]) => actions.flatMap((a) => (a.type === 'want' ? [`${a.peer}:${a.piece}`] : []));
  return { clock, sched, plan, wants };
}

describe('piece scheduler (fake clock)', () => {
  it('asks one holder for the list, believes it only if it hashes to the root, then spreads the pieces one ask per neighbour', () => {
    const u = update(5, 1);
    const { sched, plan, wants } = harness({ [u.hash]: ['bob', 'carol', 'dave'] });
    sched.start(u.hash, u.root);
    expect(plan()).toEqual([{ type: 'want-list', peer: 'bob', hash: u.hash }]);
    expect(plan()).toEqual([]); // one list ask at a time
    // Bob lies about the list: dropped, counted, and Bob is never asked again.
    const forged = { ...u.list, hashes: [...u.list.hashes].reverse() };
    expect(sched.onList('bob', u.hash, forged)).toMatchObject({ reason: 'bad-piece-list' });
    expect(plan()).toEqual([{ type: 'want-list', peer: 'carol', hash: u.hash }]);
    expect(sched.onList('carol', u.hash, u.list)).toBeNull();
    // Five pieces, two usable neighbours, ASKS_PER_NEIGHBOUR each.
    expect(ASKS_PER_NEIGHBOUR).toBe(1);
    expect(wants(plan())).toEqual(['carol:0', 'dave:1']);
    expect(sched.onPiece('dave', u.hash, 1, piece(u, 1))).toBeNull();
    expect(wants(plan())).toEqual(['dave:2']);
    expect(sched.onPiece('carol', u.hash, 0, piece(u, 0))).toBeNull();
    expect(sched.onPiece('dave', u.hash, 2, piece(u, 2))).toBeNull();
    expect(wants(plan())).toEqual(['carol:3', 'dave:4']);
    expect(sched.onPiece('carol', u.hash, 3, piece(u, 3))).toBeNull();
    expect(sched.assembled(u.hash)).toBeNull();
    expect(sched.onPiece('dave', u.hash, 4, piece(u, 4))).toBeNull();
    expect(sched.assembled(u.hash)).toEqual(u.bytes);
    expect(sched.sources(u.hash)).toEqual({ peers: 5, store: 0 });
  });

  it('resumes after a neighbour vanishes mid-transfer: only its pieces are asked again, of another holder', () => {
    const u = update(4, 2);
    const holders = { [u.hash]: ['bob', 'carol'] };
    const { sched, plan, wants } = harness(holders);
    sched.start(u.hash, u.root);
    plan();
    sched.onList('bob', u.hash, u.list);
    expect(wants(plan())).toEqual(['bob:0', 'carol:1']);
    sched.onPiece('bob', u.hash, 0, piece(u, 0));
    expect(wants(plan())).toEqual(['bob:2']);
    // Bob's link drops with piece 2 under way: carol finishes, asked only for what is missing.
    holders[u.hash] = ['carol'];
    sched.linkDown('bob');
    sched.onPiece('carol', u.hash, 1, piece(u, 1));
    expect(wants(plan())).toEqual(['carol:2']);
    sched.onPiece('carol', u.hash, 2, piece(u, 2));
    expect(wants(plan())).toEqual(['carol:3']);
    sched.onPiece('carol', u.hash, 3, piece(u, 3));
    expect(sched.assembled(u.hash)).toEqual(u.bytes);
    expect(sched.sources(u.hash)).toEqual({ peers: 4, store: 0 });
  });

  it('moves a silent neighbour\'s piece to another after PIECE_TIMEOUT_MS, still takes its late answer while the piece is missing, and takes the store when every holder went silent', () => {
    const u = update(3, 3);
    const { clock, sched, plan, wants } = harness({ [u.hash]: ['bob', 'carol', 'dave'] });
    sched.start(u.hash, u.root);
    plan();
    sched.onList('bob', u.hash, u.list);
    expect(wants(plan())).toEqual(['bob:0', 'carol:1', 'dave:2']);
    sched.onPiece('bob', u.hash, 0, piece(u, 0));
    expect(plan()).toEqual([]);
    expect(sched.wakeAt()).toBe(PIECE_TIMEOUT_MS);
    clock.t = PIECE_TIMEOUT_MS - 1;
    expect(plan()).toEqual([]);
    clock.t = PIECE_TIMEOUT_MS; // carol and dave silent: their pieces go to bob, one at a time; neither is asked for this update again
    expect(wants(plan())).toEqual(['bob:1']);
    // Carol's late piece 1 still counts (it checks and is missing); bob's answer to the same ask is then dropped without blame.
    expect(sched.onPiece('carol', u.hash, 1, piece(u, 1))).toBeNull();
    expect(sched.onPiece('bob', u.hash, 1, piece(u, 1))).toBeNull();
    expect(wants(plan())).toEqual(['bob:2']);
    // Bob goes silent too: nobody is left, and it has been more than STALL_MS since anyone could be asked: the store, for piece 2 only.
    clock.t += PIECE_TIMEOUT_MS;
    expect(plan()).toEqual([{ type: 'store', hash: u.hash, pieces: [2] }]);
    expect(sched.onPiece('dave', u.hash, 2, piece(u, 2))).toBeNull(); // too late: the store has it in hand
    expect(sched.storePiece(u.hash, 2, piece(u, 2))).toBe(true);
    expect(sched.assembled(u.hash)).toEqual(u.bytes);
    expect(sched.sources(u.hash)).toEqual({ peers: 2, store: 1 });
  });

  it('drops and counts a bad piece, never asks its sender again, and keeps every piece already checked', () => {
    const u = update(3, 4);
    const { sched, plan, wants } = harness({ [u.hash]: ['bob', 'carol'] });
    sched.start(u.hash, u.root);
    plan();
    sched.onList('bob', u.hash, u.list);
    expect(wants(plan())).toEqual(['bob:0', 'carol:1']);
    sched.onPiece('bob', u.hash, 0, piece(u, 0));
    const bad = piece(u, 1).slice();
    bad[7] ^= 1;
    expect(sched.onPiece('carol', u.hash, 1, bad)).toMatchObject({ reason: 'bad-piece' });
    expect(wants(plan())).toEqual(['bob:1']);
    sched.onPiece('bob', u.hash, 1, piece(u, 1));
    expect(wants(plan())).toEqual(['bob:2']);
    // Carol is out for the round, even for what it was asked before; a short piece is bad too.
    expect(sched.onPiece('bob', u.hash, 2, piece(u, 2).subarray(1))).toMatchObject({ reason: 'bad-piece' });
    expect(plan()).toEqual([]);
    expect(sched.sources(u.hash)).toEqual({ peers: 2, store: 0 });
  });

  it('leaves a busy neighbour alone for BUSY_BACKOFF_MS, a spent one for the round, a missing one for that update; then the store, for only the missing pieces', () => {
    const u = update(4, 5);
    const v = update(2, 6);
    const { clock, sched, plan, wants } = harness({ [u.hash]: ['bob', 'carol', 'dave'], [v.hash]: ['carol'] });
    sched.start(u.hash, u.root);
    sched.start(v.hash, v.root);
    expect(plan()).toEqual([{ type: 'want-list', peer: 'bob', hash: u.hash }, { type: 'want-list', peer: 'carol', hash: v.hash }]);
    sched.onList('bob', u.hash, u.list);
    sched.onList('carol', v.hash, v.list);
    expect(wants(plan())).toEqual(['bob:0', 'carol:1', 'dave:2']); // carol's one ask goes to u first; v waits for a free carol
    sched.onPiece('bob', u.hash, 0, piece(u, 0));
    expect(sched.onRefuse('carol', u.hash, 1, 'busy')).toBeNull();
    expect(sched.onRefuse('dave', u.hash, 2, 'missing')).toBeNull();
    expect(wants(plan())).toEqual(['bob:1']); // carol backs off, dave lacks u
    expect(sched.wakeAt()).toBe(BUSY_BACKOFF_MS);
    clock.t = BUSY_BACKOFF_MS;
    expect(wants(plan())).toEqual(['carol:2']);
    expect(sched.onRefuse('carol', u.hash, 2, 'spent')).toBeNull();
    sched.onPiece('bob', u.hash, 1, piece(u, 1));
    expect(wants(plan())).toEqual(['bob:2']);
    expect(sched.onRefuse('bob', u.hash, 2, 'spent')).toBeNull();
    // Nobody left for u (pieces 2 and 3) nor for v (carol is spent): after STALL_MS, the store, for what is missing.
    const stalledAt = clock.t;
    expect(plan()).toEqual([]);
    expect(sched.wakeAt()).toBe(stalledAt + STALL_MS);
    clock.t = stalledAt + STALL_MS;
    expect(plan()).toEqual([{ type: 'store', hash: u.hash, pieces: [2, 3] }, { type: 'store', hash: v.hash, pieces: [0, 1] }]);
    for (const i of [2, 3]) expect(sched.storePiece(u.hash, i, piece(u, i))).toBe(true);
    expect(sched.storePiece(v.hash, 0, piece(v, 1))).toBe(false); // the store's bytes are checked too
    expect(sched.assembled(u.hash)).toEqual(u.bytes);
    expect(sched.sources(u.hash)).toEqual({ peers: 2, store: 2 });
  });

  it('takes the whole update from the store when no neighbour announced it for STALL_MS, and blames only unasked answers', () => {
    const u = update(2, 7);
    const { clock, sched, plan } = harness({});
    sched.start(u.hash, u.root);
    expect(plan()).toEqual([]);
    expect(sched.wakeAt()).toBe(STALL_MS);
    clock.t = STALL_MS - 1;
    expect(plan()).toEqual([]);
    clock.t = STALL_MS;
    expect(plan()).toEqual([{ type: 'store', hash: u.hash, pieces: null }]);
    expect(sched.wakeAt()).toBeNull();
    expect(sched.onPiece('bob', u.hash, 0, piece(u, 0))).toMatchObject({ reason: 'unasked' });
    expect(sched.onList('bob', u.hash, u.list)).toMatchObject({ reason: 'unasked' });
    expect(sched.onRefuse('bob', u.hash, 0, 'busy')).toMatchObject({ reason: 'unasked' });
    sched.storeWhole(u.hash, u.bytes, u.list);
    expect(sched.assembled(u.hash)).toEqual(u.bytes);
    expect(sched.sources(u.hash)).toEqual({ peers: 0, store: 2 });
  });

  it('refuses a list larger than the run allows before allocating it', () => {
    const u = update(2, 8);
    const { sched, plan } = harness({ [u.hash]: ['bob'] });
    sched.start(u.hash, u.root);
    plan();
    const huge = { bytes: 2 << 20, pieceBytes: PIECE, hashes: Array.from({ length: 2048 }, () => u.list.hashes[0]) };
    expect(sched.onList('bob', u.hash, huge)).toMatchObject({ reason: 'bad-piece-list' });
    expect(sched.list(u.hash)).toBeNull();
  });
});
