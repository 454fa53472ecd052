// @vitest-environment happy-dom
// The main views rendered (React, happy-dom) on a store over a scripted engine: what a user
// sees and can do, found the way a screen reader finds it (roles and labels).
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { ADDRESS, MNEMONIC, ScriptedEngine, joined, makeStore, settle, standing } from './fakes.ts';
import { renderWith } from './render.tsx';

// Testing-library's auto-cleanup needs a global afterEach; vitest's globals are off here.
afterEach(() => cleanup());

const click = async (el: HTMLElement) => {
  await act(async () => {
    fireEvent.click(el);
    await settle();
  });
};
const type = (el: HTMLElement, value: string) => fireEvent.change(el, { target: { value } });
const submit = async (button: HTMLElement) => click(button);

describe('first run', () => {
  it('walks from Create to the main view', async () => {
    const { store } = makeStore();
    await store.getState().init();
    renderWith(store);
    await click(screen.getByRole('button', { name: 'Create a wallet' }));

    const list = screen.getByRole('list', { name: 'Your recovery words' });
    const shown = within(list).getAllByRole('listitem').map((li) => li.querySelector('.word')!.textContent);
    expect(shown).toEqual(MNEMONIC.split(' '));
    await click(screen.getByRole('button', { name: 'I wrote them down' }));

    expect(screen.queryByRole('list', { name: 'Your recovery words' })).toBeNull(); // shown once
    const fields = screen.getAllByLabelText(/^Word \d+$/) as HTMLInputElement[];
    expect(fields).toHaveLength(3);
    for (const f of fields) type(f, 'nope');
    await submit(screen.getByRole('button', { name: 'Confirm' }));
    expect(screen.getByRole('alert').textContent).toMatch(/do not match/);
    await click(screen.getByRole('button', { name: 'Show the words again' }));
    expect(screen.getByRole('list', { name: 'Your recovery words' })).toBeTruthy();
    await click(screen.getByRole('button', { name: 'I wrote them down' }));
    for (const f of screen.getAllByLabelText(/^Word \d+$/) as HTMLInputElement[]) {
      const n = Number(/Word (\d+)/.exec(f.closest('label')!.textContent!)![1]);
      type(f, MNEMONIC.split(' ')[n - 1]);
    }
    await submit(screen.getByRole('button', { name: 'Confirm' }));

    type(screen.getByLabelText('Password'), 'long enough');
    type(screen.getByLabelText('Password again'), 'long enough');
    await submit(screen.getByRole('button', { name: 'Save wallet' }));

    expect(screen.getByRole('heading', { name: 'Choose a network' })).toBeTruthy();
    expect((screen.getByLabelText(/Local run/) as HTMLInputElement).checked).toBe(true);
    await submit(screen.getByRole('button', { name: 'Continue' }));

    expect(screen.getByRole('heading', { name: 'Your GPU' })).toBeTruthy();
    await waitFor(() => expect(screen.getByText(/swiftshader/)).toBeTruthy());
    expect(screen.getByText(/Software \(runs on the CPU/)).toBeTruthy();
    expect(screen.getByText(/needs about 4\.0 MiB/)).toBeTruthy();
    await click(screen.getByRole('button', { name: 'Continue' }));
    expect(screen.getByRole('button', { name: 'Contribute' })).toBeTruthy();
  });

  it('shows a wrong password as an alert and keeps the form', async () => {
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
    engine.answer('unlockWallet', { kind: 'wrong-password', message: 'wrong password' });
    const { store } = makeStore({ engine });
    await store.getState().init();
    renderWith(store);
    type(screen.getByLabelText('Wallet password'), 'guess');
    await submit(screen.getByRole('button', { name: 'Unlock' }));
    expect(screen.getByRole('alert').textContent).toMatch(/Wrong password.*Import/);
    expect(screen.getByLabelText('Wallet password')).toBeTruthy();
    await click(screen.getByRole('button', { name: 'Dismiss message' }));
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('main view', () => {
  const mainView = async () => {
    const engine = new ScriptedEngine();
    engine.answer('listWallets', [{ name: 'default', address: ADDRESS, inUse: false }]);
    const made = makeStore({ engine, runShape: async () => ({ model: 'tiny', batch: 2, seq: 32, innerSteps: 3 }) });
    await made.store.getState().init();
    await made.store.getState().unlock('password1');
    await settle();
    renderWith(made.store);
    return made;
  };

  it('contributes, shows the live status, pauses, resumes and stops after the round', async () => {
    const { store, engine } = await mainView();
    await click(screen.getByRole('button', { name: 'Contribute' }));
    expect(engine.callsOf('start')).toHaveLength(1);
    expect(screen.getByTestId('activity').textContent).toBe('Connecting');
    await act(async () => {
      engine.emit(joined('r', 3), { event: 'synced', round: 3, source: 'peer', weightsHash: 'h' }, { event: 'round', round: 3, members: 2 });
      engine.emit({ event: 'step', round: 3, step: 1, loss: 5.25, tokensPerSecond: 321 }, { event: 'link', peer: 'p', up: true, reason: 'connected' });
    });
    expect(screen.getByTestId('activity').textContent).toBe('Training');
    expect(screen.getByTestId('round').textContent).toBe('3');
    expect(screen.getByTestId('step').textContent).toBe('1 of 3');
    expect(screen.getByTestId('peers').textContent).toBe('linked directly to the 1 other contributor in this round');
    expect(screen.getByTestId('speed').textContent).toBe('321 tokens/s');
    expect(screen.queryByTestId('holds'), 'one stage: where the model is does not matter').toBeNull();
    expect(screen.getByTestId('loss-chart').getAttribute('data-points')).toBe('1');
    expect(screen.getByRole('img', { name: /Training loss: 1 steps; latest loss 5\.2500/ })).toBeTruthy();

    await click(screen.getByRole('button', { name: 'Pause' }));
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }]);
    await act(async () => engine.emit({ event: 'paused', paused: true }));
    expect(screen.getByTestId('activity').textContent).toBe('Paused');
    expect(screen.getByRole('status').textContent).toMatch(/paused by you/);
    await click(screen.getByRole('button', { name: 'Resume' }));
    expect(engine.callsOf('setPaused')).toEqual([{ paused: true }, { paused: false }]);

    await click(screen.getByRole('button', { name: 'Finish this round, then stop' }));
    expect(engine.callsOf('stop')).toEqual([{ mode: 'after-round' }]);
    expect((screen.getByRole('button', { name: 'Stopping after this round…' }) as HTMLButtonElement).disabled).toBe(true);
    await act(async () => engine.emit({ event: 'ended', error: null }));
    expect(screen.getByRole('button', { name: 'Contribute' })).toBeTruthy();
    expect(store.getState().run.activity).toBe('idle');
  });

  it('shows the wallet, copies the address and charts rewards as they come', async () => {
    const { engine } = await mainView();
    await click(screen.getByRole('button', { name: 'Wallet' }));
    expect(screen.getByTestId('address').textContent).toBe(ADDRESS);
    expect(screen.getByTestId('total-reward').textContent).toBe('—');
    await act(async () => engine.emit({ event: 'reward', round: 0, standing: standing(0, 60) }, { event: 'reward', round: 1, standing: standing(1, 130) }));
    expect(screen.getByTestId('total-reward').textContent).toBe('130.000 points');
    expect(screen.getByText('1 of 2')).toBeTruthy();
    expect(screen.getByText('60.0%')).toBeTruthy();
    expect(screen.getByTestId('reward-chart').getAttribute('data-points')).toBe('2');
    // Rewards held in escrow are shown apart from the earned, and what was forfeited with them.
    expect(screen.queryByTestId('pending-reward')).toBeNull();
    await act(async () => engine.emit({ event: 'reward', round: 2, standing: { ...standing(2, 130), pendingReward: 40, forfeitedReward: 0 } }));
    expect(screen.getByTestId('total-reward').textContent).toBe('130.000 points');
    expect(screen.getByTestId('pending-reward').textContent).toBe('40.000 points in escrow');
    await act(async () => engine.emit({ event: 'reward', round: 3, standing: { ...standing(3, 130), pendingReward: 0, forfeitedReward: 40 } }));
    expect(screen.getByTestId('pending-reward').textContent).toBe('0.000 points in escrow; 40.000 points forfeited (an invalid or copied update)');

    let copied = '';
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: async (t: string) => void (copied = t) }, configurable: true });
    await click(screen.getByRole('button', { name: 'Copy the address' }));
    expect(copied).toBe(ADDRESS);
    expect(screen.getByRole('button', { name: 'Copy the address' }).textContent).toBe('Copied');
  });

  it('changes and keeps settings', async () => {
    const { store, db } = await mainView();
    await click(screen.getByRole('button', { name: 'Settings' }));
    await act(async () => {
      fireEvent.change(screen.getByLabelText(/GPU budget/), { target: { value: '35' } });
      await settle();
    });
    expect(screen.getByLabelText(/GPU budget: train 35% of the time/)).toBeTruthy();
    await click(screen.getByLabelText('Pause while this tab is hidden'));
    await act(async () => {
      fireEvent.change(screen.getByLabelText('Log level'), { target: { value: 'debug' } });
      await settle();
    });
    const url = screen.getByLabelText('Coordinator URL');
    type(url, 'nonsense://');
    expect(screen.getByText(/Not an address/)).toBeTruthy();
    type(url, 'http://run.example.org:8787');
    await act(async () => {
      fireEvent.blur(url);
      await settle();
    });
    expect(store.getState().settings).toMatchObject({ dutyCycle: 35, pauseWhenHidden: true, logLevel: 'debug', coordinatorUrl: 'http://run.example.org:8787' });
    await settle(10);
    expect(await db.loadSettings()).toMatchObject({ dutyCycle: 35, pauseWhenHidden: true, logLevel: 'debug' });
  });
});
