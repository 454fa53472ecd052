// The in-process StageLink pair: ordered, asynchronous, copying delivery; messages that arrive
// before a handler wait for it; close reaches both ends and stops delivery.
import { describe, expect, it } from 'vitest';
import { loopbackPair } from '../support/pipeline/link.ts';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('loopbackPair', () => {
  it('delivers in order, asynchronously, a copy; queues until a handler is set; counts', async () => {
    const [a, b] = loopbackPair();
    const got: number[][] = [];
    const buf = new Uint8Array([1, 2, 3]);
    a.send(buf);
    buf[0] = 9; // the sender reuses its buffer: the receiver still sees what was sent
    a.send(new Uint8Array([4]));
    await tick();
    b.onMessage((m) => got.push([...m]));
    expect(got).toEqual([[1, 2, 3], [4]]);
    let synchronous = true;
    b.onMessage((m) => {
      expect(synchronous).toBe(false);
      got.push([...m]);
    });
    a.send(new Uint8Array([5]));
    synchronous = false;
    const back: number[][] = [];
    a.onMessage((m) => back.push([...m]));
    b.send(new Uint8Array([6]));
    await tick();
    expect(got).toEqual([[1, 2, 3], [4], [5]]);
    expect(back).toEqual([[6]]);
    expect(a.sent).toEqual({ messages: 3, bytes: 5 });
    expect(b.sent).toEqual({ messages: 1, bytes: 1 });
  });

  it('close reaches both ends, stops delivery, and send then throws', async () => {
    const [a, b] = loopbackPair();
    const reasons: string[] = [];
    a.onClose((r) => reasons.push(`a ${r}`));
    b.onClose((r) => reasons.push(`b ${r}`));
    const got: Uint8Array[] = [];
    b.onMessage((m) => got.push(m));
    a.send(new Uint8Array([1]));
    b.close('peer left'); // before the queued message is delivered
    await tick();
    expect(got).toEqual([]);
    expect(reasons.sort()).toEqual(['a peer left', 'b peer left']);
    expect(a.closed && b.closed).toBe(true);
    expect(() => a.send(new Uint8Array([2]))).toThrow(/closed/);
    a.close(); // idempotent
    expect(reasons).toHaveLength(2);
  });
});
