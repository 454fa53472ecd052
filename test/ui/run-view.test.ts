// What a volunteer is told about the run they contribute to: known-runs lists checked field by
// field (hostile entries too), refreshed from a URL (a failure keeps the older list), joined in
// one click; the run's description, progress and this device's part; every reward with its
// unit and the rounds not yet scored; bytes sent split into checkpoints and updates; the peers
// and start-up steps in words.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { parseKnownRuns, fetchKnownRuns, MAX_KNOWN_RUNS, shippedRuns } from '../../renderer/state/known-runs.ts';
import { runInfoOf, safeHomepage } from '../../renderer/state/run-info.ts';
import { foldEvent, IDLE } from '../../renderer/state/run-status.ts';
import { logLineOf } from '../../renderer/state/event-log.ts';
import { peersText, progressText, rewardText, sentText, tokensText } from '../../renderer/state/human.ts';
import { formatBytes } from '../../renderer/engine/memory.ts';
import type { EngineEvent } from '../../renderer/engine/messages.ts';
import { UiDb } from '../../renderer/state/db.ts';
import { swarmProgressOf } from '../../renderer/state/runs.ts';
import { freshDbName, joined, makeStore, settle } from './fakes.ts';

const GOOD = { name: 'Open tiny', description: 'A tiny model.', coordinator: 'https://run.example.org', owner: 'Example Lab', homepage: 'https://example.org/run', model: 'tiny' };

/** A fetch that answers from a queue: a body, an HTTP status, or a thrown network error. */
function scriptedFetch(answers: (unknown | { status: number } | Error)[]) {
  const asked: string[] = [];
  const fn = (async (url: string) => {
    asked.push(url);
    const a = answers.shift();
    if (a instanceof Error) throw a;
    if (a && typeof a === 'object' && 'status' in a) return new Response('no', { status: (a as { status: number }).status, statusText: 'Bad Gateway' });
    return new Response(typeof a === 'string' ? a : JSON.stringify(a), { status: 200 });
  }) as unknown as typeof fetch;
  return { fn, asked };
}

describe('known runs: a list is checked entry by entry', () => {
  it('keeps good entries (the coordinator normalised to ws(s)://…/ws) and drops each bad one with its reason', () => {
    const { runs, dropped } = parseKnownRuns({
      runs: [
        GOOD,
        { ...GOOD, coordinator: 'javascript:alert(1)' },
        { ...GOOD, coordinator: 'ws://other.example.org:8787', homepage: 'javascript:alert(1)' },
        { ...GOOD, coordinator: 'ws://third.example.org:8787', model: 'toString' },
        { ...GOOD, coordinator: 'ws://fourth.example.org:8787', name: 42 },
        { ...GOOD, coordinator: 'ws://fifth.example.org:8787', __proto__: { polluted: true }, extra: 1 },
        { ...GOOD, coordinator: 'wss://run.example.org/ws' }, // the same coordinator as the first
        { ...GOOD, coordinator: 'ws://sixth.example.org:8787', description: { html: '<b>' } },
        { ...GOOD, coordinator: 'javascript:1' },
        null,
        'a string',
        { name: `evil\u0000name\u001b[31m`, coordinator: 'ws://seventh.example.org:8787', description: 'x'.repeat(5000) },
      ],
    });
    expect(runs.map((r) => r.coordinator)).toEqual(['wss://run.example.org/ws', 'ws://seventh.example.org:8787/ws']);
    expect(runs[0]).toEqual({ ...GOOD, coordinator: 'wss://run.example.org/ws', homepage: 'https://example.org/run' });
    // Control characters become spaces; an overlong paragraph is cut, never shown whole.
    expect(runs[1].name).toBe('evil name [31m');
    expect(runs[1].description.length).toBeLessThanOrEqual(1000);
    expect(runs[1]).toMatchObject({ owner: '', homepage: '', model: '' });
    expect(dropped).toEqual([
      expect.stringMatching(/^entry 2: 'coordinator' must be a ws\(s\):\/\/ or http\(s\):\/\/ address/),
      "entry 3: 'homepage' must be an http(s) URL",
      "entry 4: 'model' must be one of tiny, small, base, 1b",
      "entry 5: 'name' must be text",
      'entry 6: has fields a run entry does not have: extra',
      'entry 7: the same coordinator as an earlier entry',
      "entry 8: 'description' must be text",
      expect.stringMatching(/^entry 9: 'coordinator' must be/),
      'entry 10: is not an object',
      'entry 11: is not an object',
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reads a bare array, refuses what is not a list, and reads no further than the limit', () => {
    expect(parseKnownRuns([GOOD]).runs).toHaveLength(1);
    expect(() => parseKnownRuns({ runs: 'all of them' })).toThrow(/not a list of runs/);
    expect(() => parseKnownRuns(null)).toThrow(/not a list of runs/);
    const many = Array.from({ length: MAX_KNOWN_RUNS + 5 }, (_, i) => ({ name: `run ${i}`, coordinator: `ws://h${i}.example.org:8787` }));
    const r = parseKnownRuns({ runs: many });
    expect(r.runs).toHaveLength(MAX_KNOWN_RUNS);
    expect(r.dropped).toEqual([`entries after the first ${MAX_KNOWN_RUNS} were not read`]);
  });

  it('ships an empty list: no entry points to a server that does not exist', () => {
    expect(shippedRuns()).toEqual({ runs: [], dropped: [] });
  });

  it('fetches a list only over http(s) and says why a fetch failed', async () => {
    await expect(fetchKnownRuns('file:///etc/passwd', scriptedFetch([]).fn)).rejects.toThrow(/http\(s\) address, not file:/);
    await expect(fetchKnownRuns('not a url', scriptedFetch([]).fn)).rejects.toThrow(/not an address/);
    await expect(fetchKnownRuns('https://list.example.org/runs.json', scriptedFetch([{ status: 502 }]).fn)).rejects.toThrow('list.example.org answered 502 Bad Gateway');
    await expect(fetchKnownRuns('https://list.example.org/runs.json', scriptedFetch([new TypeError('Failed to fetch')]).fn)).rejects.toThrow('could not reach list.example.org (Failed to fetch)');
    await expect(fetchKnownRuns('https://list.example.org/runs.json', scriptedFetch(['<html>']).fn)).rejects.toThrow('the answer is not JSON');
    await expect(fetchKnownRuns('https://list.example.org/runs.json', scriptedFetch([' '.repeat(300 * 1024)]).fn)).rejects.toThrow(/larger than 256 KiB/);
    expect((await fetchKnownRuns('https://list.example.org/runs.json', scriptedFetch([{ runs: [GOOD] }]).fn)).runs).toHaveLength(1);
  });
});

describe('known runs in the store', () => {
  it('refreshes from the settings URL into IndexedDB; a failed refresh keeps the older list and says why; a reload offers it', async () => {
    let t = 1_000_000;
    const net = scriptedFetch([{ runs: [GOOD, { name: 'bad' }] }, { status: 502 }, new TypeError('Failed to fetch')]);
    const dbName = freshDbName();
    const { store } = makeStore({ dbName, fetchList: net.fn, now: () => t });
    await store.getState().init();
    expect(store.getState().knownRuns.fetched).toBeNull();
    await store.getState().updateSettings({ runListUrl: 'https://list.example.org/runs.json' });
    await store.getState().refreshKnownRuns();
    expect(store.getState().knownRuns.fetched).toMatchObject({ url: 'https://list.example.org/runs.json', fetchedAt: 1_000_000, error: null, dropped: ["entry 2: 'coordinator' must be a ws(s):// or http(s):// address, got \"undefined\""] });
    expect(store.getState().knownRuns.fetched!.runs.map((r) => r.name)).toEqual(['Open tiny']);

    t += 60_000;
    await store.getState().refreshKnownRuns();
    expect(store.getState().knownRuns.fetched).toMatchObject({ fetchedAt: 1_000_000, error: 'list.example.org answered 502 Bad Gateway', errorAt: 1_060_000 });
    expect(store.getState().knownRuns.fetched!.runs.map((r) => r.name)).toEqual(['Open tiny']);

    // A reload within the refresh interval reads the stored list and does not fetch again.
    await settle(5);
    const again = makeStore({ dbName, fetchList: net.fn, now: () => t });
    await again.store.getState().init();
    expect(net.asked).toHaveLength(2);
    expect(again.store.getState().knownRuns.fetched).toMatchObject({ error: 'list.example.org answered 502 Bad Gateway' });
    expect(again.store.getState().knownRuns.fetched!.runs.map((r) => r.coordinator)).toEqual(['wss://run.example.org/ws']);

    // Long after: the start refreshes by itself; unreachable, the list stays.
    t += 7 * 3600_000;
    const later = makeStore({ dbName, fetchList: net.fn, now: () => t });
    await later.store.getState().init();
    await settle(10);
    expect(net.asked).toHaveLength(3);
    expect(later.store.getState().knownRuns.fetched).toMatchObject({ error: 'could not reach list.example.org (Failed to fetch)' });
    expect(later.store.getState().knownRuns.fetched!.runs).toHaveLength(1);
  });

  it('joins a listed run in one call: its coordinator becomes the network, then the GPU check', async () => {
    const { store } = makeStore({ fetchList: scriptedFetch([{ runs: [GOOD] }]).fn });
    await store.getState().init();
    await store.getState().joinKnownRun('wss://run.example.org/ws');
    expect(store.getState().settings).toMatchObject({ network: 'custom', coordinatorUrl: 'wss://run.example.org/ws' });
    expect(store.getState().screen).toBe('gpu');
  });

  it('opens a database of the first version and adds the known-runs store, keeping its records', async () => {
    const name = freshDbName();
    await new Promise<void>((ok, fail) => {
      const r = indexedDB.open(name, 1);
      r.onupgradeneeded = () => {
        for (const s of ['settings', 'history', 'session']) r.result.createObjectStore(s);
        r.transaction!.objectStore('settings').put({ schema: 1, dutyCycle: 35 }, 'current');
      };
      r.onsuccess = () => (r.result.close(), ok());
      r.onerror = () => fail(r.error);
    });
    const db = new UiDb(indexedDB, name);
    expect((await db.loadSettings()).dutyCycle).toBe(35); // a user's own choice is kept, not reset to the new default
    expect(await db.loadRunList()).toBeNull();
    await db.saveRunList({ url: 'https://l.example.org', runs: [], dropped: [], fetchedAt: 5, error: null, errorAt: 0 });
    expect(await db.loadRunList()).toMatchObject({ url: 'https://l.example.org', fetchedAt: 5 });
    await db.close();
  });
});

describe("the swarm's progress where the contributor's events lack it", () => {
  it('reads GET /status when joining and after commits, at most once a minute, and no more once round events carry it', async () => {
    let t = 0;
    const asked: string[] = [];
    let tokens = 1000;
    const { store, engine } = makeStore({ now: () => t, swarmProgress: async (url) => (asked.push(url), { round: 3, tokensTrained: tokens, pendingRounds: 0 }) });
    await store.getState().init();
    await store.getState().contribute();
    engine.emit(joined('r', 3));
    await settle();
    expect(asked).toEqual(['ws://127.0.0.1:9999/ws']);
    expect(store.getState().run.tokensTrained).toBe(1000);
    tokens = 2000;
    t += 30_000;
    engine.emit({ event: 'commit', round: 3, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 1, bytesDown: 1, peers: 0, rejected: {}, weightsHash: 'h' });
    await settle();
    expect(asked).toHaveLength(1); // within the minute
    t += 31_000;
    engine.emit({ event: 'commit', round: 4, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 1, bytesDown: 1, peers: 0, rejected: {}, weightsHash: 'h' });
    await settle();
    expect(asked).toHaveLength(2);
    expect(store.getState().run.tokensTrained).toBe(2000);
    engine.emit({ event: 'round', round: 5, members: 1, tokensTrained: 2500 } as unknown as EngineEvent);
    t += 120_000;
    engine.emit({ event: 'commit', round: 5, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 1, bytesDown: 1, peers: 0, rejected: {}, weightsHash: 'h' });
    await settle();
    expect(asked).toHaveLength(2);
    expect(store.getState().run.tokensTrained).toBe(2500);
  });

  it('takes round and tokens from a GET /status body, or nothing from a bad one', () => {
    expect(swarmProgressOf({ round: 7, tokensTrained: 4480, pendingRounds: 2, peers: [] })).toEqual({ round: 7, tokensTrained: 4480, pendingRounds: 2 });
    expect(swarmProgressOf({ round: 7 })).toBeNull();
    expect(swarmProgressOf({ round: -1, tokensTrained: 5 })).toBeNull();
    expect(swarmProgressOf(null)).toBeNull();
  });
});

describe('the run as its coordinator describes it', () => {
  it('describes the run again when Settings choose another coordinator', async () => {
    const runs: Record<string, { model: 'tiny'; batch: number; seq: number; name: string }> = { 'ws://127.0.0.1:9999/ws': { model: 'tiny', batch: 2, seq: 32, name: 'Local' }, 'wss://b.example.org/ws': { model: 'tiny', batch: 2, seq: 32, name: 'Run B' } };
    const { store } = makeStore({ runShape: async (url) => runs[url] ?? null });
    await store.getState().init();
    await store.getState().checkGpu();
    store.getState().enterMain();
    expect(store.getState().runInfo?.name).toBe('Local');
    await store.getState().updateSettings({ network: 'custom', coordinatorUrl: 'https://b.example.org' });
    await settle();
    expect(store.getState().runInfo?.name).toBe('Run B');
    await store.getState().updateSettings({ coordinatorUrl: 'ws://127.0.0.1:9/ws' }); // nobody there
    await settle();
    expect(store.getState().runInfo, 'not the old run').toBeNull();
  });

  it('reads the description fields, and an older coordinator without them gets points as its unit', () => {
    const info = runInfoOf({ model: 'tiny', batch: 2, seq: 32, innerSteps: 3, run: 'r1', name: 'Tiny demo', description: 'One paragraph.', owner: 'Ann', homepage: 'https://ann.example.org', plannedRounds: 50, plannedTokens: 1e6, rewardUnit: 'credits', rewardNote: 'Credits of the demo.', checkpointEvery: 10 });
    expect(info).toMatchObject({ name: 'Tiny demo', owner: 'Ann', homepage: 'https://ann.example.org/', plannedRounds: 50, rewardUnit: 'credits', rewardNote: 'Credits of the demo.', checkpointEvery: 10, stages: 1 });
    const old = runInfoOf({ model: 'tiny', batch: 2, seq: 32, run: 'old-run' });
    expect(old).toMatchObject({ name: 'old-run', rewardUnit: 'points', description: '', homepage: '' });
    expect(old!.rewardNote).toMatch(/not money/);
    expect(runInfoOf({ model: 'tiny', batch: 2, seq: 32, homepage: 'javascript:alert(1)' })!.homepage).toBe('');
    expect(runInfoOf({ model: 'constructor', batch: 2, seq: 32 })).toBeNull();
    expect(['http://a.example', 'https://a.example/x', 'data:text/html,x', 'file:///x', 'ftp://a'].map(safeHomepage)).toEqual(['http://a.example/', 'https://a.example/x', '', '', '']);
  });
});

describe('the status in words', () => {
  const fold = (...events: unknown[]) => events.reduce((s: typeof IDLE, e) => foldEvent(s, e as EngineEvent), IDLE);

  it('says who this device trains with', () => {
    expect(peersText(0, 1, 0)).toBe('alone in this round — no other contributors yet');
    expect(peersText(2, 3, 0)).toBe('linked directly to all 2 others in this round');
    expect(peersText(1, 2, 0)).toBe('linked directly to the 1 other contributor in this round');
    expect(peersText(2, 4, 0)).toBe('linked directly to 2 of 3 others in this round (updates from the rest come through these neighbours or the coordinator)');
    expect(peersText(0, 3, 2)).toBe('linked directly to 0 of 2 others in this round (updates come through the coordinator); 2 blocked by a firewall or NAT (their updates come through the coordinator)');
    expect(peersText(0, 0, 0)).toBe('no round yet');
  });

  it('splits the bytes sent into checkpoints and updates, and says why each was sent', () => {
    const s = fold({ event: 'connecting', url: 'ws://x/ws', attempt: 0 }, joined('r', 0), { event: 'commit', round: 9, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 30_000, bytesDown: 1000, peers: 0, rejected: {}, weightsHash: 'h' }, { event: 'checkpoint', round: 10, bytes: 600_000 });
    expect(s).toMatchObject({ bytesUp: 630_000, checkpoints: 1, checkpointBytes: 600_000 });
    expect(sentText({ ...s, checkpointEvery: 10 }, formatBytes)).toBe('29 KiB of updates and messages (your compressed work, each round); 586 KiB in 1 checkpoint (a full copy of the model, every 10 rounds, so newcomers can start from it)');
    // The next commit's total includes the checkpoint: counted once.
    const next = foldEvent(s, { event: 'commit', round: 10, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 634_000, bytesDown: 2000, peers: 0, rejected: {}, weightsHash: 'h' } as EngineEvent);
    expect(next).toMatchObject({ bytesUp: 634_000, checkpointBytes: 600_000 });
    expect(sentText({ bytesUp: 3000, checkpoints: 0, checkpointBytes: 0, checkpointEvery: 10 }, formatBytes)).toBe('2.9 KiB of updates and messages (your compressed work, each round); no checkpoint yet (one contributor uploads the whole model every 10 rounds, for newcomers)');
    expect(logLineOf({ event: 'checkpoint', round: 10, bytes: 600_000 } as unknown as EngineEvent, 'points')?.text).toBe('uploaded a checkpoint of round 10 (586 KiB: the whole model, so newcomers can start from it)');
  });

  it('shows start-up progress until training begins, and the swarm tokens of the round message', () => {
    const s = fold(joined('r', 0), { event: 'progress', phase: 'compile', done: 3, total: 12, text: 'matmul' });
    expect(s.progress).toEqual({ phase: 'compile', done: 3, total: 12, text: 'matmul' });
    expect(progressText(s.progress!)).toBe('Compiling GPU kernels: 3 of 12');
    expect(progressText({ phase: 'shard', done: 512, total: 2048 })).toBe('Fetching the training data: 25%');
    expect(progressText({ phase: 'peers', done: 0, total: 0 })).toBe('Waiting for other contributors');
    expect(fold(joined('r', 0), { event: 'progress', phase: 'nonsense', done: 1, total: 2, text: '' }).progress).toBeNull();
    const training = foldEvent(s, { event: 'round', round: 4, members: 2, tokensTrained: 123_456 } as unknown as EngineEvent);
    expect(training).toMatchObject({ progress: null, tokensTrained: 123_456 });
    expect(tokensText(123_456)).toBe('123 thousand');
    expect(tokensText(3.4e9)).toBe('3.4 billion');
  });

  it('gives every reward its unit', () => {
    expect(rewardText(3200, 'points')).toBe('3200.000 points');
    expect(logLineOf({ event: 'reward', round: 2, standing: { address: 'a', ema: 0, assignedEma: 0, rank: 1, of: 3, share: 0.3, epoch: 0, epochReward: 5, totalReward: 12.5, lastRound: 2, pendingRounds: 0 } }, 'credits')?.text).toBe('round 2 scored: rank 1 of 3, reward 12.500 credits in total');
  });
});
