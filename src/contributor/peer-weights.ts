// θ_start between peers: a contributor that (re)joins asks connected peers in turn for the
// weights of its stage; a peer asked answers with its θ_start as a checkpoint file, or at
// once with an empty answer when it holds another stage (so the asker moves on instead of
// waiting). Envelopes are signed with the asker's / answerer's hotkey; the contributor opens
// and checks them and hands the answers here. Environment-free.
import { sealEnvelope } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import type { Hotkey } from '../wallet/keys.ts';

export interface PeerWeightsDeps {
  key(): Hotkey;
  mesh(): PeerMesh;
  run(): string;
  stage(): number;
  coordRound(): number;
  /** The round whose θ_start we hold, or −1. */
  held(): number;
  /** θ_start as a checkpoint file and its round, read together (nothing applies a commit meanwhile). */
  encodeHeld(): Promise<{ round: number; bytes: Uint8Array }>;
  until(ready: () => boolean, timeoutMs: number): Promise<boolean>;
}

export interface PeerWeightsAnswer {
  from: string;
  round: number;
  bytes: Uint8Array;
}

export class PeerWeights {
  private waiter: ((m: PeerWeightsAnswer) => void) | null = null;

  constructor(private readonly d: PeerWeightsDeps) {}

  /** Asks each connected peer in turn for θ_start of our stage; the first non-empty answer wins. */
  async ask(timeoutMs: number): Promise<PeerWeightsAnswer | null> {
    const end = performance.now() + timeoutMs;
    const mesh = this.d.mesh();
    await this.d.until(() => mesh.connectedPeers.length > 0, timeoutMs);
    for (const peer of mesh.connectedPeers) {
      const left = end - performance.now();
      if (left <= 0) break;
      const answer = new Promise<PeerWeightsAnswer | null>((resolve) => {
        const t = setTimeout(() => resolve(null), Math.min(left, 60_000));
        this.waiter = (m) => {
          if (m.from !== peer) return;
          clearTimeout(t);
          resolve(m);
        };
      });
      const request = sealEnvelope(this.d.key(), { kind: 'weights-request', run: this.d.run(), round: this.d.coordRound(), stage: this.d.stage() }, new Uint8Array(0));
      if (!(await mesh.send(peer, request))) continue;
      const got = await answer;
      this.waiter = null;
      if (got && got.bytes.length > 0) return got; // empty: that peer holds another stage
    }
    return null;
  }

  /** A peer's answer; false when we did not ask (the caller counts it). */
  answer(from: string, round: number, bytes: Uint8Array): boolean {
    if (!this.waiter) return false;
    this.waiter({ from, round, bytes });
    return true;
  }

  /** Answers a peer's request for the weights of `stage`. */
  async serve(to: string, stage: number): Promise<void> {
    const held = this.d.held();
    if (held < 0) return;
    const mesh = this.d.mesh();
    const seal = (round: number, bytes: Uint8Array) => sealEnvelope(this.d.key(), { kind: 'weights', run: this.d.run(), round, stage: this.d.stage() }, bytes);
    // Not ours to give: say so at once, so the asker tries the next peer.
    if (stage !== this.d.stage()) return void (await mesh.send(to, seal(held, new Uint8Array(0))));
    const { round, bytes } = await this.d.encodeHeld();
    await mesh.send(to, seal(round, bytes));
  }
}
