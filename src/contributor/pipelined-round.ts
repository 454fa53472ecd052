// The inner loop of one round of a pipelined run, for one contributor: the round's SwarmPeer
// (src/pipeline/swarm-peer.ts) wired to the other members over the WebRTC mesh. Every
// hand-off and control message travels in a signed envelope (kind 'activations',
// 'activation-grads' or 'control', this run, this round, this peer's stage); the contributor
// opens and checks envelopes, then passes the payload here with the verified sender.
// H inner steps, each the whole swarm's pipelined step; stage 0 draws its micro-batches
// from the run's deterministic sampler for this hotkey. Environment-free.
import { learningRate } from '../train/schedule.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { SwarmPeer, SwarmStepError, type HandoffKind, type SwarmStepResult } from '../pipeline/swarm-peer.ts';
import { sealEnvelope, type MessageKind } from '../net/envelope.ts';
import type { PeerMesh } from '../net/mesh.ts';
import type { ModelReplica } from '../round/replica.ts';
import type { RunConfig } from '../protocol/run-config.ts';

const ENVELOPE_KIND: Record<HandoffKind, MessageKind> = { activations: 'activations', grads: 'activation-grads', control: 'control' };
const HANDOFF_KIND: Partial<Record<MessageKind, HandoffKind>> = { activations: 'activations', 'activation-grads': 'grads', control: 'control' };

/** The hand-off kind of an envelope kind, or null when it is not part of a pipelined step. */
export function handoffKind(kind: MessageKind): HandoffKind | null {
  return HANDOFF_KIND[kind] ?? null;
}

export interface PipelinedRoundOptions {
  replica: ModelReplica;
  config: RunConfig;
  key: Hotkey;
  mesh: PeerMesh;
  round: number;
  /** The round's members (sorted) and the stage of each. */
  members: readonly string[];
  stages: readonly number[];
  /** Whether an address is still in the run (the coordinator's peer list). */
  inRun(address: string): boolean;
  onStep(step: number, result: SwarmStepResult): void;
}

export class PipelinedRound {
  readonly peer: SwarmPeer;
  private stopped: string | null = null;

  constructor(private readonly o: PipelinedRoundOptions) {
    const { replica, config, key, mesh, round } = o;
    if (!replica.stage) throw new Error('PipelinedRound: the replica holds no pipeline stage');
    replica.stage.setRound(round); // hand-offs are stamped with the round and checked against it
    const byStage: string[][] = Array.from({ length: config.stages }, () => []);
    o.members.forEach((a, i) => byStage[o.stages[i]]?.push(a));
    const stage = replica.stageIndex;
    this.peer = new SwarmPeer({
      stage: replica.stage,
      index: stage,
      members: byStage,
      me: key.address,
      micros: config.microBatches,
      round,
      seed: config.seed ^ round,
      // A peer that stops answering is dropped by the mesh or the coordinator well before this.
      stallMs: Math.max(60_000, config.heartbeatSeconds * config.heartbeatMisses * 1000),
      transport: {
        isUp: (peer) => mesh.isConnected(peer) && o.inRun(peer),
        send: (to, kind, bytes) => {
          if (!mesh.isConnected(to)) return false;
          const env = sealEnvelope(key, { kind: ENVELOPE_KIND[kind], run: config.run, round, stage }, bytes);
          void mesh.send(to, env).then((ok) => {
            if (!ok) this.peer.peerDown(to);
          });
          return true;
        },
      },
    });
  }

  /** Every stage has a peer among the members (else the round cannot run its steps). */
  static covers(config: RunConfig, stages: readonly number[]): boolean {
    return Array.from({ length: config.stages }, (_, s) => s).every((s) => stages.includes(s));
  }

  receive(from: string, kind: HandoffKind, payload: Uint8Array): void {
    this.peer.receive(from, kind, payload);
  }

  peerDown(address: string): void {
    this.peer.peerDown(address);
  }

  /** Ends a running step at once (stop, lost coordinator, round closed without us). */
  abort(reason: string): void {
    this.stopped = reason;
    this.peer.abort(reason);
  }

  /** The round's H inner steps; resolves to the mean loss the last stage reported (NaN if none). */
  async run(): Promise<number> {
    const { replica, config, round } = this.o;
    const H = config.innerSteps;
    let sum = 0;
    let n = 0;
    for (let i = 0; i < H; i++) {
      if (this.stopped) throw new SwarmStepError(this.stopped);
      const lr = learningRate(round * H + i + 1, replica.schedule);
      const data = replica.stage!.isFirst
        ? (m: number) => ({ micro: m, ...replica.microBatch(round, i, m) })
        : undefined;
      let r: SwarmStepResult;
      try {
        r = await this.peer.step(i, lr, data);
      } catch (e) {
        replica.stage!.abortStep(); // the next round starts from a clean stage
        throw e;
      }
      if (r.loss !== null) {
        sum += r.loss;
        n++;
      }
      this.o.onStep(i, r);
    }
    return n > 0 ? sum / n : NaN;
  }
}
