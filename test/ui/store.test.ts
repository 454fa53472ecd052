// The app store (renderer/state/store.ts) on a scripted engine and a real UiDb over
// fake-indexeddb: the first-run flow, events folding into the status and the histories,
// what survives a reload, pausing, and the human messages for each failure.
import { describe, expect, it } from 'vitest';
import { ADDRESS, MNEMONIC, ScriptedEngine, joined, freshDbName, makeStore, settle, standing } from './fakes.ts';

describe('first run', () => {
  it('creates a wallet: words, a check of three of them, a password, then network and GPU', async () => {
    const { store, engine } = makeStore();
    await store.getState().init();
    expect(store.getState().screen).toBe('welcome');

    await store.getState().beginCreate();
    const { draft } = store.getState();
    expect(store.getState().screen).toBe('create-show');
    expect(draft?.mnemonic).toBe(MNEMONIC);
    expect(draft?.confirm).toHaveLength(3);
    expect(new Set(draft?.confirm).size).toBe(3);

    store.getState().wroteDownWords();
    const words = MNEMONIC.split(' ');
    store.getState().confirmWords(draft!.confirm.map(() => 'wrong'));
    expect(store.getState().notice?.kind).toBe('mnemonic-mismatch');
    expect(store.getState().screen).toBe('create-confirm');
    store.getState().showWordsAgain();
    expect(store.getState().screen).toBe('create-show');
    expect(store.getState().draft).toBe(draft); // the same words, the same positions to confirm
    store.getState().wroteDownWords();
    store.getState().confirmWords(draft!.confirm.map((p) => ` ${words[p].toUpperCase()} `));
    expect(store.getState().screen).toBe('password');

    await store.getState().choosePassword('long enough', 'different');
    expect(store.getState().notice?.title).toMatch(/differ/);
    await store.getState().choosePassword('short', 'short');
    expect(store.getState().notice?.title).toMatch(/short/);
    expect(engine.callsOf('saveWallet')).toEqual([]);
    await store.getState().choosePassword('long enough', 'long enough');
    expect(engine.callsOf('saveWallet')).toEqual([{ mnemonic: MNEMONIC, password: 'long enough', overwrite: false }]);
    expect(store.getState()).toMatchObject({ screen: 'network', address: ADDRESS, draft: null });

    await store.getState().chooseNetwork('custom', 'not a url at all');
    expect(store.getState().notice?.title).toMatch(/Not a coordinator address/);
    await store.getState().chooseNetwork('custom', 'http://example.org:8787');
    expect(store.getState().settings).toMatchObject({ network: 'custom', coordinatorUrl: 'http://example.org:8787' });
    expect(store.getState().screen).toBe('gpu');
    expect(store.getState().gpu?.isSoftware).toBe(true);
    store.getState().enterMain();
    expect(store.getState().screen).toBe('main');
  });

  it("sizes the GPU check by the chosen run's model", async () => {
    const asked: string[] = [];
    const { store, engine } = makeStore({ runShape: async (url) => (asked.push(url), { model: 'small', batch: 4, seq: 256, innerSteps: 30 }) });
    await store.getState().init();
    await store.getState().chooseNetwork('custom', 'https://run.example.org');
    expect(asked).toEqual(['wss://run.example.org/ws']);
    expect(engine.callsOf('checkGpu')).toEqual([{ model: 'small', batch: 4, seq: 256 }]);
    expect(store.getState().innerSteps).toBe(30);
  });

  it('imports words, refusing a wrong word count', async () => {
    const { store, engine } = makeStore();
    await store.getState().init();
    store.getState().beginImport();
    store.getState().submitImport('only three words');
    expect(store.getState().notice?.text).toMatch(/this has 3/);
    store.getState().submitImport(`  ${MNEMONIC.split(' ').join('   ')} `);
    await store.getState().choosePassword('password1', 'password1');
    expect(engine.callsOf('saveWallet')).toEqual([{ mnemonic: MNEMONIC, password: 'password1', overwrite: true }]);
  });

  it('refuses "local" when the page was not served by npm run web', async () => {
    const { store } = makeStore({ local: null });
    await store.getState().init();
    await store.getState().chooseNetwork('local');
    expect(store.getState().notice?.title).toBe('No local coordinator here');
    expect(store.getState().screen).toBe('welcome'); // not moved on to the GPU check
  });

  it('says "wrong password" and stays on the unlock screen', async () => {
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
    engine.answer('unlockWallet', { kind: 'wrong-password', message: 'wrong password for the wallet in this browser: try again.' });
    const { store } = makeStore({ engine });
    await store.getState().init();
    expect(store.getState().screen).toBe('unlock');
    await store.getState().unlock('nope');
    expect(store.getState().notice).toMatchObject({ kind: 'wrong-password', severity: 'error', title: 'Wrong password' });
    expect(store.getState().screen).toBe('unlock');
    expect(store.getState().busy).toBe(false);
  });

  it('explains a browser without WebGPU', async () => {
    const engine = new ScriptedEngine();
    engine.answer('checkGpu', { available: false, adapter: '', isSoftware: false, maxBufferBytes: 0, needBytes: 1, largestTensorBytes: 1, model: 'tiny', problem: 'This browser has no WebGPU. Use a current Chrome.' });
    const { store } = makeStore({ engine });
    await store.getState().init();
    await store.getState().checkGpu();
    expect(store.getState().notice).toMatchObject({ kind: 'no-webgpu', title: expect.stringMatching(/no WebGPU/) });
    expect(store.getState().notice?.text).toMatch(/Use a current Chrome/);
  });
});

describe('contributing', () => {
  const unlocked = async (o: Parameters<typeof makeStore>[0] = {}) => {
    const engine = o.engine ?? new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
    const made = makeStore({ ...o, engine });
    await made.store.getState().init();
    await made.store.getState().unlock('password1');
    await settle();
    return made;
  };

  it('starts on the local coordinator and folds events into status, loss and reward history', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    expect(engine.callsOf('start')).toEqual([{ coordinator: 'ws://127.0.0.1:9999/ws', dutyCycle: 60, paused: false }]);
    expect(store.getState().run.activity).toBe('connecting');
    engine.emit(joined('r1', 0));
    expect(store.getState().run.activity).toBe('syncing');
    engine.emit({ event: 'synced', round: 0, source: 'init', weightsHash: 'ab' }, { event: 'round', round: 0, members: 2 });
    engine.emit({ event: 'step', round: 0, step: 1, loss: 5.5, tokensPerSecond: 400 }, { event: 'step', round: 0, step: 2, loss: 5.3, tokensPerSecond: 420 });
    expect(store.getState().run).toMatchObject({ activity: 'training', round: 0, step: 2, tokensPerSecond: 420, members: 2, lastLoss: 5.3 });
    expect(store.getState().losses.map((p) => p.loss)).toEqual([5.5, 5.3]);
    engine.emit({ event: 'exchange', round: 0, bytes: 100, peers: 1 });
    expect(store.getState().run.activity).toBe('exchanging');
    engine.emit({ event: 'link', peer: 'peer-b', up: true, reason: 'connected' });
    engine.emit({ event: 'commit', round: 0, trained: true, loss: 5.4, included: 2, fromPeers: 2, fetched: 0, bytesUp: 2048, bytesDown: 4096, peers: 1, rejected: {}, weightsHash: 'cd' });
    expect(store.getState().run).toMatchObject({ activity: 'waiting', round: 1, bytesUp: 2048, bytesDown: 4096, roundsDone: 1, linked: ['peer-b'] });
    engine.emit({ event: 'reward', round: 0, standing: standing(0, 60) });
    expect(store.getState().rewards).toEqual([expect.objectContaining({ round: 0, totalReward: 60, rank: 1, of: 2, share: 0.6 })]);
    engine.emit({ event: 'gpu-share', share: 0.5 });
    expect(store.getState().run.gpuShare).toBe(0.5);
  });

  it('keeps the history and resumes contributing after a reload', async () => {
    const dbName = freshDbName();
    const first = await unlocked({ dbName });
    await first.store.getState().contribute();
    first.engine.emit(joined('r1', 0), { event: 'step', round: 0, step: 1, loss: 5.5, tokensPerSecond: 1 });
    first.engine.emit({ event: 'reward', round: 0, standing: standing(0, 60) });
    await settle(20);
    await first.db.close();

    const second = await unlocked({ dbName });
    expect(second.store.getState().losses.map((p) => p.loss)).toEqual([5.5]);
    expect(second.store.getState().rewards.map((r) => r.totalReward)).toEqual([60]);
    expect(second.engine.callsOf('start')).toHaveLength(1); // without a click
    expect(second.store.getState().screen).toBe('main');

    // A stop clears that: the next reload does not start by itself.
    await second.store.getState().stopNow();
    await second.db.close();
    const third = await unlocked({ dbName });
    expect(third.engine.callsOf('start')).toHaveLength(0);
  });

  it('starts a new history when the run changes', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    engine.emit(joined('r1', 0), { event: 'step', round: 0, step: 1, loss: 5.5, tokensPerSecond: 1 });
    engine.emit(joined('r2', 0));
    expect(store.getState().losses).toEqual([]);
  });

  it('holds training by pause, hidden tab and battery as the settings say', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    engine.answer('setPaused', ({ paused }) => {
      engine.emit({ event: 'paused', paused });
      return {};
    });
    await store.getState().pause();
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }]);
    expect(store.getState().run.paused).toBe(true);
    await store.getState().resume();
    expect(store.getState().run.paused).toBe(false);

    store.getState().setEnvironment({ hidden: true });
    await settle();
    expect(store.getState().run.paused).toBe(false); // pauseWhenHidden is off by default
    await store.getState().updateSettings({ pauseWhenHidden: true });
    expect(store.getState().run.paused).toBe(true);
    store.getState().setEnvironment({ hidden: false, onBattery: true });
    await settle();
    expect(store.getState().run.paused).toBe(true); // pauseOnBattery is on by default
    await store.getState().updateSettings({ pauseOnBattery: false });
    expect(store.getState().run.paused).toBe(false);

    await store.getState().updateSettings({ dutyCycle: 40 });
    expect(engine.callsOf('setDutyCycle')).toEqual([{ percent: 40 }]);
  });

  it('finishes the round, then stops', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    await store.getState().finishRoundThenStop();
    expect(engine.callsOf('stop')).toEqual([{ mode: 'after-round' }]);
    expect(store.getState().run.stopAfterRound).toBe(true);
    engine.emit({ event: 'commit', round: 0, trained: true, loss: 5, included: 1, fromPeers: 1, fetched: 0, bytesUp: 1, bytesDown: 1, peers: 0, rejected: {}, weightsHash: 'x' });
    expect(store.getState().run.activity).toBe('stopping');
    engine.emit({ event: 'stopped', round: 1, saved: true }, { event: 'ended', error: null });
    expect(store.getState().run.activity).toBe('idle');
    expect(store.getState().run.roundsDone).toBe(1);
  });

  it('words an unreachable coordinator (with the retry) and a blocked peer link', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    engine.emit({ event: 'retrying', url: 'ws://127.0.0.1:9999/ws', attempt: 2, inMs: 4000, reason: 'cannot reach the coordinator at ws://127.0.0.1:9999/ws' });
    expect(store.getState().notice).toMatchObject({ kind: 'unreachable', severity: 'warning' });
    expect(store.getState().notice?.text).toMatch(/Attempt 2; trying again in 4 s/);
    expect(store.getState().run.activity).toBe('retrying');
    engine.emit(joined('r1', 0));
    expect(store.getState().notice).toBeNull(); // reached it: the warning goes

    engine.emit({ event: 'link', peer: '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty', up: false, reason: 'not connected within 30000 ms' });
    expect(store.getState().notice).toMatchObject({ kind: 'peer-blocked' });
    expect(store.getState().notice?.text).toMatch(/TURN server/);
    expect(Object.keys(store.getState().run.blocked)).toHaveLength(1);
    // A link closing after it worked is not "blocked".
    engine.emit({ event: 'link', peer: 'other', up: true, reason: 'connected' }, { event: 'link', peer: 'other', up: false, reason: 'closed by the remote peer' });
    expect(Object.keys(store.getState().run.blocked)).toHaveLength(1);
  });

  it('says why a start failed', async () => {
    const engine = new ScriptedEngine();
    engine.answer('start', { kind: 'refused', message: 'the coordinator refused us: run is full' });
    const { store } = await unlocked({ engine });
    await store.getState().contribute();
    expect(store.getState().notice).toMatchObject({ kind: 'refused', text: expect.stringMatching(/run is full/) });
    expect(store.getState().run.activity).toBe('idle');
    engine.emit({ event: 'ended', error: { kind: 'gpu-lost', message: 'The GPU device was lost' } });
    expect(store.getState().notice?.title).toMatch(/GPU stopped/);
    engine.answer('start', { kind: 'in-use', message: 'the wallet is already contributing in another tab of this browser' });
    await store.getState().contribute();
    expect(store.getState().notice).toMatchObject({ kind: 'in-use', text: expect.stringMatching(/a wallet of its own/), action: 'another-wallet' });
  });

  it('logs a link that keeps failing the same way once', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    for (let i = 0; i < 5; i++) engine.emit({ event: 'link', peer: 'p', up: false, reason: 'cannot create a WebRTC connection: No WebRTC support' });
    engine.emit({ event: 'link', peer: 'p', up: true, reason: 'connected' }, { event: 'link', peer: 'p', up: false, reason: 'closed by the remote peer' });
    expect(store.getState().log.filter((l) => /peer p /.test(l.text)).map((l) => l.text)).toEqual([
      'peer p unlinked: cannot create a WebRTC connection: No WebRTC support',
      'peer p linked',
      'peer p unlinked: closed by the remote peer',
    ]);
  });

  it('keeps the log to its level', async () => {
    const { store, engine } = await unlocked();
    await store.getState().contribute();
    engine.emit({ event: 'step', round: 0, step: 1, loss: 5, tokensPerSecond: 1 });
    expect(store.getState().log.some((l) => l.level === 'debug')).toBe(false);
    await store.getState().updateSettings({ logLevel: 'debug' });
    engine.emit({ event: 'step', round: 0, step: 2, loss: 5, tokensPerSecond: 1 });
    expect(store.getState().log.some((l) => l.level === 'debug' && /step 2/.test(l.text))).toBe(true);
  });
});
