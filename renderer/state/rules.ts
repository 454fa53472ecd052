// Small decisions of the UI, kept pure for tests: which mnemonic words to ask back, whether to
// hold training now, and what a typed coordinator address means.
import { PRESETS, type PresetName } from '../../src/model/config.ts';
import { dailyWindow, scheduleAllows } from '../../src/contributor/availability.ts';
import type { Settings } from './db.ts';

export interface Environment {
  /** The tab is hidden (document.visibilityState). */
  hidden: boolean;
  /** On battery, where the browser tells (navigator.getBattery); false when it cannot. */
  onBattery: boolean;
}

/** `count` distinct word positions (0-based, sorted) out of `words`. */
export function pickConfirmation(words: number, count: number, random: () => number = Math.random): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, words)) picked.add(Math.floor(random() * words));
  return [...picked].sort((a, b) => a - b);
}

export function checkConfirmation(mnemonic: string, positions: readonly number[], answers: readonly string[]): boolean {
  const words = mnemonic.split(' ');
  return positions.length === answers.length && positions.every((p, i) => words[p] === answers[i]?.trim().toLowerCase());
}

/**
 * Whether `at` falls in the schedule (from > to wraps past midnight; from = to is all day): the
 * daily from/to is one window on every day of the desktop app's weekly rule.
 */
export function inSchedule(schedule: Settings['schedule'], at: Date): boolean {
  return scheduleAllows({ enabled: schedule.enabled, windows: [dailyWindow(schedule.from, schedule.to)] }, at);
}

export function shouldPause(settings: Settings, env: Environment, userPaused: boolean, at: Date): boolean {
  return userPaused || (settings.pauseWhenHidden && env.hidden) || (settings.pauseOnBattery && env.onBattery) || !inSchedule(settings.schedule, at);
}

/** Why training is held, in words (null when it is not). */
export function pauseReason(settings: Settings, env: Environment, userPaused: boolean, at: Date): string | null {
  if (userPaused) return 'paused by you';
  if (settings.pauseWhenHidden && env.hidden) return 'paused while the tab is hidden';
  if (settings.pauseOnBattery && env.onBattery) return 'paused while on battery';
  if (!inSchedule(settings.schedule, at)) return `outside the schedule (${settings.schedule.from}–${settings.schedule.to})`;
  return null;
}

/** ws(s)://host:port/ws from what a user types (ws, wss, http, https; /ws added), or null. */
export function coordinatorSocketUrl(input: string): string | null {
  const text = input.trim();
  if (!text) return null;
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `ws://${text}`);
  } catch {
    return null;
  }
  const scheme = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' }[url.protocol];
  if (!scheme || !url.hostname) return null;
  const path = url.pathname.replace(/\/+$/, '');
  return `${scheme}//${url.host}${path.endsWith('/ws') ? path : `${path}/ws`}`;
}

/** http(s)://host:port of a coordinator's ws(s)://host:port/ws. */
export function coordinatorHttpUrl(socketUrl: string): string {
  return socketUrl.replace(/^ws/, 'http').replace(/\/ws\/?$/, '');
}

/** Model, batch and sequence length from a coordinator's GET /run body, or null if it has none we know. */
export function runShapeOf(body: unknown): { model: PresetName; batch: number; seq: number; innerSteps?: number } | null {
  const r = body as { model?: unknown; batch?: unknown; seq?: unknown; innerSteps?: unknown } | null;
  if (!r || typeof r.model !== 'string' || !Object.hasOwn(PRESETS, r.model)) return null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
  const batch = n(r.batch);
  const seq = n(r.seq);
  const innerSteps = n(r.innerSteps);
  if (!batch || !seq) return null;
  return innerSteps ? { model: r.model as PresetName, batch, seq, innerSteps } : { model: r.model as PresetName, batch, seq };
}
