import { describe, expect, it } from 'vitest';
import type { DesktopStatus, TrayState } from '../../electron/contract.ts';
import { TrayController, trayTooltip, type TrayActions, type TrayMenuItem } from '../../electron/services/tray-controller.ts';

const base: DesktopStatus = {
  intent: 'stopped', tray: 'idle', pauseReasons: [], engine: null,
  gpu: { plan: 'default', adapterFound: true, adapterName: null, message: null }, lastCheckpoint: null, restarts: 0, error: null,
};

class FakeTray {
  images: string[] = [];
  tooltip = '';
  menu: TrayMenuItem[] = [];
  clickListener: (() => void) | null = null;
  setImage(image: string) { this.images.push(image); }
  setToolTip(text: string) { this.tooltip = text; }
  setContextMenu(menu: TrayMenuItem[]) { this.menu = menu; }
  on(_event: 'click', listener: () => void) { this.clickListener = listener; }
}

function setup() {
  const tray = new FakeTray();
  const calls: string[] = [];
  const actions = Object.fromEntries(['show', 'pause', 'resume', 'contribute', 'finishRoundThenStop', 'quit'].map((n) => [n, () => calls.push(n)])) as unknown as TrayActions;
  const controller = new TrayController<string, TrayMenuItem[]>(tray, (state: TrayState) => `tray-${state}.png`, (items) => items, actions);
  const click = (label: string) => tray.menu.find((i) => i.label.startsWith(label))!.click();
  return { tray, calls, controller, click };
}

describe('TrayController', () => {
  it('shows one icon per state, changing the image only when the state changes', () => {
    const { tray, controller } = setup();
    controller.update(base);
    controller.update({ ...base, intent: 'contributing', tray: 'training' });
    controller.update({ ...base, intent: 'contributing', tray: 'training', engine: { phase: 'training', round: 4, step: 1, loss: 3, tokensPerSecond: 1 } });
    controller.update({ ...base, intent: 'contributing', tray: 'paused', pauseReasons: ['on-battery'] });
    controller.update({ ...base, tray: 'error', error: 'GPU lost' });
    expect(tray.images).toEqual(['tray-idle.png', 'tray-training.png', 'tray-paused.png', 'tray-error.png']);
    expect(controller.state).toBe('error');
  });

  it('menu: Show, Pause/Resume, Finish round then stop, Quit — each calling its action', () => {
    const { tray, controller, calls, click } = setup();
    controller.update({ ...base, intent: 'contributing', tray: 'training' });
    expect(tray.menu.map((i) => [i.label, i.enabled])).toEqual([
      ['Show Tessera', true], ['Pause', true], ['Finish round then stop', true], ['Quit (saves a checkpoint first)', true],
    ]);
    click('Show'); click('Pause'); click('Finish round'); click('Quit');
    expect(calls).toEqual(['show', 'pause', 'finishRoundThenStop', 'quit']);
    tray.clickListener!();
    expect(calls.at(-1)).toBe('show');
  });

  it('a user pause offers Resume; stopped offers Start; finishing greys out Finish round', () => {
    const { tray, controller, calls, click } = setup();
    controller.update({ ...base, intent: 'contributing', tray: 'paused', pauseReasons: ['user-paused'] });
    click('Resume');
    controller.update(base);
    click('Start contributing');
    expect(calls).toEqual(['resume', 'contribute']);
    expect(tray.menu[2].enabled).toBe(false);
    controller.update({ ...base, intent: 'finishing-round', tray: 'training' });
    expect(tray.menu[2].enabled).toBe(false);
    controller.update({ ...base, tray: 'error', error: 'x' });
    expect(tray.menu[1]).toMatchObject({ label: 'Start contributing', enabled: false });
  });

  it('a policy pause still offers Pause (the user can pause on top of it)', () => {
    const { tray, controller } = setup();
    controller.update({ ...base, intent: 'contributing', tray: 'paused', pauseReasons: ['on-battery'] });
    expect(tray.menu[1].label).toBe('Pause');
  });

  it('the tooltip says why it is paused, in words', () => {
    expect(trayTooltip({ ...base, intent: 'contributing', tray: 'paused', pauseReasons: ['on-battery', 'user-active'] }))
      .toBe('Tessera — paused (on battery, you are using the computer)');
    expect(trayTooltip({ ...base, intent: 'finishing-round', tray: 'training', engine: { phase: 'training', round: 7, step: 2, loss: 1, tokensPerSecond: 1 } }))
      .toBe('Tessera — finishing this round, round 7');
    expect(trayTooltip({ ...base, tray: 'error', error: 'GPU lost' })).toBe('Tessera — error: GPU lost');
  });
});
