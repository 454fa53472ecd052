import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHUNK_BYTES, FRAME_HEADER_BYTES, FRAME_VERSION, FrameError, Reassembler, frameCount, frameMessage, iterateFrames, type ReassemblyLimits,
} from '../../src/net/framing.ts';

const LIMITS: ReassemblyLimits = { maxMessageBytes: 8 << 20, timeoutMs: 1000, maxInFlight: 4 };
const ROOM = DEFAULT_CHUNK_BYTES - FRAME_HEADER_BYTES;

function randomBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) b[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  return b;
}

const same = (a: Uint8Array | null, b: Uint8Array) => a !== null && Buffer.compare(a, b) === 0;

/** A frame with a hand-written header. */
function frame(id: number, total: number, offset: number, data: Uint8Array | number, version = FRAME_VERSION): Uint8Array {
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const f = new Uint8Array(FRAME_HEADER_BYTES + d.length);
  const dv = new DataView(f.buffer);
  f[0] = version;
  dv.setUint32(1, id, true);
  dv.setUint32(5, total, true);
  dv.setUint32(9, offset, true);
  f.set(d, FRAME_HEADER_BYTES);
  return f;
}

describe('frameMessage + Reassembler', () => {
  it('round trips at every size around the chunk boundary and at several MB', () => {
    const C = DEFAULT_CHUNK_BYTES;
    const sizes = [0, 1, ROOM - 1, ROOM, ROOM + 1, C - 1, C, C + 1, 2 * ROOM, 2 * ROOM + 1, 5 << 20, (5 << 20) + 3];
    for (const n of sizes) {
      const msg = randomBytes(n, n);
      const frames = frameMessage(n + 1, msg);
      expect(frames.length, `${n} bytes`).toBe(frameCount(n));
      for (const f of frames) expect(f.length).toBeLessThanOrEqual(C);
      const r = new Reassembler(LIMITS);
      const out = frames.map((f) => r.push(f));
      expect(out.slice(0, -1).every((o) => o === null)).toBe(true);
      expect(same(out.at(-1)!, msg), `${n} bytes`).toBe(true);
      expect(r.stats).toMatchObject({ framesDropped: 0, messagesDropped: 0, messagesCompleted: 1 });
      expect(r.inFlight).toBe(0);
    }
  });

  it('honours a custom chunk size and rejects bad arguments', () => {
    const msg = randomBytes(1000);
    const frames = frameMessage(0, msg, 100);
    expect(frames.length).toBe(Math.ceil(1000 / 87));
    expect(frames.every((f) => f.length <= 100)).toBe(true);
    const r = new Reassembler(LIMITS);
    expect(same(frames.map((f) => r.push(f)).at(-1)!, msg)).toBe(true);
    expect(() => frameMessage(0, msg, FRAME_HEADER_BYTES)).toThrow(FrameError);
    expect(() => frameMessage(-1, msg)).toThrow(FrameError);
    expect(() => frameMessage(2 ** 32, msg)).toThrow(FrameError);
    expect([...iterateFrames(7, msg, 500)]).toEqual(frameMessage(7, msg, 500));
  });

  it('reassembles interleaved messages, each in order', () => {
    const msgs = [randomBytes(100_000, 1), randomBytes(3, 2), randomBytes(50_000, 3), randomBytes(0, 4)];
    const lists = msgs.map((m, i) => frameMessage(1000 + i, m, 1000));
    const r = new Reassembler(LIMITS);
    const done = new Map<number, Uint8Array>();
    // Round-robin across messages.
    const queues = lists.map((l) => [...l]);
    while (queues.some((q) => q.length)) {
      for (const q of queues) {
        const f = q.shift();
        if (!f) continue;
        const out = r.push(f);
        if (out) done.set(new DataView(f.buffer).getUint32(1, true), out);
      }
    }
    msgs.forEach((m, i) => expect(same(done.get(1000 + i)!, m)).toBe(true));
    expect(r.stats.messagesCompleted).toBe(4);
    expect(r.stats.framesDropped).toBe(0);
  });

  it('grows a message as its bytes arrive: 200 KB in 50-byte frames', () => {
    const msg = randomBytes(200_000, 9);
    const r = new Reassembler(LIMITS);
    const out = frameMessage(1, msg, 50).map((f) => r.push(f));
    expect(same(out.at(-1)!, msg)).toBe(true);
    expect(out.at(-1)!.buffer.byteLength).toBe(200_000); // the buffer returned is exactly the message
    expect(r.stats.framesDropped).toBe(0);
  });

  it('requires frames in order (the channel is ordered): one that skips ahead or repeats drops its message, counted', () => {
    const cases: [Uint8Array[], string][] = [
      [[frame(1, 10, 4, 6)], 'order'], // a first frame not at the start
      [[frame(1, 10, 0, 4), frame(1, 10, 6, 4)], 'order'], // a gap
      [[frame(1, 10, 0, 4), frame(1, 10, 8, 2)], 'order'],
      [[frame(1, 10, 0, 4), frame(1, 10, 2, 4)], 'overlap'], // bytes already held
      [[frame(1, 10, 0, 4), frame(1, 10, 0, 4)], 'overlap'],
    ];
    for (const [frames, reason] of cases) {
      const r = new Reassembler(LIMITS);
      for (const f of frames) expect(r.push(f)).toBeNull();
      expect(r.stats.reasons[reason], reason).toBe(1);
      expect(r.stats).toMatchObject({ framesDropped: 1, messagesDropped: 1 });
      expect(r.inFlight).toBe(0);
      expect(r.push(frame(1, 10, 4, 6))).toBeNull(); // the rest of a dropped message
      expect(r.stats.reasons.dropped).toBe(1);
    }
  });

  it('holds nothing for 100k descending 1-byte frames: the first is refused, the rest belong to a dropped message', () => {
    // Before: each frame was a new range spliced in at the front (O(n²): 2.2 s for 100k frames).
    const N = 100_000;
    const r = new Reassembler({ maxMessageBytes: 64 << 20, timeoutMs: 120_000, maxInFlight: 4 });
    let completed = 0;
    for (let i = N - 1; i >= 0; i--) if (r.push(frame(1, 2 * N, 2 * i, 1)) !== null) completed++;
    expect(completed).toBe(0);
    expect(r.inFlight).toBe(0);
    expect(r.stats).toMatchObject({ framesDropped: N, messagesDropped: 1, reasons: { order: 1, dropped: N - 1 } });
  });

  it('pins memory only for bytes sent: 918 KB of 14-byte frames opening 4 messages of 64 MiB', () => {
    // Before: each message's 64 MiB was allocated on its first frame (256 MiB pinned until the timeout).
    const MAX = 64 << 20;
    const r = new Reassembler({ maxMessageBytes: MAX, timeoutMs: 120_000, maxInFlight: 4 });
    const frames = Math.floor(918_000 / (FRAME_HEADER_BYTES + 1));
    const offsets = [0, 0, 0, 0];
    const before = process.memoryUsage().arrayBuffers;
    let completed = 0;
    for (let i = 0; i < frames; i++) if (r.push(frame(i % 4, MAX, offsets[i % 4]++, 1)) !== null) completed++;
    const pinned = process.memoryUsage().arrayBuffers - before;
    expect(completed).toBe(0);
    expect(r.inFlight).toBe(4);
    expect(r.stats.framesDropped).toBe(0);
    // 4 × 16 KiB data and 918 KB of frames; a 64 MiB buffer would be far over.
    expect(pinned).toBeLessThan(8 << 20);
    r.clear();
  });

  it('drops and counts every kind of bad frame, without throwing', () => {
    const r = new Reassembler({ maxMessageBytes: 1000, timeoutMs: 1000, maxInFlight: 2 });
    const expectDrop = (f: Uint8Array, reason: string) => {
      const before = r.stats.reasons[reason] ?? 0;
      expect(r.push(f)).toBeNull();
      expect(r.stats.reasons[reason], reason).toBe(before + 1);
    };
    expectDrop(new Uint8Array(0), 'header');
    expectDrop(new Uint8Array(FRAME_HEADER_BYTES - 1), 'header');
    expectDrop(frame(1, 10, 0, 10, 2), 'header'); // unknown frame version
    expectDrop('not bytes' as unknown as Uint8Array, 'header');
    expectDrop(frame(2, 1001, 0, 10), 'size');
    expectDrop(frame(3, 10, 5, 6), 'range'); // past the end
    expectDrop(frame(4, 10, 2 ** 32 - 1, 1), 'range');
    expectDrop(frame(5, 10, 0, 0), 'range'); // no data in a non-empty message
    // A message in progress: overlap, duplicate, mismatch, range each drop it.
    for (const [bad, reason] of [
      [frame(10, 10, 2, 4), 'overlap'], [frame(10, 10, 0, 4), 'overlap'], [frame(10, 10, 3, 1), 'overlap'],
      [frame(10, 11, 6, 4), 'mismatch'], [frame(10, 10, 8, 3), 'range'], [frame(10, 10, 4, 0), 'range'],
    ] as const) {
      const rr = new Reassembler(LIMITS);
      expect(rr.push(frame(10, 10, 0, 4))).toBeNull();
      expect(rr.push(bad)).toBeNull();
      expect(rr.stats.reasons[reason], reason).toBe(1);
      expect(rr.stats.messagesDropped).toBe(1);
      expect(rr.inFlight).toBe(0);
      // Its later frames are dropped as belonging to a dropped message.
      expect(rr.push(frame(10, 10, 4, 6))).toBeNull();
      expect(rr.stats.reasons.dropped).toBe(1);
    }
    // Too many in flight.
    expect(r.push(frame(20, 10, 0, 1))).toBeNull();
    expect(r.push(frame(21, 10, 0, 1))).toBeNull();
    expectDrop(frame(22, 10, 0, 1), 'in-flight');
    expectDrop(frame(22, 10, 1, 9), 'dropped');
    // A frame of a completed message.
    expect(same(r.push(frame(20, 10, 1, 9)), new Uint8Array(10))).toBe(true);
    expectDrop(frame(20, 10, 1, 9), 'duplicate');
    // Now one slot is free again.
    expect(r.push(frame(23, 2, 0, 2))).not.toBeNull();
    const { framesDropped, reasons } = r.stats;
    expect(framesDropped).toBe(Object.values(reasons).reduce((a, b) => a + b, 0));
  });

  it('rejects an oversized total before allocating its buffer', () => {
    const r = new Reassembler({ maxMessageBytes: 1 << 20, timeoutMs: 1000, maxInFlight: 4 });
    const heap = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 50; i++) expect(r.push(frame(i, 0xffffffff, 0, 100))).toBeNull();
    // 50 × 4 GiB would not fit anywhere: only the frames themselves were allocated.
    expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(64 << 20);
    expect(r.stats.reasons.size).toBe(50);
    expect(r.stats.messagesDropped).toBe(50);
    expect(r.inFlight).toBe(0);
  });

  it('never throws on random frames', () => {
    const r = new Reassembler({ maxMessageBytes: 4096, timeoutMs: 1000, maxInFlight: 8 });
    for (let t = 0; t < 5000; t++) {
      const f = randomBytes(t % 64, t);
      if (t % 2) f[0] = FRAME_VERSION;
      if (t % 4 === 1 && f.length >= FRAME_HEADER_BYTES) f[8] = f[7] = f[6] = 0;
      expect(() => r.push(f)).not.toThrow();
    }
    expect(r.inFlight).toBeLessThanOrEqual(8);
  });

  it('sweeps messages older than the timeout, counted', () => {
    let t = 0;
    const r = new Reassembler({ maxMessageBytes: 1000, timeoutMs: 100, maxInFlight: 4 }, () => t);
    r.push(frame(1, 10, 0, 5));
    t = 60;
    r.push(frame(2, 10, 0, 5));
    t = 99;
    expect(r.sweep()).toBe(0);
    t = 100;
    expect(r.sweep()).toBe(1);
    expect(r.inFlight).toBe(1);
    expect(r.push(frame(1, 10, 5, 5))).toBeNull(); // too late
    expect(r.stats.reasons.dropped).toBe(1);
    expect(r.push(frame(2, 10, 5, 5))).not.toBeNull();
    t = 1000;
    expect(r.sweep()).toBe(0);
    expect(r.stats).toMatchObject({ messagesDropped: 1, messagesCompleted: 1, reasons: { timeout: 1, dropped: 1 } });
  });
});
