// SwarmPeer (src/pipeline/swarm-peer.ts) in one process over an in-memory transport that
// delivers asynchronously and can kill a peer: the routing, completion, re-routing and
// norm exchange of a pipelined swarm step, without WebRTC (the contributor adds that).
//   1. S = 2, one peer per stage, f32: each step's loss and norm equal the whole model's
//      (LocalTrainer) within f32 rounding.
//   2. S = 2 × 2 replicas, f16: every peer steps, the loss falls; a stage-1 peer killed in
//      the middle of a step is routed around (its micro-batches re-sent), the step completes.
//   3. Wrong-shape, wrong-round, wrong-kind and far-future hand-offs from a member are dropped and counted.
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, initParameters, parameterLayout, preset } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { encodeActivations, type ActivationMode } from '../../src/pipeline/activation-codec.ts';
import { type MicroBatchData, PipelineStage } from '../../src/pipeline/stage.ts';
import { type HandoffKind, SwarmPeer, type SwarmStepResult } from '../../src/pipeline/swarm-peer.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { testGpu } from '../helpers/gpu.ts';
import { affineBatch } from './fixtures.ts';

const cfg: ModelConfig = preset('tiny');
const [B, T, M, LR, SEED] = [2, 16, 2, 3e-3, 99];

/** Micro-batch `micro` of step `step` for data source `source` (fixtures.ts). */
function batch(step: number, micro: number, source = 0): { tokens: Int32Array; targets: Int32Array } {
  return affineBatch(cfg, B, T, 1000 * step + 10 * source + micro);
}

/** An in-memory network: asynchronous delivery, per-pair order kept, peers can be killed. */
class Net {
  readonly peers = new Map<string, SwarmPeer>();
  readonly dead = new Set<string>();
  sent = 0;
  /** Called before each delivery; may kill peers. */
  onSend: ((from: string, to: string, kind: HandoffKind) => void) | null = null;

  transport(me: string) {
    return {
      send: (to: string, kind: HandoffKind, bytes: Uint8Array) => {
        if (this.dead.has(to) || this.dead.has(me)) return false;
        this.onSend?.(me, to, kind);
        this.sent++;
        const copy = bytes.slice();
        setTimeout(() => {
          if (!this.dead.has(to) && !this.dead.has(me)) this.peers.get(to)?.receive(me, kind, copy);
        }, 0);
        return true;
      },
      isUp: (peer: string) => !this.dead.has(peer),
    };
  }

  kill(peer: string): void {
    this.dead.add(peer);
    this.peers.get(peer)!.abort('killed');
    for (const [name, p] of this.peers) if (name !== peer) p.peerDown(peer);
  }
}

function makeStages(gpu: Gpu, init: Map<string, Float32Array>, mode: ActivationMode, perStage: number[]) {
  const bounds = [0, 1, cfg.layers];
  const members = perStage.map((n, s) => Array.from({ length: n }, (_, i) => `s${s}p${i}`));
  const stages = new Map<string, PipelineStage>();
  members.forEach((names, s) => {
    for (const name of names) {
      const stage = PipelineStage.create(gpu, cfg, { from: bounds[s], to: bounds[s + 1], batch: B, seqLen: T, mode });
      stage.slice.setParameters(new Map(stage.slice.layout.map((p) => [p.name, init.get(p.name)!])));
      stages.set(name, stage);
    }
  });
  const net = new Net();
  members.forEach((names, s) => {
    for (const name of names) {
      net.peers.set(name, new SwarmPeer({ stage: stages.get(name)!, index: s, members, me: name, transport: net.transport(name), micros: M, round: 0, seed: 7, stallMs: 60_000 }));
    }
  });
  return { members, stages, net };
}

async function runStep(net: Net, members: string[][], step: number): Promise<Map<string, SwarmStepResult | Error>> {
  const out = new Map<string, SwarmStepResult | Error>();
  await Promise.all([...net.peers].map(async ([name, peer]) => {
    const source = members[0].indexOf(name);
    const data = source >= 0 ? (m: number): MicroBatchData => ({ micro: m, ...batch(step, m, source) }) : undefined;
    try {
      out.set(name, await peer.step(step, LR, data));
    } catch (e) {
      out.set(name, e as Error);
    }
  }));
  return out;
}

describe('SwarmPeer: a pipelined swarm step in one process', () => {
  it('S = 2, one peer per stage, f32: the loss and norm of each step equal the whole model within f32 rounding', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), SEED);
    const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
    slice.setParameters(init);
    const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads);
    const trainer = new LocalTrainer(gpu, slice, opt, { batch: (s, m) => batch(s, m) }, { peak: LR, warmup: 0, total: 1, minRatio: 1 }, M);
    const STEPS = 3;
    const ref: { loss: number; norm: number }[] = [];
    for (let s = 1; s <= STEPS; s++) {
      const r = await trainer.trainStep(s);
      ref.push({ loss: r.loss, norm: r.gradNorm });
    }
    trainer.destroy();
    opt.destroy();
    slice.destroy();

    const { members, stages, net } = makeStages(gpu, init, 'f32', [1, 1]);
    const got: { loss: number; norm: number }[] = [];
    for (let s = 1; s <= STEPS; s++) {
      const results = await runStep(net, members, s);
      const last = results.get('s1p0') as SwarmStepResult;
      const first = results.get('s0p0') as SwarmStepResult;
      expect(first.loss).toBe(last.loss); // the last stage's loss reaches every peer
      expect(first.gradNorm).toBe(last.gradNorm);
      expect(first.applied && last.applied).toBe(true);
      got.push({ loss: last.loss!, norm: last.gradNorm });
    }
    for (let i = 0; i < STEPS; i++) console.log(`step ${i + 1}: whole ${ref[i].loss.toFixed(7)} ‖g‖ ${ref[i].norm.toFixed(5)}   swarm ${got[i].loss.toFixed(7)} ‖g‖ ${got[i].norm.toFixed(5)}   Δloss ${(got[i].loss - ref[i].loss).toExponential(2)}`);
    for (let i = 0; i < STEPS; i++) {
      expect(Math.abs(got[i].loss - ref[i].loss)).toBeLessThan(1e-5);
      expect(Math.abs(got[i].norm - ref[i].norm) / ref[i].norm).toBeLessThan(1e-4);
    }
    for (const p of net.peers.values()) expect(p.dropped).toEqual({});
    for (const s of stages.values()) s.destroy();
  });

  it('S = 2 × 2 replicas, f16: the loss falls; a stage-1 peer killed mid-step is routed around', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), SEED);
    const { members, stages, net } = makeStages(gpu, init, 'f16', [2, 2]);
    const losses: number[] = [];
    for (let s = 1; s <= 3; s++) {
      const results = await runStep(net, members, s);
      for (const [name, r] of results) {
        expect(r, name).not.toBeInstanceOf(Error);
        expect((r as SwarmStepResult).applied, name).toBe(true);
      }
      const r = results.get('s0p0') as SwarmStepResult;
      losses.push(r.loss!);
      // every stage-1 replica took work: the wiring spreads micro-batches
      for (const name of members[1]) expect((results.get(name) as SwarmStepResult).processed).toBeGreaterThan(0);
    }
    console.log(`2×2 losses ${losses.map((l) => l.toFixed(4)).join(' → ')}`);
    expect(losses[2]).toBeLessThan(losses[0]);

    // kill s1p1 as it sends its first gradient of step 4: that micro-batch's gradient never arrives
    let killed = false;
    net.onSend = (from, _to, kind) => {
      if (!killed && from === 's1p1' && kind === 'grads') {
        killed = true;
        queueMicrotask(() => net.kill('s1p1'));
      }
    };
    const results = await runStep(net, members, 4);
    expect(killed).toBe(true);
    expect(results.get('s1p1')).toBeInstanceOf(Error);
    const alive = ['s0p0', 's0p1', 's1p0'].map((n) => results.get(n) as SwarmStepResult);
    for (const r of alive) expect(r).not.toBeInstanceOf(Error);
    const rerouted = alive[0].rerouted + alive[1].rerouted;
    console.log(`step 4 with s1p1 killed: loss ${alive[0].loss!.toFixed(4)}, re-routed ${rerouted}, s1p0 processed ${alive[2].processed}, dropped ${alive[0].dropped + alive[1].dropped}`);
    expect(rerouted).toBeGreaterThan(0);
    expect(alive[0].dropped + alive[1].dropped).toBe(0);
    expect(alive[0].loss).not.toBeNull();
    // the survivors go on without the dead peer
    const next = await runStep(net, members, 5);
    for (const n of ['s0p0', 's0p1', 's1p0']) expect(next.get(n), n).not.toBeInstanceOf(Error);
    expect((next.get('s1p0') as SwarmStepResult).processed).toBe(2 * M);
    for (const s of stages.values()) s.destroy();
  });

  it('wrong-shape, wrong-round and wrong-kind hand-offs from a member are dropped and counted; the step completes', async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), SEED);
    const { members, stages, net } = makeStages(gpu, init, 'f16', [1, 1]);
    const target = net.peers.get('s1p0')!;
    const C = cfg.dim;
    const bad = (over: Partial<Parameters<typeof encodeActivations>[0]>) =>
      encodeActivations({ mode: 'f16', kind: 'activations', round: 0, step: 1, micro: 0, B, T, C, data: new Float32Array(B * T * C), targets: new Int32Array(B * T), ...over });
    const wrongShape = encodeActivations({ mode: 'f16', kind: 'activations', round: 0, step: 1, micro: 0, B, T: T / 2, C, data: new Float32Array(B * (T / 2) * C), targets: new Int32Array(B * (T / 2)) });
    const step = runStep(net, members, 1);
    target.receive('s0p0', 'activations', wrongShape);
    target.receive('s0p0', 'activations', bad({ round: 5 }));
    target.receive('s0p0', 'grads', bad({}));
    target.receive('stranger', 'activations', bad({}));
    target.receive('s0p0', 'control', new TextEncoder().encode('{"t":"norm"}'));
    target.receive('s0p0', 'activations', bad({ step: 1000 })); // far ahead: never buffered
    const results = await step;
    for (const r of results.values()) expect(r).not.toBeInstanceOf(Error);
    console.log('dropped at s1p0:', target.dropped);
    expect(target.dropped).toEqual({ shape: 1, round: 1, kind: 1, 'unknown-peer': 1, control: 1, step: 1 });
    expect((results.get('s1p0') as SwarmStepResult).processed).toBe(M);
    for (const s of stages.values()) s.destroy();
  });
});
