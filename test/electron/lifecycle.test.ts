import { describe, expect, it } from 'vitest';
import { CloseToTray, QuitFlow, TRAY_NOTICE } from '../../electron/services/app-lifecycle.ts';
import { flush } from './doubles.ts';

const closeEvent = () => {
  const event = { prevented: false, preventDefault: () => void (event.prevented = true) };
  return event;
};

describe('CloseToTray', () => {
  it('closing hides the window and shows the tray notice only the first time', () => {
    let shown = false;
    let hides = 0;
    const notices: string[] = [];
    const close = new CloseToTray({ noticeShown: () => shown, markNoticeShown: async () => void (shown = true), notify: (t) => notices.push(t), quitting: () => false });
    const window = { hide: () => hides++ };
    const first = closeEvent();
    expect(close.onClose(first, window)).toBe(true);
    expect(first.prevented).toBe(true);
    close.onClose(closeEvent(), window);
    expect(hides).toBe(2);
    expect(notices).toEqual([TRAY_NOTICE.title]);
  });

  it('during a real quit the window closes', () => {
    const close = new CloseToTray({ noticeShown: () => true, markNoticeShown: async () => {}, notify: () => {}, quitting: () => true });
    const event = closeEvent();
    expect(close.onClose(event, { hide: () => { throw new Error('must not hide'); } })).toBe(false);
    expect(event.prevented).toBe(false);
  });
});

describe('QuitFlow', () => {
  it('holds the quit until the checkpoint is saved, then quits once', async () => {
    let finishSave: (saved: boolean) => void = () => {};
    let saves = 0;
    let quits = 0;
    const flow = new QuitFlow({ saveCheckpoint: () => (saves++, new Promise((r) => (finishSave = r))), quit: () => quits++ });
    const first = closeEvent();
    flow.onBeforeQuit(first);
    expect(first.prevented).toBe(true);
    flow.onBeforeQuit(closeEvent()); // a second Quit while saving
    expect(saves).toBe(1);
    expect(quits).toBe(0);
    finishSave(true);
    await flush();
    expect(quits).toBe(1);
    expect(flow.quitting).toBe(true);
    const final = closeEvent();
    flow.onBeforeQuit(final); // app.quit() again: goes through
    expect(final.prevented).toBe(false);
  });

  it('a failed save still quits (the last saved checkpoint remains)', async () => {
    const logs: string[] = [];
    let quits = 0;
    const flow = new QuitFlow({ saveCheckpoint: () => Promise.reject(new Error('disk full')), quit: () => quits++, log: (m) => logs.push(m) });
    flow.onBeforeQuit(closeEvent());
    await flush();
    expect(quits).toBe(1);
    expect(logs[0]).toMatch(/disk full/);
  });
});
