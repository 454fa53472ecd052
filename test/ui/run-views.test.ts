// @vitest-environment happy-dom
// The views of what a volunteer contributes to (React, happy-dom, testing-library): the network
// step's known runs (one click to join, or how to host one), the run's description and
// progress, rewards with their unit and pending rounds, the bytes sent and why, start-up
// progress, where the model is in a pipelined run, and the known-runs list in Settings.
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../renderer/engine/messages.ts';
import type { RunShape } from '../../renderer/state/run-info.ts';
import { ADDRESS, ScriptedEngine, joined, makeStore, settle, standing } from './fakes.ts';
import { renderWith } from './render.tsx';

afterEach(() => cleanup());

const click = async (el: HTMLElement) => {
  await act(async () => {
    fireEvent.click(el);
    await settle();
  });
};

const RUN: RunShape = {
  model: 'tiny', batch: 2, seq: 32, innerSteps: 3, run: 'demo', name: 'Tiny demo run', description: 'Trains a tiny model on public-domain books, for trying Tessera out.',
  owner: 'Example Lab', homepage: 'https://lab.example.org/demo', plannedRounds: 50, plannedTokens: 0, rewardUnit: 'credits', rewardNote: 'Credits of this demo: a record, not money.', stages: 1, microBatches: 1, checkpointEvery: 10,
};

const LISTED = { name: 'Open tiny', description: 'A listed run.', coordinator: 'https://run.example.org', owner: 'Example Lab', homepage: 'https://example.org/run', model: 'tiny' };

function listFetch(body: unknown) {
  return (async () => new Response(JSON.stringify(body), { status: 200 })) as unknown as typeof fetch;
}

async function atNetworkStep(o: { fetchList?: typeof fetch; listUrl?: string } = {}) {
  const made = makeStore({ runShape: async () => RUN, fetchList: o.fetchList });
  if (o.listUrl) await made.db.saveSettings({ ...made.store.getState().settings, runListUrl: o.listUrl });
  await made.store.getState().init();
  await settle(10);
  made.store.setState({ screen: 'network', address: ADDRESS });
  renderWith(made.store);
  return made;
}

async function mainView(shape: RunShape = RUN) {
  const engine = new ScriptedEngine();
  engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
  const made = makeStore({ engine, runShape: async () => shape });
  await made.store.getState().init();
  await made.store.getState().unlock('password1');
  await settle();
  renderWith(made.store);
  return made;
}

describe('the network step', () => {
  it('without a listed run says plainly how to host one', async () => {
    await atNetworkStep();
    const none = screen.getByTestId('no-known-runs');
    expect(none.textContent).toMatch(/No public run is listed yet/);
    expect(none.textContent).toContain('npx tessera coordinator --run run.json');
    expect(none.textContent).toContain('"A round over the network"');
  });

  it('offers the listed runs and joins one in one click', async () => {
    const { store } = await atNetworkStep({ fetchList: listFetch({ runs: [LISTED] }), listUrl: 'https://list.example.org/runs.json' });
    const list = screen.getByRole('list', { name: 'Known runs' });
    expect(within(list).getByText('A listed run.')).toBeTruthy();
    const home = within(list).getByRole('link', { name: 'example.org' });
    expect(home.getAttribute('href')).toBe('https://example.org/run');
    expect(home.getAttribute('rel')).toContain('noopener');
    await click(within(list).getByRole('button', { name: 'Join Open tiny' }));
    expect(store.getState().settings).toMatchObject({ network: 'custom', coordinatorUrl: 'wss://run.example.org/ws' });
    expect(screen.getByRole('heading', { name: 'Your GPU' })).toBeTruthy();
    // Before contributing, the GPU step already says what this run is.
    expect(screen.getByTestId('run-name').textContent).toBe('Tiny demo run');
  });
});

describe('the main view', () => {
  it('says what the run is, how far it has come and this device’s part', async () => {
    const { engine } = await mainView();
    expect(screen.getByTestId('run-description').textContent).toMatch(/public-domain books/);
    const home = screen.getByTestId('run-homepage');
    expect(home.getAttribute('href')).toBe('https://lab.example.org/demo');
    expect(home.getAttribute('rel')).toBe('noopener noreferrer');
    expect(screen.getByText(/Run by Example Lab/)).toBeTruthy();
    expect(screen.getByTestId('run-progress').textContent).toBe('not joined yet (50 rounds planned)');
    expect(screen.getByTestId('reward-unit').textContent).toBe('counted in credits — Credits of this demo: a record, not money.');

    await click(screen.getByRole('button', { name: 'Contribute' }));
    await act(async () => {
      engine.emit(joined('demo', 3), { event: 'progress', phase: 'compile', done: 4, total: 20, text: 'attention' } as unknown as EngineEvent);
    });
    expect(screen.getByTestId('progress').textContent).toMatch(/^Compiling GPU kernels: 4 of 20/);
    expect(screen.getByRole('progressbar').getAttribute('value')).toBe('4');
    await act(async () => {
      engine.emit({ event: 'synced', round: 3, source: 'coordinator', weightsHash: 'h' }, { event: 'round', round: 3, members: 1, tokensTrained: 96_000 } as unknown as EngineEvent);
      engine.emit({ event: 'step', round: 3, step: 1, loss: 5, tokensPerSecond: 400 }, { event: 'step', round: 3, step: 2, loss: 4.9, tokensPerSecond: 410 });
    });
    expect(screen.queryByTestId('progress')).toBeNull();
    expect(screen.getByTestId('run-progress').textContent).toBe('round 3 of 50; 96 thousand tokens trained by everyone');
    expect(screen.getByTestId('your-part').textContent).toBe('since this page opened: 0 rounds done, 128 tokens trained on this device');
    expect(screen.getByTestId('peers').textContent).toBe('alone in this round — no other contributors yet');
    expect(screen.getByTestId('speed').textContent).toBe('410 tokens/s');

    await act(async () => {
      engine.emit({ event: 'commit', round: 3, trained: true, loss: 4.9, included: 1, fromPeers: 1, fetched: 0, bytesUp: 4096, bytesDown: 512, peers: 0, rejected: {}, weightsHash: 'h' });
      engine.emit({ event: 'checkpoint', round: 4, bytes: 2 * 1024 * 1024 } as unknown as EngineEvent);
    });
    expect(screen.getByTestId('sent').textContent).toBe('2.0 MiB: 4.0 KiB of updates and messages (your compressed work, each round); 2.0 MiB in 1 checkpoint (a full copy of the model, every 10 rounds, so newcomers can start from it)');
    expect(screen.getByTestId('your-part').textContent).toMatch(/^since this page opened: 1 round done/);
  });

  it('says where the model is only in a pipelined run', async () => {
    const { engine } = await mainView({ ...RUN, stages: 2, microBatches: 4 });
    await click(screen.getByRole('button', { name: 'Contribute' }));
    await act(async () => engine.emit({ ...joined('demo', 0), stage: 1, stages: 2 } as EngineEvent, { event: 'step', round: 0, step: 1, loss: 5, tokensPerSecond: 1 }));
    expect(screen.getByTestId('holds').textContent).toBe('part 2 of 2 of the tiny model (about layers 2–2 of 2); other contributors hold the other parts, and activations pass between you');
    // A stage-0 step of a pipelined run trains micro-batches × batch × seq tokens.
    expect(screen.getByTestId('your-part').textContent).toMatch(/256 tokens/);
  });

  it('shows every reward with its unit, the note, and the rounds not scored yet as pending', async () => {
    const { engine } = await mainView();
    await click(screen.getByRole('button', { name: 'Wallet' }));
    expect(screen.getByTestId('reward-note').textContent).toBe('Rewards are counted in credits. Credits of this demo: a record, not money.');
    await act(async () => engine.emit({ event: 'reward', round: 0, standing: standing(0, 60, 0) }, { event: 'reward', round: 1, standing: standing(1, 130, 3) }));
    expect(screen.getByTestId('total-reward').textContent).toBe('130.000 credits');
    expect(screen.getByTestId('epoch-reward').textContent).toBe('130.000 credits (epoch 0)');
    expect(screen.getByTestId('scored-rounds').textContent).toBe('2; 3 more closed rounds pending (not scored yet: the validator is behind, they will be)');
    expect(screen.getByRole('img', { name: /2 scored rounds; 130\.000 credits in total/ })).toBeTruthy();
  });
});

describe('settings', () => {
  it('explains the GPU budget default and refreshes the known-runs list, keeping it when a refresh fails', async () => {
    let fail = false;
    const fetchList = (async () => (fail ? new Response('gone', { status: 503, statusText: 'Service Unavailable' }) : new Response(JSON.stringify({ runs: [LISTED, { name: 'x', coordinator: 'javascript:1' }] })))) as unknown as typeof fetch;
    const made = makeStore({ fetchList, runShape: async () => RUN });
    await made.store.getState().init();
    made.store.setState({ screen: 'main', address: ADDRESS });
    renderWith(made.store);
    await click(screen.getByRole('button', { name: 'Settings' }));
    expect(screen.getByLabelText(/GPU budget: train 60% of the time/)).toBeTruthy();
    expect(screen.getByTestId('budget-why').textContent).toMatch(/starts at 60% so the computer stays pleasant to use/);
    expect(screen.getByText(/This app ships an empty list/)).toBeTruthy();

    const url = screen.getByLabelText('List address');
    fireEvent.change(url, { target: { value: 'https://list.example.org/runs.json' } });
    await click(screen.getByRole('button', { name: 'Refresh the list' }));
    await waitFor(() => expect(screen.getByTestId('run-list-status').textContent).toMatch(/^1 run from https:\/\/list\.example\.org\/runs\.json, fetched /));
    expect(screen.getByTestId('run-list-status').textContent).toMatch(/Left out: entry 2: 'coordinator' must be/);
    fail = true;
    await click(screen.getByRole('button', { name: 'Refresh the list' }));
    await waitFor(() => expect(screen.getByTestId('run-list-status').textContent).toMatch(/The last refresh failed \(.+\): list\.example\.org answered 503 Service Unavailable; the list fetched before is kept\./));
    expect(made.store.getState().knownRuns.fetched!.runs).toHaveLength(1);
  });
});
