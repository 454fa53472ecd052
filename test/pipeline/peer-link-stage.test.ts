// PeerStageLink: pipeline hand-offs in signed envelopes over a real WebRTC PeerLink
// (@roamhq/wrtc on loopback, signaling handed across in-process).
// 1. The checks on their own (no GPU): what passes is delivered as its payload, byte for
//    byte and in order; a forged, mis-addressed, wrong-run, wrong-round, wrong-stage,
//    wrong-kind or corrupt envelope is dropped and counted under its reason.
// 2. Issue 6's acceptance check across peers: `tiny` split into S = 2 stages ([0, 1) and
//    [1, 2)), each StageRunner talking to the other over its own PeerLink through a
//    PeerStageLink, f32 transfers; each step's loss equals the whole-model LayerSlice
//    (LocalTrainer, same data, same AdamW) within f32 rounding, and equals the in-process
//    loopback pipeline exactly. Before two of the steps a forged envelope (another key), one
//    claiming the remote's address with another key's signature, a wrong-round and a
//    wrong-stage message are injected on the link, each a well-formed hand-off for that
//    step's micro-batch 0 that would change the loss if delivered: all are dropped and
//    counted by the link, the runners see none of them, and the losses stay the same.
import wrtc from '@roamhq/wrtc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu.ts';
import { type ModelConfig, initParameters, parameterLayout, preset } from '../../src/model/config.ts';
import { LayerSlice } from '../../src/model/slice.ts';
import { maxEnvelopeBytes, peekEnvelope, sealEnvelope } from '../../src/net/envelope.ts';
import { DEFAULT_CHUNK_BYTES, FRAME_HEADER_BYTES, type ReassemblyLimits } from '../../src/net/framing.ts';
import { PeerLink } from '../../src/net/peer-link.ts';
import { activationMessageBytes, encodeActivations, type ActivationKind } from '../../src/pipeline/activation-codec.ts';
import { loopbackPair, type StageLink } from '../support/pipeline/link.ts';
import { PeerStageLink } from '../support/pipeline/peer-link-stage.ts';
import { StageRunner, runPipelineStep } from '../support/pipeline/runner.ts';
import { type MicroBatchData, PipelineStage } from '../../src/pipeline/stage.ts';
import { AdamW } from '../../src/train/optimizer.ts';
import { LocalTrainer } from '../../src/train/trainer.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { expectClose, randInts, randn, testGpu } from '../helpers/gpu.ts';
import { releaseWebRtc } from '../helpers/webrtc-release.ts';
import { affineBatch } from './fixtures.ts';

const RUN = 'peer-stage-test';
const open: PeerLink[] = [];
let keys: { a: Hotkey; b: Hotkey; mallory: Hotkey };

beforeAll(async () => {
  await cryptoReady();
  keys = { a: Hotkey.generate().key, b: Hotkey.generate().key, mallory: Hotkey.generate().key };
});
afterAll(async () => {
  for (const l of open.splice(0)) l.close();
  // End libwebrtc before the worker ends (test/helpers/webrtc-release.ts says why).
  expect(await releaseWebRtc()).toEqual([]);
});

/** Two connected PeerLinks: A (stage 0's side) and B (stage 1's side). */
async function connectedPair(maxMessageBytes: number): Promise<[PeerLink, PeerLink]> {
  const limits: ReassemblyLimits = { maxMessageBytes, timeoutMs: 30_000, maxInFlight: 4 };
  const base = { wrtc, iceServers: [], limits };
  let left: PeerLink | null = null, right: PeerLink | null = null;
  left = new PeerLink('B', { ...base, initiator: true }, (d) => setImmediate(() => right?.signal(d)));
  right = new PeerLink('A', { ...base, initiator: false }, (d) => setImmediate(() => left?.signal(d)));
  open.push(left, right);
  await Promise.all([left, right].map((l) => new Promise<void>((resolve, reject) => {
    l.onConnect(resolve);
    l.onClose((r) => reject(new Error(`link closed before connecting: ${r}`)));
  })));
  return [left, right];
}

/** Stage 0's and stage 1's PeerStageLink over a connected pair; rounds read from `round`. */
function stageLinks(a: PeerLink, b: PeerLink, maxPayloadBytes: number, round: () => number): [PeerStageLink, PeerStageLink] {
  const down = new PeerStageLink({ link: a, key: keys.a, run: RUN, stage: 0, remoteIs: 'downstream', remoteAddress: keys.b.address, round, maxPayloadBytes });
  const up = new PeerStageLink({ link: b, key: keys.b, run: RUN, stage: 1, remoteIs: 'upstream', remoteAddress: keys.a.address, round, maxPayloadBytes });
  return [down, up];
}

/** `key`'s envelope, its sender field overwritten with `claim` (so its signature no longer verifies). */
function impersonate(key: Hotkey, claim: string, h: Parameters<typeof sealEnvelope>[1], payload: Uint8Array): Uint8Array {
  const env = sealEnvelope(key, h, payload);
  const claimBytes = new TextEncoder().encode(claim);
  const at = 7 + 1 + env[7] + 6; // magic, version, type, run (length + bytes), round, stage
  expect(env[at]).toBe(claimBytes.length);
  env.set(claimBytes, at + 1);
  expect(peekEnvelope(env).sender).toBe(claim);
  return env;
}

function handOff(kind: ActivationKind, opts: { round: number; step: number; micro: number; B: number; T: number; C: number; V: number; seed: number }): Uint8Array {
  const { round, step, micro, B, T, C, V, seed } = opts;
  const data = randn(B * T * C, seed);
  const targets = kind === 'activations' ? randInts(B * T, V, seed + 1) : undefined;
  return encodeActivations({ mode: 'f32', kind, round, step, micro, B, T, C, data, targets });
}

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('PeerStageLink checks', () => {
  afterEach(() => {
    for (const l of open.splice(0)) l.close();
  });

  it('delivers verified payloads in order; drops and counts forged, misaddressed, stale and corrupt envelopes', async () => {
    const shape = { B: 1, T: 3, C: 4, V: 16 };
    const max = activationMessageBytes('f32', shape.B, shape.T, shape.C, true);
    const [a, b] = await connectedPair(maxEnvelopeBytes(max));
    const round = 7;
    const [down, up] = stageLinks(a, b, max, () => round);
    expect([down.remoteStage, down.incomingKind, down.outgoingKind]).toEqual([1, 'grads', 'activations']);
    expect([up.remoteStage, up.incomingKind, up.outgoingKind]).toEqual([0, 'activations', 'grads']);
    const atUp: Uint8Array[] = [], atDown: Uint8Array[] = [];
    up.onMessage((m) => atUp.push(m));
    down.onMessage((m) => atDown.push(m));

    const fwd = (step: number, micro: number, r = round) => handOff('activations', { ...shape, round: r, step, micro, seed: 10 * step + micro });
    const bwd = (step: number, micro: number) => handOff('grads', { ...shape, round, step, micro, seed: 100 + 10 * step + micro });
    const honestFwd = { kind: 'activations' as const, run: RUN, round, stage: 0 };

    // the honest traffic, both ways
    const good = [fwd(1, 0), fwd(1, 1)];
    for (const m of good) down.send(m);
    const back = bwd(1, 0);
    up.send(back);

    // what an attacker or a confused peer puts on stage 1's link (raw, past PeerStageLink)
    const p = fwd(1, 2);
    const corrupt = sealEnvelope(keys.a, honestFwd, p);
    corrupt[corrupt.length - 64 - 1] ^= 1; // a payload byte: its hash no longer matches
    const injected: [string, Uint8Array][] = [
      ['sender', sealEnvelope(keys.mallory, honestFwd, p)],
      ['signature', impersonate(keys.mallory, keys.a.address, honestFwd, p)],
      ['run', sealEnvelope(keys.a, { ...honestFwd, run: 'another-run' }, p)],
      ['round', sealEnvelope(keys.a, { ...honestFwd, round: round - 1 }, fwd(1, 2, round - 1))],
      ['round', sealEnvelope(keys.a, { ...honestFwd, round: round + 1 }, p)], // payload disagrees too
      ['stage', sealEnvelope(keys.a, { ...honestFwd, stage: 1 }, p)],
      ['stage', sealEnvelope(keys.a, { ...honestFwd, stage: 2 }, p)],
      ['kind', sealEnvelope(keys.a, { ...honestFwd, kind: 'activation-grads' }, bwd(1, 2))], // gradients do not flow forward
      ['kind', sealEnvelope(keys.a, honestFwd, bwd(1, 2))], // the payload's codec kind disagrees
      ['kind', sealEnvelope(keys.a, { ...honestFwd, kind: 'update' }, p)],
      ['round', sealEnvelope(keys.a, honestFwd, fwd(1, 2, round + 1))], // envelope round right, payload's wrong
      ['payload', sealEnvelope(keys.a, honestFwd, new Uint8Array(64))],
      ['hash', corrupt],
      ['magic', new Uint8Array(200).fill(3)],
      ['truncated', sealEnvelope(keys.a, honestFwd, p).subarray(0, 90)],
    ];
    for (const [, env] of injected) await a.send(env);
    const last = fwd(1, 3);
    down.send(last); // ordered: once it is delivered, everything before it has been judged

    await until('the last good message', () => atUp.length === 3 && atDown.length === 1);
    const same = (x: Uint8Array, y: Uint8Array) => Buffer.compare(x, y) === 0;
    expect(same(atUp[0], good[0]) && same(atUp[1], good[1]) && same(atUp[2], last)).toBe(true);
    expect(same(atDown[0], back)).toBe(true);
    const want: Record<string, number> = {};
    for (const [reason] of injected) want[reason] = (want[reason] ?? 0) + 1;
    expect(up.dropped).toEqual(want);
    expect(up.droppedCount).toBe(injected.length);
    expect(down.dropped).toEqual({});
    expect(up.stats.delivered).toBe(3);
    expect(down.stats.sent).toBe(3);

    // a forged gradient towards stage 0 fares no better
    const forgedBack = sealEnvelope(keys.mallory, { kind: 'activation-grads', run: RUN, round, stage: 1 }, bwd(1, 1));
    await b.send(forgedBack);
    up.send(bwd(1, 1));
    await until('the second gradient', () => atDown.length === 2);
    expect(down.dropped).toEqual({ sender: 1 });

    // what a sender may not send: the wrong direction's kind or another round
    expect(() => down.send(bwd(1, 0))).toThrow(/grads cannot leave towards the downstream stage/);
    expect(() => down.send(fwd(1, 0, round + 1))).toThrow(/round 8 in round 7/);
    expect(() => down.send(new Uint8Array(10))).toThrow(/magic/);

    // close: both ends learn it, sends then throw
    const closedUp = new Promise<string>((r) => up.onClose(r));
    down.close('done');
    expect(down.closed).toBe(true);
    expect(typeof (await closedUp)).toBe('string');
    expect(up.closed).toBe(true);
    expect(() => down.send(fwd(2, 0))).toThrow(/closed link/);
  }, 60_000);

  it('queues what arrives before a handler is set, and refuses bad options', async () => {
    const max = activationMessageBytes('f32', 1, 1, 2, true);
    const [a, b] = await connectedPair(maxEnvelopeBytes(max));
    const [down, up] = stageLinks(a, b, max, () => 0);
    const m = handOff('activations', { round: 0, step: 0, micro: 0, B: 1, T: 1, C: 2, V: 4, seed: 5 });
    down.send(m);
    await until('delivery', () => up.stats.delivered === 1);
    const got: Uint8Array[] = [];
    up.onMessage((x) => got.push(x));
    expect(got.length).toBe(1);
    expect(Buffer.compare(got[0], m)).toBe(0);
    const base = { link: a, key: keys.a, run: RUN, remoteAddress: keys.b.address, round: 0, maxPayloadBytes: max };
    expect(() => new PeerStageLink({ ...base, stage: 0, remoteIs: 'upstream' })).toThrow(/no upstream/);
    expect(() => new PeerStageLink({ ...base, stage: -1, remoteIs: 'downstream' })).toThrow(RangeError);
    expect(() => new PeerStageLink({ ...base, stage: 0, remoteIs: 'downstream', maxPayloadBytes: 0 })).toThrow(RangeError);
    const fixed = new PeerStageLink({ ...base, stage: 0, remoteIs: 'downstream', round: 3 });
    expect(fixed.round).toBe(3);
    fixed.setRound(4);
    expect(fixed.round).toBe(4);
    expect(() => fixed.setRound(-1)).toThrow(RangeError);
  }, 30_000);
});

// ---- the acceptance check across peers ----

const cfg: ModelConfig = preset('tiny');
const [B, T, M, STEPS, LR, SEED] = [2, 16, 4, 4, 3e-3, 1234];
const SPLIT = 1;
/** Steps before which bad messages are injected. */
const ATTACKED = [2, 4];

/** Micro-batch `micro` of step `step` (fixtures.ts). */
function batch(step: number, micro: number): { tokens: Int32Array; targets: Int32Array } {
  return affineBatch(cfg, B, T, 1000 * step + micro);
}

const data = (step: number) => (micro: number): MicroBatchData => ({ micro, ...batch(step, micro) });

interface Run {
  losses: number[];
  norms: number[];
  params: Map<string, Float32Array>;
}

async function wholeModel(gpu: Gpu, init: Map<string, Float32Array>): Promise<Run> {
  const slice = LayerSlice.create(gpu, cfg, 0, cfg.layers, { batch: B, seqLen: T });
  slice.setParameters(init);
  const opt = new AdamW(gpu, slice.layout, slice.params, slice.grads);
  const trainer = new LocalTrainer(gpu, slice, opt, { batch: batch }, { peak: LR, warmup: 0, total: 1, minRatio: 1 }, M);
  const run: Run = { losses: [], norms: [], params: new Map() };
  for (let step = 1; step <= STEPS; step++) {
    const r = await trainer.trainStep(step);
    run.losses.push(r.loss);
    run.norms.push(r.gradNorm);
  }
  run.params = await slice.readParameters();
  trainer.destroy();
  opt.destroy();
  slice.destroy();
  return run;
}

type Links = (stages: PipelineStage[]) => Promise<{ down: StageLink; up: StageLink; beforeStep?: (step: number) => Promise<void> }>;

async function pipelined(gpu: Gpu, init: Map<string, Float32Array>, links: Links): Promise<Run & { runners: StageRunner[] }> {
  const bounds = [0, SPLIT, cfg.layers];
  const stages = [0, 1].map((s) => {
    const stage = PipelineStage.create(gpu, cfg, { from: bounds[s], to: bounds[s + 1], batch: B, seqLen: T, mode: 'f32' });
    stage.slice.setParameters(new Map(stage.slice.layout.map((p) => [p.name, init.get(p.name)!])));
    return stage;
  });
  const { down, up, beforeStep } = await links(stages);
  const runners = [
    new StageRunner(stages[0], { index: 0, stages: 2, downstream: down, timeoutMs: 60_000 }),
    new StageRunner(stages[1], { index: 1, stages: 2, upstream: up, timeoutMs: 60_000 }),
  ];
  const run: Run = { losses: [], norms: [], params: new Map() };
  try {
    for (let step = 1; step <= STEPS; step++) {
      await beforeStep?.(step);
      const r = await runPipelineStep(runners, { step, micros: M, lr: LR, data: data(step) });
      run.losses.push(r.loss);
      run.norms.push(r.gradNorm);
    }
    for (const s of stages) for (const [n, p] of await s.slice.readParameters()) run.params.set(n, p);
  } finally {
    down.close();
    up.close();
    for (const s of stages) s.destroy();
  }
  return { ...run, runners };
}

describe('pipeline S = 2 (tiny) across two peers over WebRTC vs the whole model', () => {
  // A safety net, not a timing: on a loaded 2-core CI machine this took over 150 s.
  it(`${STEPS} AdamW steps of ${M} micro-batches, f32 transfers in signed envelopes: the whole model's losses; injected forgeries dropped`, async () => {
    const gpu = await testGpu();
    const init = initParameters(cfg, parameterLayout(cfg), SEED);
    const t0 = performance.now();
    const ref = await wholeModel(gpu, init);
    const loop = await pipelined(gpu, init, async () => {
      const [down, up] = loopbackPair();
      return { down, up };
    });
    const t1 = performance.now();

    let peer: { a: PeerLink; b: PeerLink; down: PeerStageLink; up: PeerStageLink } | null = null;
    const injectedAt: number[] = [];
    /** Wire bytes of the injected messages, per direction. */
    const injectedBytes = { forward: 0, back: 0 };
    const peerRun = await pipelined(gpu, init, async (stages) => {
      const max = stages[1].maxMessageBytes;
      const [a, b] = await connectedPair(maxEnvelopeBytes(max));
      const [down, up] = stageLinks(a, b, max, () => stages[0].round);
      peer = { a, b, down, up };
      const beforeStep = async (step: number) => {
        if (!ATTACKED.includes(step)) return;
        const round = stages[0].round;
        expect(stages[1].round).toBe(round);
        const shape = { B, T, C: cfg.dim, V: cfg.vocabSize, step, micro: 0, seed: 77 + step };
        const forged = handOff('activations', { ...shape, round });
        const h = { kind: 'activations' as const, run: RUN, round, stage: 0 };
        const before = up.droppedCount;
        const [sentA, sentB] = [a.stats.bytesSent, b.stats.bytesSent];
        // on stage 1's link: another key, another key claiming stage 0's address, stage 0's
        // key for another round, and for the wrong stage (1: stage 1's own)
        await a.send(sealEnvelope(keys.mallory, h, forged));
        await a.send(impersonate(keys.mallory, keys.a.address, h, forged));
        await a.send(sealEnvelope(keys.a, { ...h, round: round + 1 }, handOff('activations', { ...shape, round: round + 1 })));
        await a.send(sealEnvelope(keys.a, { ...h, stage: 1 }, forged));
        // on stage 0's link: a forged gradient for micro-batch 0
        const beforeDown = down.droppedCount;
        await b.send(sealEnvelope(keys.mallory, { kind: 'activation-grads', run: RUN, round, stage: 1 }, handOff('grads', { ...shape, round })));
        await until('the injected messages to be judged', () => up.droppedCount === before + 4 && down.droppedCount === beforeDown + 1);
        injectedBytes.forward += a.stats.bytesSent - sentA;
        injectedBytes.back += b.stats.bytesSent - sentB;
        injectedAt.push(step);
      };
      return { down, up, beforeStep };
    });
    const t2 = performance.now();
    const { a, b, down, up } = peer!;

    console.log(`tiny, S=2 [0,${SPLIT}) [${SPLIT},${cfg.layers}), B=${B} T=${T}, M=${M} micro-batches, AdamW lr ${LR}, f32 transfers; bad messages injected before steps ${ATTACKED.join(', ')}`);
    console.log('step  whole-model   loopback pipeline      Δ   WebRTC+envelopes      Δ');
    for (let i = 0; i < STEPS; i++) {
      const d = (x: number) => (x - ref.losses[i]).toExponential(2).padStart(9);
      console.log(`${String(i + 1).padStart(4)}  ${ref.losses[i].toFixed(7)}   ${loop.losses[i].toFixed(7)}  ${d(loop.losses[i])}   ${peerRun.losses[i].toFixed(7)}  ${d(peerRun.losses[i])}   ‖g‖ ${ref.norms[i].toFixed(4)}`);
    }
    const maxDLoss = Math.max(...peerRun.losses.map((l, i) => Math.abs(l - ref.losses[i])));
    const maxDNorm = Math.max(...peerRun.norms.map((n, i) => Math.abs(n - ref.norms[i]) / ref.norms[i]));
    const msgs = STEPS * M;
    const codecFwd = activationMessageBytes('f32', B, T, cfg.dim, true), codecBack = activationMessageBytes('f32', B, T, cfg.dim, false);
    console.log(`WebRTC: max |Δloss| ${maxDLoss.toExponential(3)}, max rel Δ‖g‖ ${maxDNorm.toExponential(3)}; link drops: stage 1 ${JSON.stringify(up.dropped)}, stage 0 ${JSON.stringify(down.dropped)}; runner drops ${JSON.stringify(peerRun.runners.map((r) => r.dropped))}`);
    // on the wire per honest micro-batch: the hand-off, the envelope's header and signature, frame headers
    const wire = (codec: number) => {
      const env = codec + sealEnvelope(keys.a, { kind: 'activations', run: RUN, round: 0, stage: 0 }, new Uint8Array(0)).length;
      return env + FRAME_HEADER_BYTES * Math.ceil(env / (DEFAULT_CHUNK_BYTES - FRAME_HEADER_BYTES));
    };
    const perMicro = { forward: (a.stats.bytesSent - injectedBytes.forward) / msgs, back: (b.stats.bytesSent - injectedBytes.back) / msgs };
    console.log(`bytes on the wire per micro-batch: ${perMicro.forward} forward (hand-off ${codecFwd}), ${perMicro.back} back (hand-off ${codecBack}); injected: ${injectedBytes.forward} + ${injectedBytes.back}`);
    console.log(`${((t1 - t0) / 1000).toFixed(1)} s whole model + loopback pipeline, ${((t2 - t1) / 1000).toFixed(1)} s over WebRTC`);

    expect(injectedAt).toEqual(ATTACKED);
    // every bad message stopped at the link: counted there by reason, never seen by a runner
    expect(up.dropped).toEqual({ sender: ATTACKED.length, signature: ATTACKED.length, round: ATTACKED.length, stage: ATTACKED.length });
    expect(down.dropped).toEqual({ sender: ATTACKED.length });
    for (const r of peerRun.runners) expect(r.dropped).toEqual({});
    expect(up.stats.delivered).toBe(msgs);
    expect(down.stats.delivered).toBe(msgs);
    expect(down.stats.sendFailures + up.stats.sendFailures).toBe(0);
    expect(perMicro).toEqual({ forward: wire(codecFwd), back: wire(codecBack) });

    // the same computation as in process: bit for bit equal to the loopback pipeline …
    expect(peerRun.losses).toEqual(loop.losses);
    expect(peerRun.norms).toEqual(loop.norms);
    // … and so equal to the whole model within f32 rounding (bounds of pipeline.test.ts)
    expect(Math.abs(peerRun.losses[0] - ref.losses[0])).toBeLessThan(1e-6);
    expect(maxDLoss).toBeLessThan(1e-5);
    expect(maxDNorm).toBeLessThan(1e-4);
    for (const [name, p] of ref.params) expectClose(`params after ${STEPS} steps ${name} (WebRTC f32)`, peerRun.params.get(name)!, p, 1e-5);
    expect(peerRun.losses[STEPS - 1]).toBeLessThan(peerRun.losses[0]);
    expect(a.closeReason !== null && b.closeReason !== null).toBe(true);
  }, 600_000);
});
