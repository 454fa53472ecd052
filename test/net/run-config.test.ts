import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { preset } from '../../src/model/config.ts';
import { DEFAULT_RUN, RunConfigError, parseRunConfig, runModel, stageBounds, stageMemoryBytes } from '../../src/protocol/run-config.ts';
import { readRunFile } from '../../src/cli/coordinator-command.ts';
import { DEFAULT_SPARSELOCO } from '../../src/sparseloco/outer.ts';

function fieldOf(input: unknown): string | 'ok' {
  try {
    parseRunConfig(input);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(RunConfigError);
    const err = e as RunConfigError;
    expect(err.name).toBe('RunConfigError');
    expect(err.message).toContain(`'${err.field}'`);
    return err.field;
  }
}

describe('parseRunConfig', () => {
  it('fills every default from an empty object', () => {
    const c = parseRunConfig({});
    expect(c).toEqual(DEFAULT_RUN);
    expect(c).toMatchObject({ run: 'local', model: 'tiny', stages: 1, innerSteps: 30, minMembers: 1, tokenizer: 'bytes', maxMessageBytes: 64 * 1024 * 1024 });
    expect(c.sparseloco).toEqual(DEFAULT_SPARSELOCO);
  });

  it('gives each config its own nested objects, never the defaults themselves', () => {
    const a = parseRunConfig({});
    const b = parseRunConfig({});
    expect(a.sparseloco).not.toBe(DEFAULT_RUN.sparseloco);
    expect(a.sparseloco).not.toBe(b.sparseloco);
    a.iceServers.push({ urls: 'stun:example.org' });
    a.sparseloco.k = 7;
    expect(DEFAULT_RUN.iceServers).toEqual([]);
    expect(parseRunConfig({})).toEqual(DEFAULT_RUN);
  });

  it('keeps given values, merges a partial sparseloco over its defaults, and round-trips through JSON', () => {
    const c = parseRunConfig({
      run: 'my.run_2-x', model: 'small', tokenizer: 'gpt2', seq: 512, batch: 4, innerSteps: 5, lr: 1e-3, warmup: 0, plannedRounds: 7,
      seed: 2 ** 32 - 1, sparseloco: { k: 32 }, roundSeconds: 0.5, heartbeatSeconds: 1, heartbeatMisses: 2, minMembers: 3, checkpointEvery: 4,
      iceServers: [{ urls: 'stun:a' }, { urls: ['stun:b', 'stun:c'] }], maxMessageBytes: 1024,
    });
    expect(c.sparseloco).toEqual({ ...DEFAULT_SPARSELOCO, k: 32 });
    expect(c).toMatchObject({ run: 'my.run_2-x', model: 'small', seq: 512, seed: 2 ** 32 - 1, roundSeconds: 0.5, maxMessageBytes: 1024 });
    expect(parseRunConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    expect(runModel(c)).toEqual(preset('small'));
  });

  it('splits a pipelined run into stages: evenly by default, or by the named layer ranges', () => {
    const even = parseRunConfig({ stages: 2 });
    expect(stageBounds(even)).toEqual([{ from: 0, to: 1 }, { from: 1, to: 2 }]);
    expect(stageBounds(parseRunConfig({}))).toEqual([{ from: 0, to: 2 }]);
    const named = parseRunConfig({ stages: 2, stageRanges: [{ from: 0, to: 1 }, { from: 1, to: 2 }], microBatches: 2, activations: 'int8' });
    expect(parseRunConfig(JSON.parse(JSON.stringify(named)))).toEqual(named);
    expect(named).toMatchObject({ microBatches: 2, activations: 'int8' });
    // the last stage holds the logits: it needs more memory than the first for the tiny model
    expect(stageMemoryBytes(even, 1)).toBeGreaterThan(stageMemoryBytes(even, 0));
    expect(() => stageMemoryBytes(even, 2)).toThrow(/stage 2/);
  });

  const bad: [string, unknown][] = [
    ['(root)', null], ['(root)', []], ['(root)', 'run'], ['(root)', 5],
    ['foo', { foo: 1 }], ['Run', { Run: 'x' }], ['__proto__', JSON.parse('{"__proto__": {"run": "x"}}')],
    ['run', { run: '' }], ['run', { run: '-lead' }], ['run', { run: 'a'.repeat(65) }], ['run', { run: 'a b' }], ['run', { run: 'ü' }], ['run', { run: 5 }],
    ['model', { model: 'huge' }], ['model', { model: 5 }], ['model', { model: 'toString' }], ['model', { model: 'constructor' }], ['model', { model: '__proto__' }],
    ['stages', { stages: 3 }], ['stages', { stages: 0 }], ['stages', { model: 'small', tokenizer: 'gpt2', stages: 2 }],
    ['stageRanges', { stages: 2, stageRanges: {} }], ['stageRanges', { stages: 2, stageRanges: [{ from: 0, to: 2 }] }],
    ['stageRanges[0]', { stages: 2, stageRanges: [{ from: 1, to: 2 }, { from: 0, to: 1 }] }], ['stageRanges[1]', { stages: 2, stageRanges: [{ from: 0, to: 1 }, { from: 1, to: 3 }] }],
    ['stageRanges[0]', { stages: 2, stageRanges: [{ from: 0, to: 0 }, { from: 0, to: 2 }] }], ['stageRanges[0]', { stages: 2, stageRanges: [null, { from: 0, to: 2 }] }],
    ['microBatches', { microBatches: 0 }], ['microBatches', { microBatches: 1.5 }], ['activations', { activations: 'bf16' }],
    ['innerSteps', { innerSteps: 0 }], ['innerSteps', { innerSteps: 100_001 }], ['innerSteps', { innerSteps: '30' }], ['innerSteps', { innerSteps: 1.5 }],
    ['batch', { batch: 0 }], ['batch', { batch: 4097 }],
    ['seq', { seq: 0 }], ['seq', { seq: 65 }], ['seq', { model: 'small', tokenizer: 'gpt2', seq: 513 }],
    ['lr', { lr: 0 }], ['lr', { lr: -1e-3 }], ['lr', { lr: 2 }], ['lr', { lr: NaN }], ['lr', { lr: Infinity }], ['lr', { lr: '1e-3' }],
    ['warmup', { warmup: -1 }], ['warmup', { warmup: 0.5 }],
    ['plannedRounds', { plannedRounds: 0 }],
    ['seed', { seed: -1 }], ['seed', { seed: 2 ** 32 }], ['seed', { seed: 1.5 }],
    ['sparseloco', { sparseloco: 'fast' }], ['sparseloco', { sparseloco: [1] }], ['sparseloco', { sparseloco: null }], ['sparseloco', { sparseloco: 3 }],
    ['sparseloco.gamma', { sparseloco: { gamma: 1 } }],
    ['sparseloco.alpha', { sparseloco: { alpha: 0 } }], ['sparseloco.alpha', { sparseloco: { alpha: 11 } }],
    ['sparseloco.beta', { sparseloco: { beta: 1 } }], ['sparseloco.beta', { sparseloco: { beta: -0.1 } }], ['sparseloco.beta', { sparseloco: { beta: '0.9' } }],
    ['sparseloco.k', { sparseloco: { k: 0 } }], ['sparseloco.k', { sparseloco: { k: 4097 } }], ['sparseloco.k', { sparseloco: { k: 1.5 } }],
    ['roundSeconds', { roundSeconds: 0 }], ['roundSeconds', { roundSeconds: 86_401 }],
    ['heartbeatSeconds', { heartbeatSeconds: 0 }], ['heartbeatSeconds', { heartbeatSeconds: 3601 }],
    ['heartbeatMisses', { heartbeatMisses: 0 }], ['heartbeatMisses', { heartbeatMisses: 1.5 }], ['heartbeatMisses', { heartbeatMisses: 1001 }],
    ['minMembers', { minMembers: 0 }], ['minMembers', { minMembers: 10_001 }],
    ['checkpointEvery', { checkpointEvery: 0 }],
    ['tokenizer', { tokenizer: 'bpe' }], ['tokenizer', { tokenizer: 'gpt2' }], ['tokenizer', { tokenizer: null }],
    ['iceServers', { iceServers: 'stun:x' }], ['iceServers', { iceServers: [{}] }], ['iceServers', { iceServers: [null] }], ['iceServers', { iceServers: [{ urls: 5 }] }],
    ['iceServers', { iceServers: [{ urls: ['stun:a', 5] }] }], ['iceServers', { iceServers: [{ urls: 'stun:a', username: 5 }] }], ['iceServers', { iceServers: [{ urls: 'turn:a', credential: {} }] }],
    ['iceServers', { iceServers: [{ urls: 'turn:a', username: 'u', credential: 'a static password' }] }],
    ['maxMessageBytes', { maxMessageBytes: 1023 }], ['maxMessageBytes', { maxMessageBytes: 2 ** 31 + 1 }],
    ['name', { name: '' }], ['name', { name: 'x'.repeat(81) }], ['name', { name: 'a\nb' }], ['name', { name: 3 }],
    ['description', { description: 'x'.repeat(1001) }], ['description', { description: 'tab\there' }],
    ['owner', { owner: null }], ['homepage', { homepage: 'javascript:alert(1)' }], ['homepage', { homepage: 'example.org' }],
    ['plannedTokens', { plannedTokens: -1 }], ['plannedTokens', { plannedTokens: 1.5 }],
    ['rewardUnit', { rewardUnit: '' }], ['rewardUnit', { rewardUnit: 'x'.repeat(25) }], ['rewardNote', { rewardNote: 'x'.repeat(301) }],
  ];
  for (const [field, input] of bad) {
    it(`rejects ${JSON.stringify(input) ?? String(input)} naming '${field}'`, () => {
      expect(fieldOf(input)).toBe(field);
    });
  }

  it('accepts the edges of every range', () => {
    for (const input of [
      { innerSteps: 1 }, { innerSteps: 100_000 }, { batch: 4096 }, { seq: 64 }, { lr: 1 }, { seed: 0 }, { sparseloco: { beta: 0 } }, { sparseloco: { k: 4096 } },
      { sparseloco: { alpha: 10 } }, { roundSeconds: 86_400 }, { heartbeatMisses: 1000 }, { minMembers: 10_000 }, { maxMessageBytes: 2 ** 31 }, { sparseloco: {} },
      { description: '' }, { owner: '' }, { homepage: '' }, { homepage: 'https://example.org/run' }, { plannedTokens: 0 }, { rewardNote: '' },
    ]) {
      expect(fieldOf(input), JSON.stringify(input)).toBe('ok');
    }
  });
});

describe('readRunFile', () => {
  it('reads a run file, applies overrides, and names the file when it cannot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-run-'));
    try {
      const file = join(dir, 'run.json');
      writeFileSync(file, JSON.stringify({ run: 'from-file', innerSteps: 3 }));
      expect(readRunFile(file)).toMatchObject({ run: 'from-file', innerSteps: 3, model: 'tiny' });
      expect(readRunFile(file, { innerSteps: 9 })).toMatchObject({ run: 'from-file', innerSteps: 9 });
      expect(readRunFile(undefined)).toEqual(DEFAULT_RUN);
      writeFileSync(file, '{ nope');
      expect(() => readRunFile(file)).toThrow(RunConfigError);
      expect(() => readRunFile(file)).toThrow(/not valid JSON/);
      expect(() => readRunFile(join(dir, 'missing.json'))).toThrow(/cannot be read/);
      writeFileSync(file, JSON.stringify({ roundSecs: 3 }));
      expect(() => readRunFile(file)).toThrow(/'roundSecs' is not a run setting/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
