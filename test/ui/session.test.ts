// ContributionSession (renderer/engine/session.ts): retries an unreachable coordinator with a
// growing pause, starts the pause afresh once joined, stops at once while waiting, and ends
// with the failure's kind when it is not one to retry. Contributors here are scripted runs.
import { describe, expect, it } from 'vitest';
import type { ContributorEvent, StopMode } from '../../src/contributor/contributor.ts';
import { CoordinatorError } from '../../src/net/signaling.ts';
import type { EngineEvent } from '../../renderer/engine/messages.ts';
import { ContributionSession, type Runnable } from '../../renderer/engine/session.ts';

type Script = (emit: (e: ContributorEvent) => void, stopped: Promise<StopMode>) => Promise<void>;

const down = () => Promise.reject(new CoordinatorError('cannot reach the coordinator at ws://x/ws', true));
const joined: ContributorEvent = { event: 'joined', address: 'a', run: 'r', round: 0, model: 'tiny' } as ContributorEvent;

function session(scripts: Script[], delays: number[] = []) {
  const events: EngineEvent[] = [];
  const stops: StopMode[] = [];
  let wakeDelay: () => void = () => {};
  let n = 0;
  const s = new ContributionSession({
    url: 'ws://x/ws',
    emit: (e) => events.push(e),
    delay: (ms, onWake) => {
      delays.push(ms);
      // The test's "clock": the longest pause (30 s) waits to be woken; shorter ones pass at once.
      return ms >= 30_000 ? new Promise<void>((r) => onWake((wakeDelay = r))) : Promise.resolve();
    },
    makeContributor: (onEvent): Runnable => {
      const script = scripts[Math.min(n++, scripts.length - 1)];
      let stop!: (m: StopMode) => void;
      const stopped = new Promise<StopMode>((r) => (stop = r));
      return { run: () => script(onEvent, stopped), stop: (m) => (stops.push(m), stop(m)) };
    },
  });
  return { s, events, stops, delays, wake: () => wakeDelay(), kinds: () => events.map((e) => e.event) };
}

describe('ContributionSession', () => {
  it('retries with 1, 2, 4 s pauses until the coordinator answers, then runs until stopped', async () => {
    let stoppedWith: StopMode | null = null;
    const { s, events, delays } = session([down, down, down, async (emit, stopped) => {
      emit(joined);
      stoppedWith = await stopped;
    }]);
    await new Promise((r) => setTimeout(r, 0));
    expect(delays).toEqual([1000, 2000, 4000]);
    expect(events.filter((e) => e.event === 'retrying').map((e) => (e as { attempt: number }).attempt)).toEqual([1, 2, 3]);
    s.stop('after-round');
    await s.done;
    expect(stoppedWith).toBe('after-round');
    expect(events.at(-1)).toEqual({ event: 'ended', error: null });
  });

  it('starts the backoff afresh after a join', async () => {
    const { s, delays } = session([down, down, async (emit) => {
      emit(joined);
      throw new CoordinatorError('the coordinator closed the connection (1006 )', true);
    }, down, async (_, stopped) => void (await stopped)]);
    await new Promise((r) => setTimeout(r, 0));
    expect(delays).toEqual([1000, 2000, 1000, 2000]);
    s.stop('now');
    await s.done;
  });

  it('stops at once while waiting to retry, even when asked to finish the round', async () => {
    const { s, kinds, delays, stops } = session(Array(10).fill(down));
    await new Promise((r) => setTimeout(r, 0));
    expect(delays.at(-1)).toBeGreaterThanOrEqual(30_000);
    s.stop('after-round'); // there is no round to finish
    await s.done;
    expect(stops).toEqual([]); // no contributor was running to be told
    expect(kinds().at(-1)).toBe('ended');
    expect(kinds().filter((k) => k === 'connecting').length).toBe(delays.length);
  });

  it('ends with the kind of a failure that retrying cannot fix', async () => {
    const { s, events } = session([() => Promise.reject(new CoordinatorError('the coordinator refused us: run is full', false))]);
    await s.done;
    expect(events.at(-1)).toEqual({ event: 'ended', error: { kind: 'refused', message: 'the coordinator refused us: run is full' } });
  });
});
