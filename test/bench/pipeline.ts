// `npm run bench -- pipeline`: a pipelined swarm step (SwarmPeer, one peer per stage) for
// S = 1, 2, 4 stages of a 4-layer tiny-width model, over an in-memory link that is either
// loopback (delivery on the next tick) or emulated 100 Mbit/s with 40 ms each way (per
// directed link: a message waits for the ones before it, takes bytes·8 / rate to send, then
// 40 ms to arrive). Prints tokens/s and the fraction of wall time each stage computes, and
// the bytes per micro-batch per hop for f32, f16 and int8 (codec payload + signed envelope).
// Writes results/pipeline.json.
//
// Every stage here shares ONE device (this process's adapter), so S stages cannot compute at
// the same time: the numbers show the pipeline's own costs — the codec, read-backs, the
// bubble, the link — not the speed-up of S separate GPUs, which is up to S × for the compute.
import { parseArgs } from 'node:util';
import { adapterName } from '../../src/gpu/device.ts';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { initParameters, parameterLayout, preset, type ModelConfig } from '../../src/model/config.ts';
import { openNodeGpu } from '../../src/node/dawn.ts';
import { activationMessageBytes, type ActivationMode } from '../../src/pipeline/activation-codec.ts';
import { PipelineStage } from '../../src/pipeline/stage.ts';
import { type HandoffKind, SwarmPeer } from '../../src/pipeline/swarm-peer.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

/** Envelope + framing bytes around each hand-off (test/pipeline/peer-link-stage.test.ts measures 191). */
const ENVELOPE_OVERHEAD = 191;

interface Link {
  name: string;
  /** bits per second (Infinity: loopback) */
  rate: number;
  latencyMs: number;
}

const LINKS: Link[] = [
  { name: 'loopback', rate: Infinity, latencyMs: 0 },
  { name: '100 Mbit/s, 40 ms', rate: 100e6, latencyMs: 40 },
];

class EmulatedNet {
  readonly peers = new Map<string, SwarmPeer>();
  private readonly freeAt = new Map<string, number>();
  bytes = 0;
  constructor(readonly link: Link) {}

  transport(me: string) {
    return {
      send: (to: string, kind: HandoffKind, bytes: Uint8Array) => {
        const copy = bytes.slice();
        const wire = copy.length + ENVELOPE_OVERHEAD;
        this.bytes += wire;
        const now = performance.now();
        const pair = `${me}>${to}`;
        const start = Math.max(now, this.freeAt.get(pair) ?? 0);
        const done = start + (Number.isFinite(this.link.rate) ? (wire * 8 * 1000) / this.link.rate : 0);
        this.freeAt.set(pair, done);
        setTimeout(() => this.peers.get(to)?.receive(me, kind, copy), Math.max(0, done + this.link.latencyMs - now));
        return true;
      },
      isUp: () => true,
    };
  }
}

interface RunResult {
  stages: number;
  link: string;
  tokensPerSecond: number;
  stepMs: number;
  busy: number[];
  loss: number;
  bytesPerStep: number;
}

async function runPipeline(gpu: Gpu, cfg: ModelConfig, S: number, link: Link, o: { B: number; T: number; M: number; steps: number; mode: ActivationMode }): Promise<RunResult> {
  const init = initParameters(cfg, parameterLayout(cfg), 7);
  const bounds = Array.from({ length: S + 1 }, (_, s) => Math.round((s * cfg.layers) / S));
  const members = Array.from({ length: S }, (_, s) => [`stage${s}`]);
  const net = new EmulatedNet(link);
  const stages = members.map((_, s) => {
    const st = PipelineStage.create(gpu, cfg, { from: bounds[s], to: bounds[s + 1], batch: o.B, seqLen: o.T, mode: o.mode });
    st.slice.setParameters(new Map(st.slice.layout.map((p) => [p.name, init.get(p.name)!])));
    return st;
  });
  stages.forEach((stage, s) => {
    const me = members[s][0];
    net.peers.set(me, new SwarmPeer({ stage, index: s, members, me, transport: net.transport(me), micros: o.M, round: 0, seed: 1 }));
  });
  let seed = 1;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const data = (m: number) => {
    const n = o.B * o.T;
    const tokens = Int32Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
    const targets = Int32Array.from({ length: n }, (_, i) => tokens[(i + 1) % n]);
    return { micro: m, tokens, targets };
  };
  const step = (i: number) => Promise.all(members.map(([me], s) => net.peers.get(me)!.step(i, 1e-3, s === 0 ? data : undefined)));
  await step(0); // compiles every kernel
  const busy0 = [...net.peers.values()].map((p) => p.stats.busyMs);
  const bytes0 = net.bytes;
  const t0 = performance.now();
  let loss = 0;
  for (let i = 1; i <= o.steps; i++) loss = (await step(i))[0].loss ?? NaN;
  const wall = performance.now() - t0;
  const busy = [...net.peers.values()].map((p, s) => (p.stats.busyMs - busy0[s]) / wall);
  for (const st of stages) st.destroy();
  return {
    stages: S, link: link.name, tokensPerSecond: (o.steps * o.M * o.B * o.T * 1000) / wall, stepMs: wall / o.steps, busy, loss,
    bytesPerStep: (net.bytes - bytes0) / o.steps,
  };
}

export async function runPipelineBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      software: { type: 'boolean' },
      steps: { type: 'string', default: '3' },
      micros: { type: 'string', default: '8' },
      batch: { type: 'string', default: '4' },
      seq: { type: 'string', default: '64' },
    },
  });
  const o = { B: Number(values.batch), T: Number(values.seq), M: Number(values.micros), steps: Number(values.steps), mode: 'f16' as ActivationMode };
  for (const [k, v] of Object.entries(o)) if (k !== 'mode' && !(Number.isInteger(v) && (v as number) > 0)) throw new Error(`--${k} must be a positive integer`);
  const cfg: ModelConfig = { ...preset('tiny'), layers: 4 };
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  const adapter = adapterName(gpu.info);
  console.log(`adapter: ${adapter}; model: tiny width (C ${cfg.dim}), ${cfg.layers} layers; B ${o.B} × T ${o.T}, ${o.M} micro-batches per step, ${o.mode} hand-offs; all stages on this one device`);
  const runs: RunResult[] = [];
  try {
    for (const link of LINKS) {
      for (const S of [1, 2, 4]) {
        const r = await runPipeline(gpu, cfg, S, link, o);
        runs.push(r);
        console.log(`S=${S} ${link.name}: ${r.tokensPerSecond.toFixed(0)} tokens/s`);
      }
    }
  } finally {
    gpu.destroy();
  }
  const rows: BenchRow[] = runs.map((r) => ({
    link: r.link, S: r.stages, 'tokens/s': r.tokensPerSecond, 'ms/step': r.stepMs,
    'busy per stage': r.busy.map((b) => b.toFixed(2)).join(' '), 'busy sum': r.busy.reduce((a, b) => a + b, 0), 'KiB/step on links': r.bytesPerStep / 1024, loss: r.loss,
  }));
  printTable('pipelined step (SwarmPeer), one peer per stage', rows);
  const C = cfg.dim;
  const hop = (['f32', 'f16', 'int8'] as const).map((mode) => {
    const forward = activationMessageBytes(mode, o.B, o.T, C, true) + ENVELOPE_OVERHEAD;
    const back = activationMessageBytes(mode, o.B, o.T, C, false) + ENVELOPE_OVERHEAD;
    return { mode, 'activations →': forward, '← gradients': back, 'per micro-batch per hop': forward + back, 'vs f32': 0 };
  });
  for (const h of hop) h['vs f32'] = h['per micro-batch per hop'] / hop[0]['per micro-batch per hop'];
  printTable(`bytes per micro-batch per hop (B ${o.B}, T ${o.T}, C ${C}; codec payload + ${ENVELOPE_OVERHEAD} B envelope)`, hop);
  const file = writeResults('pipeline', { adapter, model: { dim: cfg.dim, layers: cfg.layers }, ...o, runs, hop, note: 'all stages share one device: no parallel compute across stages' });
  console.log(`\nwrote ${file}`);
  return 0;
}
