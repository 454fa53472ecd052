// A scripted engine for the UI's tests: stands where the worker stands (the store's Engine
// port), answers calls from a table the test sets, records them, and emits events on demand.
import 'fake-indexeddb/auto';
import type { Engine } from '../../renderer/engine/client.ts';
import { EngineError } from '../../renderer/engine/client.ts';
import type { CallName, EngineCalls, EngineEvent, GpuReport, WireError } from '../../renderer/engine/messages.ts';
import { UiDb } from '../../renderer/state/db.ts';
import { createAppStore, type AppStore, type StoreDeps } from '../../renderer/state/store.ts';

type Answer<K extends CallName> = EngineCalls[K]['result'] | WireError | ((arg: EngineCalls[K]['arg']) => EngineCalls[K]['result'] | Promise<EngineCalls[K]['result']>);

export const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
export const ADDRESS = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';

export const SOFTWARE_GPU: GpuReport = { available: true, adapter: 'google swiftshader [software: CPU speeds]', isSoftware: true, maxBufferBytes: 2 ** 30, needBytes: 4 << 20, largestTensorBytes: 65536, model: 'tiny', problem: null };

export class ScriptedEngine implements Engine {
  readonly calls: { name: CallName; arg: unknown }[] = [];
  private readonly answers = new Map<CallName, unknown>();
  private readonly listeners = new Set<(e: EngineEvent) => void>();

  constructor() {
    this.answer('listWallets', []);
    this.answer('generateMnemonic', { mnemonic: MNEMONIC, address: ADDRESS });
    this.answer('saveWallet', { name: 'default', address: ADDRESS });
    this.answer('unlockWallet', { name: 'default', address: ADDRESS });
    this.answer('checkGpu', SOFTWARE_GPU);
    this.answer('start', { address: ADDRESS });
    this.answer('stop', {});
    this.answer('setPaused', {});
    this.answer('setDutyCycle', {});
  }

  answer<K extends CallName>(name: K, a: Answer<K>): void {
    this.answers.set(name, a);
  }

  async call<K extends CallName>(name: K, arg: EngineCalls[K]['arg']): Promise<EngineCalls[K]['result']> {
    this.calls.push({ name, arg });
    const a = this.answers.get(name);
    if (typeof a === 'function') return (a as (x: unknown) => EngineCalls[K]['result'])(arg);
    if (a && typeof a === 'object' && 'kind' in a && 'message' in a) throw new EngineError(a as WireError);
    return structuredClone(a) as EngineCalls[K]['result'];
  }

  onEvent(fn: (e: EngineEvent) => void): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  emit(...events: EngineEvent[]): void {
    for (const e of events) for (const fn of this.listeners) fn(e);
  }

  callsOf(name: CallName): unknown[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.arg);
  }
}

/** A tab's sessionStorage, as a plain map: what it holds survives a "reload" (a new store on it). */
export function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) } as Storage;
}

let dbCount = 0;

/** A fresh database name per test: fake-indexeddb is one global store for the whole file. */
export function freshDbName(): string {
  return `tessera-ui-test-${++dbCount}`;
}

export function makeStore(o: { engine?: ScriptedEngine; dbName?: string; local?: string | null; now?: () => number; runShape?: StoreDeps['runShape']; tabWallet?: StoreDeps['tabWallet']; fetchList?: StoreDeps['fetchList']; swarmProgress?: StoreDeps['swarmProgress'] } = {}): { store: AppStore; engine: ScriptedEngine; db: UiDb } {
  const engine = o.engine ?? new ScriptedEngine();
  const db = new UiDb(indexedDB, o.dbName ?? freshDbName());
  const local = o.local === undefined ? 'ws://127.0.0.1:9999/ws' : o.local;
  const store = createAppStore({ engine, db, localCoordinator: async () => local, now: o.now, runShape: o.runShape, tabWallet: o.tabWallet, fetchList: o.fetchList, swarmProgress: o.swarmProgress });
  return { store, engine, db };
}

/** Lets queued promise work (IndexedDB, engine answers) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** The contributor's 'joined' (with the stage fields pipelined contributors add). */
export const joined = (run: string, round: number): EngineEvent => ({ event: 'joined', address: ADDRESS, run, round, model: 'tiny', stage: 0, stages: 1 }) as EngineEvent;

export const standing = (round: number, total: number, pendingRounds = 0) => ({
  address: ADDRESS, ema: 0.002 * (round + 1), assignedEma: 0.5, rank: 1, of: 2, share: 0.6, epoch: 0, epochReward: total, totalReward: total, lastRound: round, pendingRounds,
});
