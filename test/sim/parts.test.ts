// The simulation's pure parts: the link model on given times (a fake clock: nothing sleeps),
// the update generator (valid, the preset's size, peers' updates unlike each other), the
// fingerprint chain and the simulation validator engine (modelled time on a fake sleep).
import { describe, expect, it } from 'vitest';
import { LinkModel, transferMs } from '../../src/sim/link-model.ts';
import { UpdateGenerator } from '../../src/sim/update-generator.ts';
import { decodeSimWeights, encodeSimWeights, genesisFingerprint, nextFingerprint, payloadHash } from '../../src/sim/fingerprint.ts';
import { NEUTRAL_TRIAL, SimValidatorEngine } from '../../src/sim/sim-engine.ts';
import { parseRunConfig } from '../../src/protocol/run-config.ts';
import { decodeUpdate } from '../../src/sparseloco/wire.ts';
import { parameterLayout, preset } from '../../src/model/config.ts';
import { configHash } from '../../src/model/identity.ts';
import { indexOverlap, COPY_OVERLAP } from '../../src/coordinator/scoring.ts';

const PEER = { upMbps: 20, downMbps: 100, rttMs: 80, loss: 0 };

describe('LinkModel', () => {
  it('takes one round trip plus the bytes at the slower side, and slows by the loss', () => {
    const links = new LinkModel({ unlinkable: 0, seed: 1 });
    links.addNode(0, PEER);
    links.addNode(1, PEER);
    // 2.5 MB at 20 Mbit/s (0's uplink, slower than 1's 100 down) = 1 s, plus 80 ms.
    expect(links.transfer(0, 1, 2_500_000, 0)).toEqual({ start: 0, done: 1080 });
    expect(transferMs(2_500_000, 20, 80, 0.5)).toBe(2080);
  });

  it("queues transfers' bytes on the sender's uplink and the receiver's downlink, first come first served; the round trip holds neither", () => {
    const links = new LinkModel({ unlinkable: 0, seed: 1 });
    for (let i = 0; i < 3; i++) links.addNode(i, PEER);
    const a = links.transfer(0, 1, 2_500_000, 0);
    const b = links.transfer(0, 2, 2_500_000, 100); // 0's uplink busy until a's bytes are out (1 s)
    expect(b).toEqual({ start: 1000, done: 2080 });
    expect(links.upFreeAt(0)).toBe(2000);
    const c = links.transfer(2, 1, 250_000, 0); // 1's downlink busy until a's bytes are in
    expect(c.start).toBe(a.done - PEER.rttMs);
    links.reset(0);
    expect(links.upFreeAt(0)).toBe(0);
  });

  it("books a server's shared link only for the bytes at its own rate: N slow uploads run side by side", () => {
    const links = new LinkModel({ unlinkable: 0, seed: 1 });
    links.addNode(-1, { upMbps: 10_000, downMbps: 10_000, rttMs: 1, loss: 0, shared: true });
    for (let i = 0; i < 3; i++) links.addNode(i, PEER);
    // 2.5 MB at 20 Mbit/s = 1 s each; the server's 10 Gbit/s downlink is held 2 ms per upload.
    expect(links.transfer(0, -1, 2_500_000, 0)).toEqual({ start: 0, done: 1080 });
    expect(links.transfer(1, -1, 2_500_000, 0)).toEqual({ start: 2, done: 1082 });
    expect(links.transfer(2, -1, 2_500_000, 0)).toEqual({ start: 4, done: 1084 });
    expect(links.upFreeAt(0)).toBe(1000); // the peer's own uplink is held for its whole upload, as before
  });

  it('refuses the given fraction of pairs, the same pairs every time, either way round', () => {
    const links = new LinkModel({ unlinkable: 0.3, seed: 7 });
    let refused = 0;
    let pairs = 0;
    for (let a = 0; a < 60; a++) {
      for (let b = a + 1; b < 60; b++) {
        pairs++;
        if (!links.canLink(a, b)) refused++;
        expect(links.canLink(a, b)).toBe(links.canLink(b, a));
      }
    }
    expect(refused / pairs).toBeGreaterThan(0.25);
    expect(refused / pairs).toBeLessThan(0.35);
    expect(new LinkModel({ unlinkable: 0, seed: 7 }).canLink(3, 4)).toBe(true);
    expect(new LinkModel({ unlinkable: 1, seed: 7 }).canLink(3, 4)).toBe(false);
    expect(() => links.addNode(9, { ...PEER, loss: 1 })).toThrow(/bad link spec/);
  });
});

describe('UpdateGenerator', () => {
  const config = parseRunConfig({ model: 'tiny' });
  const cfg = preset('tiny');
  const gen = new UpdateGenerator(config);

  it('makes valid updates of the run, the same for the same peer and round, unlike between peers', () => {
    const a = gen.update(3, 1);
    expect(gen.update(3, 1)).toEqual(a);
    const layout = parameterLayout(cfg);
    const decoded = [1, 2, 3].map((seed) => decodeUpdate(gen.update(3, seed), { configHash: configHash(cfg), round: 3, layout }));
    expect(decoded[0].tensors.map((t) => t.name)).toEqual(layout.map((p) => p.name));
    // Index overlap between peers' updates: chance level, under the copy check's threshold.
    const sets = decoded.map((d) => d.tensors.map((t) => Uint32Array.from(t.indices).sort()));
    console.log(`tiny: overlap between two peers' updates ${indexOverlap(sets[0], sets[1]).toFixed(3)} (copy threshold ${COPY_OVERLAP})`);
    expect(indexOverlap(sets[0], sets[1])).toBeLessThan(COPY_OVERLAP);
    expect(indexOverlap(sets[1], sets[2])).toBeLessThan(COPY_OVERLAP);
    expect(indexOverlap(sets[0], sets[0])).toBe(1);
    expect(() => decodeUpdate(a, { configHash: configHash(cfg), round: 4, layout })).toThrow(/round/);
  });
});

describe('fingerprints and the simulation validator engine', () => {
  const config = parseRunConfig({ model: 'tiny', run: 'sim' });

  it('chains the committed hashes in order: the same commits give the same print, another order another', () => {
    const g = genesisFingerprint(config);
    expect(nextFingerprint(g, 0, ['aa', 'bb'])).toBe(nextFingerprint(g, 0, ['aa', 'bb']));
    expect(nextFingerprint(g, 0, ['aa', 'bb'])).not.toBe(nextFingerprint(g, 0, ['bb', 'aa']));
    expect(nextFingerprint(g, 0, [])).not.toBe(nextFingerprint(g, 1, []));
    const w = encodeSimWeights(5, g);
    expect(decodeSimWeights(w, 'x')).toEqual({ round: 5, fingerprint: g });
    expect(() => decodeSimWeights(w.subarray(1), 'the file')).toThrow(/the file is not a simulated checkpoint/);
  });

  it('waits the modelled time, scores the evaluated updates alike, and applies the commit as the peers do', async () => {
    const slept: number[] = [];
    let t = 0;
    const sleep = async (ms: number) => {
      slept.push(ms);
      t += ms;
    };
    const engine = new SimValidatorEngine(config, { perUpdateMs: 40, fixedMs: 10 }, sleep, () => t);
    expect(await engine.loadStart(null)).toBe(0);
    const payloads = [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])];
    const closed = { round: 0, members: ['a', 'b', 'c'], included: payloads.map((payload, i) => ({ sender: 'abc'[i], payload, deliveredAt: i })), others: [], missing: [], invalid: {}, reportedHashes: {} };
    const e = await engine.evaluate(closed, 2);
    expect(slept).toEqual([5, 40, 40, 5]);
    expect(e.timing).toEqual({ fixedMs: 10, perUpdateMs: 40, evaluated: 2, outOfTime: 0 });
    expect(e.trials).toEqual([['a', NEUTRAL_TRIAL], ['b', NEUTRAL_TRIAL]]);
    expect(e.weightsHash).toBe(genesisFingerprint(config));
    expect(engine.round).toBe(1);
    expect(engine.fingerprints.get(1)).toBe(nextFingerprint(genesisFingerprint(config), 0, payloads.map(payloadHash)));
    // Kept to a budget as the real engine is: the first always, the second would end past 60 ms.
    const cut = await engine.evaluate({ ...closed, round: 1 }, 3, 60);
    expect(cut.timing).toEqual({ fixedMs: 10, perUpdateMs: 40, evaluated: 1, outOfTime: 2 });
    expect(cut.trials).toEqual([['a', NEUTRAL_TRIAL]]);
    // A restart: from its own saved weights it holds the same round and print.
    const again = new SimValidatorEngine(config, { perUpdateMs: 0, fixedMs: 0 });
    expect(await again.loadStart({ round: 2, weights: await engine.encodeWeights() })).toBe(2);
    await expect(again.evaluate({ ...closed, round: 0 }, 1)).rejects.toThrow(/holds round 2/);
  });
});
