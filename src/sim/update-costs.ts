// What one simulated update costs this process, measured at the start of a run: making it
// (a template rewritten, update-templates.ts, and signed) and the coordinator's intake of it
// (over the socket: the envelope's signature and payload hash, the update's frame check, a
// second hash pass for its piece root and the fsynced disk copy — round-clock.ts offer; with
// the modelled bucket: the signed header alone, one signature verification —
// bucket-updates.ts). Both run on this one thread for every peer, so the round deadline
// allows for them (simulation.ts simulationConfig); the report prints them.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake2AsU8a } from '@polkadot/util-crypto';
import { MAX_HEADER_BYTES, SIGNATURE_BYTES, openEnvelope, openEnvelopeHeader, sealEnvelope } from '../net/envelope.ts';
import { decodeUpdate } from '../sparseloco/wire.ts';
import { parameterLayout, preset } from '../model/config.ts';
import { configHash } from '../model/identity.ts';
import type { RunConfig } from '../protocol/run-config.ts';
import type { Hotkey } from '../wallet/keys.ts';
import { SimBucket } from './sim-bucket.ts';
import type { UpdateTemplates } from './update-templates.ts';

export interface UpdateCosts {
  updateBytes: number;
  envelopeBytes: number;
  /** One update made and signed (and, with a bucket, its record's SHA-256 taken), ms. */
  makeMs: number;
  /** The coordinator's work on one, ms (see above). */
  intakeMs: number;
}

/** Times of the second of two tries (the first warms the code up). */
export function measureUpdateCosts(config: RunConfig, templates: UpdateTemplates, key: Hotkey, bucket: boolean): UpdateCosts {
  const cfg = preset(config.model);
  const layout = parameterLayout(cfg);
  const model = new SimBucket({ templates });
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sim-cost-'));
  let costs: UpdateCosts | null = null;
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const t0 = performance.now();
      const recipe = templates.recipe(attempt, 0);
      const payload = templates.update(attempt, 0);
      const envelope = sealEnvelope(key, { kind: 'update', run: config.run, round: attempt, stage: 0 }, payload);
      const record = bucket ? model.recordOf(envelope, recipe) : null;
      const t1 = performance.now();
      if (record) {
        const head = envelope.subarray(0, Math.min(MAX_HEADER_BYTES, envelope.length - SIGNATURE_BYTES));
        openEnvelopeHeader(head, envelope.subarray(envelope.length - SIGNATURE_BYTES), envelope.length, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
        costs = { updateBytes: payload.length, envelopeBytes: envelope.length, makeMs: t1 - t0, intakeMs: performance.now() - t1 };
        continue;
      }
      const read = envelope;
      const opened = openEnvelope(read, { run: config.run, maxPayloadBytes: config.maxMessageBytes });
      decodeUpdate(opened.payload, { configHash: configHash(cfg), round: attempt, layout, maxBytes: config.maxMessageBytes, structureOnly: true });
      blake2AsU8a(read, 256);
      const fd = openSync(join(dir, `${attempt}.bin`), 'w');
      writeSync(fd, read);
      fsyncSync(fd);
      closeSync(fd);
      costs = { updateBytes: payload.length, envelopeBytes: envelope.length, makeMs: t1 - t0, intakeMs: performance.now() - t1 };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return costs!;
}
