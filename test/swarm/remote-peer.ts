// The test's side of a mesh-peer.ts process: a peer of the run (coordinator connection and
// WebRTC links) that lives in a child process, so the test process never loads libwebrtc.
// Its hotkey is made here, so the test can sign and seal as that peer.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientMessage, ServerMessage } from '../../src/protocol/messages.ts';
import { Hotkey } from '../../src/wallet/keys.ts';
import type { FromMeshPeer, ToMeshPeer } from './mesh-peer.ts';
import type { PeerLinkStats } from '../../src/net/peer-link.ts';
import type { LinkRoute } from '../../src/net/link-path.ts';

const REGISTER = fileURLToPath(new URL('../../bin/register.mjs', import.meta.url));
const MESH_PEER = fileURLToPath(new URL('./mesh-peer.ts', import.meta.url));
/** Starting a process with tsx and joining: generous, for a loaded 2-core machine. */
const JOIN_TIMEOUT_MS = 120_000;
const CLOSE_TIMEOUT_MS = 20_000;

export class RemotePeer {
  readonly key: Hotkey;
  /** Resolves once the peer has joined the run. */
  readonly joined: Promise<void>;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly links = new Set<string>();
  private readonly serverListeners: ((m: ServerMessage) => void)[] = [];
  private readonly peerListeners: ((from: string, bytes: Uint8Array) => void)[] = [];
  private readonly pendingSends = new Map<number, (ok: boolean) => void>();
  private readonly pendingStats = new Map<number, (links: Record<string, PeerLinkStats>) => void>();
  private readonly pendingPaths = new Map<number, (paths: Record<string, LinkRoute>) => void>();
  private onClosed: ((left: string[]) => void) | null = null;
  private nextId = 0;

  /** Each linked peer's path (direct or relayed) and candidate types, as its link came up. */
  readonly routes = new Map<string, { path?: string; route?: string; upAt: number }>();
  /** Links that went down: to whom, why, when (Date.now()). */
  readonly drops: { peer: string; reason: string; at: number }[] = [];

  /**
   * Starts the process and joins the coordinator at `url`; add listeners before awaiting `joined`.
   * `netns`: the process runs in that network namespace (ip netns exec; root).
   */
  constructor(url: string, maxMessageBytes: number, options: { netns?: string } = {}) {
    const { key, mnemonic } = Hotkey.generate();
    this.key = key;
    const argv = [process.execPath, '--import', REGISTER, MESH_PEER];
    const [cmd, ...args] = options.netns ? ['ip', 'netns', 'exec', options.netns, ...argv] : argv;
    this.child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    void this.exited.then(() => {
      for (const done of this.pendingSends.values()) done(false);
      this.pendingSends.clear();
      for (const done of this.pendingStats.values()) done({});
      this.pendingStats.clear();
      for (const done of this.pendingPaths.values()) done({});
      this.pendingPaths.clear();
    });
    this.joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer ${key.address} did not join within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      this.child.on('message', (m: FromMeshPeer) => {
        if (m.type === 'joined') {
          clearTimeout(timer);
          resolve();
        } else if (m.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`peer ${key.address}: ${m.message}`));
          console.error(`peer ${key.address}: ${m.message}`);
        } else this.receive(m);
      });
      void this.exited.then(() => reject(new Error(`peer ${key.address} exited (${this.child.exitCode ?? this.child.signalCode}) before joining`)));
    });
    this.joined.catch(() => {}); // the awaiting test sees it
    this.tell({ type: 'join', url, mnemonic, maxMessageBytes });
  }

  onServer(cb: (m: ServerMessage) => void): void {
    this.serverListeners.push(cb);
  }

  onPeer(cb: (from: string, bytes: Uint8Array) => void): void {
    this.peerListeners.push(cb);
  }

  isConnected(peer: string): boolean {
    return this.links.has(peer);
  }

  send(message: ClientMessage): void {
    this.tell({ type: 'send', message });
  }

  sendBinary(bytes: Uint8Array): void {
    this.tell({ type: 'binary', bytes });
  }

  /** Sends to one peer over WebRTC; false when there is no open link or it failed. */
  sendToPeer(to: string, bytes: Uint8Array): Promise<boolean> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pendingSends.set(id, resolve);
      this.tell({ type: 'peer', id, to, bytes });
    });
  }

  /** Each open link's counts (bytes, messages, keepalives each way), by peer address; empty once exited. */
  linkStats(): Promise<Record<string, PeerLinkStats>> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve({});
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pendingStats.set(id, resolve);
      this.tell({ type: 'linkStats', id });
    });
  }

  /** Each open link's path (direct or relayed) as its stats say now, by peer address; empty once exited. */
  paths(): Promise<Record<string, LinkRoute>> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve({});
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pendingPaths.set(id, resolve);
      this.tell({ type: 'paths', id });
    });
  }

  /**
   * Closes the links and the socket, lets the process end libwebrtc and exit; a process that
   * does not (or cannot end libwebrtc's threads) is killed, which runs no exit-time cleanup.
   */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const closed = new Promise<string[] | null>((resolve) => {
      this.onClosed = resolve;
      setTimeout(() => resolve(null), CLOSE_TIMEOUT_MS);
    });
    this.tell({ type: 'close' });
    const left = await closed;
    if (left === null || left.length > 0) {
      console.log(`peer ${this.key.address}: ${left === null ? 'did not close' : `libwebrtc threads still running (${left.join(', ')})`}; killed`);
      this.child.kill('SIGKILL');
    } else this.child.disconnect();
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS))]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  private tell(m: ToMeshPeer): void {
    if (this.child.connected) this.child.send(m);
  }

  private receive(m: FromMeshPeer): void {
    switch (m.type) {
      case 'server':
        for (const cb of this.serverListeners) cb(m.message);
        break;
      case 'peer':
        for (const cb of this.peerListeners) cb(m.from, new Uint8Array(m.bytes));
        break;
      case 'link':
        if (m.up) this.links.add(m.peer);
        else {
          this.links.delete(m.peer);
          this.drops.push({ peer: m.peer, reason: m.reason, at: Date.now() });
        }
        if (m.up) this.routes.set(m.peer, { path: m.path, route: m.route, upAt: Date.now() });
        break;
      case 'path': {
        const known = this.routes.get(m.peer);
        if (known) this.routes.set(m.peer, { ...known, path: m.path, route: m.route });
        break;
      }
      case 'sent':
        this.pendingSends.get(m.id)?.(m.ok);
        this.pendingSends.delete(m.id);
        break;
      case 'linkStats':
        this.pendingStats.get(m.id)?.(m.links);
        this.pendingStats.delete(m.id);
        break;
      case 'paths':
        this.pendingPaths.get(m.id)?.(m.paths);
        this.pendingPaths.delete(m.id);
        break;
      case 'closed':
        this.onClosed?.(m.left);
        break;
    }
  }
}
