// The model's identity on the wire: a 32-bit hash of its config. Updates carry it (so a peer
// training another model is refused), replicas and the validator check weights against it.
// Environment-free.
import { DEFAULT_INIT_STD, type ModelConfig } from './config.ts';

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/**
 * A stable 32-bit hash of a model config: FNV-1a over the UTF-8 of a canonical JSON array of
 * its fields in a fixed order (initStd filled with its default), so equal configs hash equal
 * on every engine, whatever their key order or extra fields.
 */
export function configHash(cfg: ModelConfig): number {
  const canonical = JSON.stringify([
    ['vocabSize', cfg.vocabSize], ['dim', cfg.dim], ['layers', cfg.layers], ['heads', cfg.heads],
    ['kvHeads', cfg.kvHeads], ['mlpHidden', cfg.mlpHidden], ['seqLen', cfg.seqLen],
    ['ropeBase', cfg.ropeBase], ['normEps', cfg.normEps], ['tiedEmbeddings', cfg.tiedEmbeddings],
    ['initStd', cfg.initStd ?? DEFAULT_INIT_STD],
  ]);
  let h = FNV_OFFSET_BASIS;
  for (const b of utf8.encode(canonical)) h = Math.imul(h ^ b, FNV_PRIME);
  return h >>> 0;
}
