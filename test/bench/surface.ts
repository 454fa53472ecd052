// `npm run bench -- surface [--envelope-mib 200]`: what a hostile peer's cheap bytes cost a
// receiver (issue 19, "The surface"), through the public APIs only so the same script
// measures the code before and after a fix:
//   - framing: 100k one-byte frames of one message, ascending vs descending with gaps
//     (time), an honest 64 MiB message (time), and the memory pinned by 918 KB of 14-byte frames that open 4 messages which
//     each announce 64 MiB (the largest a link accepts);
//   - envelope: openEnvelope of a 200 MiB envelope whose signature is wrong.
import { FRAME_HEADER_BYTES, FRAME_VERSION, Reassembler, frameMessage } from '../../src/net/framing.ts';
import { openEnvelope, sealEnvelope, EnvelopeError } from '../../src/net/envelope.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { printTable, writeResults, type BenchRow } from './table.ts';

const MiB = 1 << 20;
const FRAMES = 100_000;
const LINK_MAX_MESSAGE = 64 * MiB;
const IN_FLIGHT = 4;
const PIN_FRAME_BYTES = 918_000;

function frame(id: number, total: number, offset: number, dataBytes: number): Uint8Array {
  const f = new Uint8Array(FRAME_HEADER_BYTES + dataBytes);
  const dv = new DataView(f.buffer);
  f[0] = FRAME_VERSION;
  dv.setUint32(1, id, true);
  dv.setUint32(5, total, true);
  dv.setUint32(9, offset, true);
  return f;
}

/**
 * One message of 1-byte frames in the order given: contiguous ascending (what a sender
 * sends), or every other byte (ranges that never merge) ascending or descending — the
 * order a hostile sender picks to make each frame a new range at the front.
 */
function reassembleOneByteFrames(order: 'ascending' | 'ascending, gaps' | 'descending, gaps'): BenchRow {
  const gaps = order !== 'ascending';
  const total = gaps ? 2 * FRAMES : FRAMES;
  const frames = Array.from({ length: FRAMES }, (_, i) => {
    const slot = order === 'descending, gaps' ? FRAMES - 1 - i : i;
    return frame(1, total, gaps ? 2 * slot : slot, 1);
  });
  const r = new Reassembler({ maxMessageBytes: LINK_MAX_MESSAGE, timeoutMs: 120_000, maxInFlight: IN_FLIGHT });
  const t0 = performance.now();
  let completed = 0;
  for (const f of frames) if (r.push(f)) completed++;
  const ms = performance.now() - t0;
  return { case: `${FRAMES / 1000}k 1-byte frames, ${order}`, ms, completed, framesDropped: r.stats.framesDropped, inFlight: r.inFlight };
}

/** An honest large message: 64 MiB in default 16 KiB frames, in order (best of 3). */
function reassembleLargeMessage(): BenchRow {
  const frames = frameMessage(1, new Uint8Array(LINK_MAX_MESSAGE));
  let best = Infinity;
  let completed = 0;
  for (let i = 0; i < 3; i++) {
    const r = new Reassembler({ maxMessageBytes: LINK_MAX_MESSAGE, timeoutMs: 120_000, maxInFlight: IN_FLIGHT });
    const t0 = performance.now();
    for (const f of frames) if (r.push(f)) completed++;
    best = Math.min(best, performance.now() - t0);
  }
  return { case: '64 MiB in 16 KiB frames, in order (best of 3)', ms: best, completed: completed / 3, framesDropped: 0, inFlight: 0 };
}

function pinnedBy14ByteFrames(): BenchRow {
  const perFrame = FRAME_HEADER_BYTES + 1;
  const count = Math.floor(PIN_FRAME_BYTES / perFrame);
  const r = new Reassembler({ maxMessageBytes: LINK_MAX_MESSAGE, timeoutMs: 120_000, maxInFlight: IN_FLIGHT });
  const offsets = new Array<number>(IN_FLIGHT).fill(0);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < count; i++) {
    const m = i % IN_FLIGHT;
    r.push(frame(m + 1, LINK_MAX_MESSAGE, offsets[m]++, 1));
  }
  const pinned = process.memoryUsage().arrayBuffers - before;
  const row = { case: `${(count * perFrame / 1000).toFixed(0)} KB of 14-byte frames, ${IN_FLIGHT} messages of 64 MiB`, pinnedMiB: pinned / MiB, inFlight: r.inFlight };
  r.clear();
  return row;
}

async function badSignatureEnvelope(payloadMiB: number): Promise<BenchRow> {
  await cryptoReady();
  const key = Hotkey.fromMnemonic('bottom drive obey lake curtain smoke basket hold race lonely fit walk', '//Mallory');
  const env = sealEnvelope(key, { kind: 'weights', run: 'bench', round: 1, stage: 0 }, new Uint8Array(payloadMiB * MiB));
  env[env.length - 1] ^= 0xff; // the signature no longer verifies
  const times: number[] = [];
  let reason = '';
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    try {
      openEnvelope(env, { run: 'bench', maxPayloadBytes: payloadMiB * MiB });
      reason = 'accepted';
    } catch (e) {
      if (!(e instanceof EnvelopeError)) throw e;
      reason = e.reason;
    }
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { case: `${payloadMiB} MiB envelope, bad signature`, ms: times[1], refusedAs: reason };
}

export async function runSurfaceBench(argv: string[]): Promise<number> {
  const at = argv.indexOf('--envelope-mib');
  const envelopeMiB = at >= 0 ? Number(argv[at + 1]) : 200;
  if (!(Number.isInteger(envelopeMiB) && envelopeMiB > 0)) {
    console.error('--envelope-mib must be a whole number of MiB above 0');
    return 2;
  }
  // Memory first: the timing runs leave garbage whose collection would skew its measure.
  const pinned = [pinnedBy14ByteFrames()];
  const framing = [reassembleOneByteFrames('ascending'), reassembleOneByteFrames('ascending, gaps'), reassembleOneByteFrames('descending, gaps'), reassembleLargeMessage()];
  const envelope = [await badSignatureEnvelope(envelopeMiB)];
  printTable('framing: reassembly time', framing);
  printTable('framing: memory pinned by tiny frames announcing large messages', pinned);
  printTable('envelope: cost of a bad signature', envelope);
  console.log(`\nwrote ${writeResults('surface', { framing, pinned, envelope })}`);
  return 0;
}
