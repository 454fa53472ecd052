// Plain test doubles for the Electron objects the services take (no mocking library): each
// records what was done to it, and the fake clock runs timers when the test advances it.
import type { Clock, PowerSource } from '../../electron/services/citizen-policy.ts';

export class FakeClock implements Clock {
  private timers = new Map<number, { at: number; fn: () => void; every: number | null }>();
  private nextId = 1;
  constructor(public ms = new Date(2026, 0, 5, 12, 0).getTime()) {}
  now = () => new Date(this.ms);
  setTimeout = (fn: () => void, ms: number) => this.add(fn, ms, null);
  setInterval = (fn: () => void, ms: number) => this.add(fn, ms, ms);
  clearTimeout = (handle: unknown) => void this.timers.delete(handle as number);
  clearInterval = (handle: unknown) => void this.timers.delete(handle as number);
  get pending(): number {
    return this.timers.size;
  }
  private add(fn: () => void, ms: number, every: number | null): number {
    const id = this.nextId++;
    this.timers.set(id, { at: this.ms + ms, fn, every });
    return id;
  }
  /** Moves time forward, running due timers in order. */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.ms = timer.at;
      if (timer.every === null) this.timers.delete(id);
      else timer.at += timer.every;
      timer.fn();
    }
    this.ms = end;
  }
}

type PowerEvent = Parameters<PowerSource['on']>[0];

export class FakePower implements PowerSource {
  onBattery = false;
  idleSeconds = 0;
  locked = false;
  private listeners = new Map<PowerEvent, Array<() => void>>();
  isOnBatteryPower = () => this.onBattery;
  getSystemIdleTime = () => this.idleSeconds;
  getSystemIdleState = (threshold: number) => (this.locked ? 'locked' : this.idleSeconds >= threshold ? 'idle' : 'active') as 'locked' | 'idle' | 'active';
  on(event: PowerEvent, listener: () => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }
  emit(event: PowerEvent): void {
    for (const listener of this.listeners.get(event) ?? []) listener();
  }
}

/** Lets pending promise callbacks run (the monitor's evaluate is async). */
export const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An in-memory file system with the shape of node:fs/promises' functions the services use. */
export class MemoryFiles {
  readonly files = new Map<string, { data: string | Uint8Array; mode: number }>();
  failWrites = false;
  private enoent(path: string): never {
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  }
  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  async readFile(path: string, encoding?: 'utf8'): Promise<string | Uint8Array> {
    const file = this.files.get(path) ?? this.enoent(path);
    if (encoding) return typeof file.data === 'string' ? file.data : Buffer.from(file.data).toString('utf8');
    return typeof file.data === 'string' ? Buffer.from(file.data) : file.data;
  }
  writeFile = async (path: string, data: string | Uint8Array, options: { mode: number }): Promise<void> => {
    if (this.failWrites) throw new Error('disk full');
    this.files.set(path, { data, mode: options.mode });
  };
  rename = async (from: string, to: string): Promise<void> => {
    const file = this.files.get(from) ?? this.enoent(from);
    this.files.delete(from);
    this.files.set(to, file);
  };
  rm = async (path: string, _options: { force: true }): Promise<void> => void this.files.delete(path);
  mkdir = async (_path: string, _options: { recursive: true }): Promise<unknown> => undefined;
}
