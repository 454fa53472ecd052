// Shared fixtures for the coordinator tests: hotkeys, a fake connection that records what the
// coordinator sends, a scripted peer, a controllable clock, temporary state folders and real
// SparseLoCo updates of the 'tiny' model built on the CPU (no GPU).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator, type Connection, type CoordinatorOptions } from '../../src/coordinator/coordinator.ts';
import { CoordinatorStore } from '../../src/coordinator/state-store.ts';
import { preset, parameterLayout } from '../../src/model/config.ts';
import { sealEnvelope, type MessageKind } from '../../src/net/envelope.ts';
import { toHex } from '../../src/base/hex.ts';
import { PROTOCOL_VERSION, joinChallenge, parseServerMessage, type ServerMessage } from '../../src/protocol/messages.ts';
import { parseRunConfig, type RunConfig } from '../../src/protocol/run-config.ts';
import { chunkExtent, chunkGrid, keptInChunk, keptInTensor } from '../../src/kernels/chunks.ts';
import { decodeUpdate, encodeUpdate, type TensorSelection } from '../../src/sparseloco/wire.ts';
import { crc32 } from '../../src/base/crc32.ts';
import { configHash } from '../../src/model/identity.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { rng } from '../helpers/rng.ts';

export const DEV = 'bottom drive obey lake curtain smoke basket hold race lonely fit walk';
export const RUN = 'test-run';

export interface Keys {
  alice: Hotkey;
  bob: Hotkey;
  carol: Hotkey;
  dave: Hotkey;
}

let keys: Keys | null = null;
/** Four fixed hotkeys (substrate's dev phrase with //Alice …), made once per test file. */
export async function devKeys(): Promise<Keys> {
  await cryptoReady();
  keys ??= {
    alice: Hotkey.fromMnemonic(DEV, '//Alice'),
    bob: Hotkey.fromMnemonic(DEV, '//Bob'),
    carol: Hotkey.fromMnemonic(DEV, '//Carol'),
    dave: Hotkey.fromMnemonic(DEV, '//Dave'),
  };
  return keys;
}

export function testConfig(overrides: Record<string, unknown> = {}): RunConfig {
  // A checkpoint every round, so the tests see checkpointBy in every commit.
  return parseRunConfig({ run: RUN, roundSeconds: 60, heartbeatSeconds: 5, heartbeatMisses: 3, minMembers: 1, checkpointEvery: 1, ...overrides });
}

/** A clock the test moves by hand. */
export class Clock {
  t = 1_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const dirs: string[] = [];
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-coord-'));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface Harness {
  coordinator: Coordinator;
  store: CoordinatorStore;
  clock: Clock;
  config: RunConfig;
  log: string[];
}

/** A coordinator on a fresh state folder with a hand-moved clock (syncGraceMs 1000 unless given). */
export function makeCoordinator(config = testConfig(), options: CoordinatorOptions & { dir?: string; clock?: Clock } = {}): Harness {
  const clock = options.clock ?? new Clock();
  const store = new CoordinatorStore(options.dir ?? tempDir());
  const log: string[] = [];
  const coordinator = new Coordinator(config, store, { now: clock.now, log: (l) => log.push(l), syncGraceMs: 1000, ...options });
  return { coordinator, store, clock, config, log };
}

/** A connection as the coordinator sees it: records every message it is sent and its close. */
export class FakeConn implements Connection {
  readonly sent: ServerMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  send(text: string): void {
    const m = parseServerMessage(text);
    if (!m) throw new Error(`the coordinator sent a malformed message: ${text.slice(0, 200)}`);
    this.sent.push(m);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
}

type Of<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>;

/** One client of a coordinator, driven message by message. */
export class Peer {
  readonly conn = new FakeConn();
  readonly handlers: ReturnType<Coordinator['connect']>;
  constructor(readonly coordinator: Coordinator, readonly key: Hotkey | null = null) {
    this.handlers = coordinator.connect(this.conn);
  }

  get address(): string {
    return this.key!.address;
  }

  /** The stage the coordinator last placed this peer in. */
  get stage(): number {
    return this.last('stage')?.stage ?? this.last('welcome')?.stage ?? 0;
  }

  text(m: unknown): void {
    this.handlers.onText(typeof m === 'string' ? m : JSON.stringify(m));
  }

  binary(bytes: Uint8Array): void {
    this.handlers.onBinary(bytes);
  }

  /** Disconnects, as the server reports a closed socket. */
  disconnect(): void {
    this.handlers.onClose();
  }

  all<T extends ServerMessage['type']>(type: T): Of<T>[] {
    return this.conn.sent.filter((m): m is Of<T> => m.type === type);
  }

  last<T extends ServerMessage['type']>(type: T): Of<T> | undefined {
    const a = this.all(type);
    return a[a.length - 1];
  }

  /** hello → challenge: the nonce. */
  hello(): Of<'challenge'> {
    this.text({ type: 'hello', version: PROTOCOL_VERSION });
    const c = this.last('challenge');
    if (!c) throw new Error(`no challenge: ${JSON.stringify(this.conn.sent)}`);
    return c;
  }

  /** The whole handshake with this peer's key; returns the welcome (or undefined when refused). */
  join(): Of<'welcome'> | undefined {
    const c = this.hello();
    this.text({ type: 'join', address: this.address, signature: toHex(this.key!.sign(joinChallenge(c.run, c.nonce))) });
    return this.last('welcome');
  }

  synced(round: number, weightsHash = 'ab'.repeat(16)): void {
    this.text({ type: 'synced', round, weightsHash, stage: this.stage });
  }
}

/** Joins and syncs each key to `round`; returns the peers in the same order. */
export function joinAll(coordinator: Coordinator, ks: Hotkey[], round = 0): Peer[] {
  const peers = ks.map((k) => new Peer(coordinator, k));
  for (const p of peers) if (!p.join()) throw new Error(`${p.address} was not welcomed: ${JSON.stringify(p.conn.sent)}`);
  for (const p of peers) p.synced(round);
  return peers;
}

// ---- real SparseLoCo updates, on the CPU ----


/** A valid update of the run's model for `round`: per chunk the first keptInChunk locals, random values. */
export function modelUpdate(config: RunConfig, round: number, seed = 1, layers?: { from: number; to: number }): Uint8Array {
  const cfg = preset(config.model);
  const k = config.sparseloco.k;
  const u = rng(seed);
  const tensors: TensorSelection[] = parameterLayout(cfg, layers?.from, layers?.to).map((p) => {
    const grid = chunkGrid(p.shape);
    const n = keptInTensor(grid, k);
    const local = new Uint16Array(n);
    const values = new Float32Array(n);
    let at = 0;
    for (let c = 0; c < grid.count; c++) {
      const e = chunkExtent(grid, c);
      let m = keptInChunk(grid, c, k);
      for (let r = 0; r < e.rows && m > 0; r++) for (let col = 0; col < e.cols && m > 0; col++, m--) local[at++] = r * grid.blockCols + col;
    }
    for (let i = 0; i < n; i++) values[i] = (u() - 0.5) * 0.02;
    return { name: p.name, grid, k, local, values };
  });
  return encodeUpdate({ configHash: configHash(cfg), round, k, tensors });
}

export function seal(key: Hotkey, round: number, payload: Uint8Array, o: { kind?: MessageKind; run?: string; stage?: number } = {}): Uint8Array {
  return sealEnvelope(key, { kind: o.kind ?? 'update', run: o.run ?? RUN, round, stage: o.stage ?? 0 }, payload);
}

/** A peer's signed update for `round`. */
export function signedUpdate(key: Hotkey, config: RunConfig, round: number, seed = 1): Uint8Array {
  return seal(key, round, modelUpdate(config, round, seed), { run: config.run });
}


/**
 * A copy of a valid update whose frame still checks (header, layout, checksum recomputed) but
 * whose body does not decode: one byte of an index stream changed (the first that breaks it).
 */
export function undecodableUpdate(config: RunConfig, round: number, seed = 1): Uint8Array {
  const cfg = preset(config.model);
  const expect = { configHash: configHash(cfg), round, layout: parameterLayout(cfg).map((p) => ({ name: p.name, shape: p.shape })) };
  const good = modelUpdate(config, round, seed);
  for (let at = Math.floor(good.length / 3); at < good.length - 4; at++) {
    const bad = good.slice();
    bad[at] ^= 0xa5;
    new DataView(bad.buffer).setUint32(bad.length - 4, crc32(bad.subarray(0, bad.length - 4)), true);
    const fails = (o: object) => {
      try {
        decodeUpdate(bad, { ...expect, ...o });
        return false;
      } catch {
        return true;
      }
    };
    // The body breaks, the frame still checks.
    if (fails({}) && !fails({ structureOnly: true })) return bad;
  }
  throw new Error('no byte breaks the body of this update');
}
