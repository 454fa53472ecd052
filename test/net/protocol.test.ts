import { describe, expect, it } from 'vitest';
import {
  MAX_CONTROL_BYTES, PROTOCOL_VERSION, joinChallenge, parseClientMessage, parseServerMessage, type ClientMessage, type ServerMessage,
} from '../../src/protocol/messages.ts';
import { DEFAULT_RUN } from '../../src/protocol/run-config.ts';

const ADDR = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const ADDR2 = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const j = (v: unknown) => JSON.stringify(v);
const OFFER = { type: 'offer', sdp: 'v=0\r\n' };

describe('joinChallenge', () => {
  it('binds the protocol version, the run and the nonce', () => {
    expect(new TextDecoder().decode(joinChallenge('run-1', 'abcd'))).toBe(`tessera-join:${PROTOCOL_VERSION}:run-1:abcd`);
    expect(joinChallenge('run-1', 'abcd')).not.toEqual(joinChallenge('run-2', 'abcd'));
    expect(joinChallenge('run-1', 'abcd')).not.toEqual(joinChallenge('run-1', 'abce'));
  });
});

describe('parseClientMessage', () => {
  const valid: ClientMessage[] = [
    { type: 'hello', version: PROTOCOL_VERSION },
    { type: 'join', address: ADDR, signature: 'ab'.repeat(64) },
    { type: 'join', address: ADDR, signature: 'ab'.repeat(64), capacity: { memoryBytes: 2 ** 33, tokensPerSecond: 1500 } },
    { type: 'synced', round: 0, weightsHash: 'cd'.repeat(32), stage: 0 },
    { type: 'synced', round: 2 ** 32 - 1, weightsHash: 'x', stage: 3 },
    { type: 'heartbeat' },
    { type: 'signal', to: ADDR, data: { type: 'offer', sdp: 'v=0\r\n…' } },
    { type: 'signal', to: ADDR, data: { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 10.0.0.1 9 typ host', sdpMLineIndex: 0, sdpMid: '0' } } },
    { type: 'report', round: 3, loss: 2.25, bytesUp: 1e6, bytesDown: 0, rejected: 1, peers: 4 },
  ];
  for (const m of valid) {
    it(`round-trips ${j(m).slice(0, 60)}`, () => {
      expect(parseClientMessage(j(m))).toEqual(m);
    });
  }

  it('keeps only the fields it knows (a client cannot smuggle `from` into a signal)', () => {
    expect(parseClientMessage(j({ type: 'signal', to: ADDR, from: ADDR2, data: OFFER }))).toEqual({ type: 'signal', to: ADDR, data: OFFER });
    expect(parseClientMessage(j({ type: 'heartbeat', extra: 'x'.repeat(100) }))).toEqual({ type: 'heartbeat' });
  });

  const malformed: [string, string][] = [
    ['not JSON', 'hello'], ['truncated JSON', '{"type":"heartbeat"'], ['empty', ''], ['null', 'null'], ['an array', j([{ type: 'heartbeat' }])],
    ['a string', j('heartbeat')], ['a number', '5'], ['no type', j({ version: 1 })], ['an unknown type', j({ type: 'welcome' })], ['a type of another case', j({ type: 'Heartbeat' })],
    ['hello without version', j({ type: 'hello' })], ['hello with a string version', j({ type: 'hello', version: '1' })],
    ['join without signature', j({ type: 'join', address: ADDR })], ['join with a numeric address', j({ type: 'join', address: 5, signature: 'ab' })],
    ['join with an empty address', j({ type: 'join', address: '', signature: 'ab' })], ['join with a 65-character address', j({ type: 'join', address: 'a'.repeat(65), signature: 'ab' })],
    ['join with a 201-character signature', j({ type: 'join', address: ADDR, signature: 'a'.repeat(201) })],
    ['synced with a negative round', j({ type: 'synced', round: -1, weightsHash: 'ab' })], ['synced with a fractional round', j({ type: 'synced', round: 1.5, weightsHash: 'ab' })],
    ['synced with round 2^32', j({ type: 'synced', round: 2 ** 32, weightsHash: 'ab' })], ['synced with a string round', j({ type: 'synced', round: '1', weightsHash: 'ab' })],
    ['synced without hash', j({ type: 'synced', round: 1 })], ['synced with a 129-character hash', j({ type: 'synced', round: 1, weightsHash: 'a'.repeat(129) })],
    ['signal without data', j({ type: 'signal', to: ADDR })], ['signal without to', j({ type: 'signal', data: OFFER })], ['signal to a list', j({ type: 'signal', to: [ADDR], data: OFFER })],
    ['signal with data that is not WebRTC signaling', j({ type: 'signal', to: ADDR, data: 1 })], ['signal with null data', j({ type: 'signal', to: ADDR, data: null })],
    ['signal with data nested 6,000 deep (12 KB)', `{"type":"signal","to":"${ADDR}","data":${'['.repeat(6000)}${']'.repeat(6000)}}`],
    ['report with a string loss', j({ type: 'report', round: 1, loss: '2', bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 })],
    ['synced with a stage of -1', j({ type: 'synced', round: 1, weightsHash: 'ab', stage: -1 })],
    ['join with a negative memory', j({ type: 'join', address: ADDR, signature: 'ab', capacity: { memoryBytes: -1, tokensPerSecond: 1 } })],
    ['join with capacity missing its speed', j({ type: 'join', address: ADDR, signature: 'ab', capacity: { memoryBytes: 1 } })],
    ['report missing peers', j({ type: 'report', round: 1, loss: 2, bytesUp: 0, bytesDown: 0, rejected: 0 })],
    ['report with a null field', j({ type: 'report', round: 1, loss: null, bytesUp: 0, bytesDown: 0, rejected: 0, peers: 0 })],
  ];
  for (const [name, text] of malformed) {
    it(`returns null for ${name}`, () => {
      expect(parseClientMessage(text)).toBeNull();
    });
  }

  it('returns null for text over MAX_CONTROL_BYTES, even when it is valid JSON', () => {
    const at = j({ type: 'heartbeat' }).padEnd(MAX_CONTROL_BYTES, ' ');
    expect(at.length).toBe(MAX_CONTROL_BYTES);
    expect(parseClientMessage(at)).toEqual({ type: 'heartbeat' });
    expect(parseClientMessage(at + ' ')).toBeNull();
    expect(parseClientMessage(j({ type: 'signal', to: ADDR, data: 'x'.repeat(MAX_CONTROL_BYTES) }))).toBeNull();
  });
});

describe('parseServerMessage', () => {
  const state = { round: 4, phase: 'training' as const, memberCount: 2, checkpointRound: -1, oldestCommit: 0 };
  const standing = { address: ADDR, ema: 0.01, assignedEma: 0.6, rank: 1, of: 3, share: 0.4, epoch: 0, epochReward: 12.5, totalReward: 12.5, lastRound: 3, pendingRounds: 0 };
  const valid: ServerMessage[] = [
    { type: 'challenge', run: 'run-1', nonce: 'ab'.repeat(16), version: PROTOCOL_VERSION },
    { type: 'welcome', address: ADDR, config: { ...DEFAULT_RUN }, state, stage: 0 },
    { type: 'welcome', address: ADDR, config: { ...DEFAULT_RUN }, state: { ...state, phase: 'waiting', memberCount: 0 }, stage: 1 },
    { type: 'stage', stage: 1, reason: 'stage 1 has no peer' },
    { type: 'neighbours', neighbours: [] },
    { type: 'neighbours', neighbours: [ADDR, ADDR2] },
    { type: 'swarm', peers: 0, ready: 0, need: 1 },
    { type: 'swarm', peers: 1000, ready: 997, need: 20 },
    { type: 'signal', from: ADDR, data: { type: 'renegotiate', renegotiate: true } },
    { type: 'round', round: 4, memberCount: 1000, members: [], stages: [], seed: 1, deadline: 1_700_000_000_000, tokensTrained: 0 },
    { type: 'round', round: 4, memberCount: 2, members: [ADDR, ADDR2], stages: [1, 0], seed: 1, deadline: 1_700_000_000_000, tokensTrained: 2 ** 40 },
    { type: 'commit', round: 4, included: [{ sender: ADDR, hash: 'ab'.repeat(32), stage: 0 }], delivered: 900, checkpointBy: ADDR },
    { type: 'commit', round: 4, included: [], delivered: 0, checkpointBy: null },
    { type: 'commit', round: 4, included: [{ sender: ADDR, hash: 'ab'.repeat(32), stage: 0, pieces: 'cd'.repeat(32) }], delivered: 3, checkpointBy: null },
    { type: 'rejected', what: 'envelope-signature', reason: 'bad signature' },
    { type: 'accepted', round: 3, hash: 'ab'.repeat(32) },
    { type: 'scores', round: 3, standing },
    { type: 'scores', round: 3, standing: { ...standing, pendingRounds: 151 } },
    { type: 'scores', round: 3, standing: { ...standing, barred: true } },
    { type: 'scores', round: 3, standing: { ...standing, pendingReward: 40, forfeitedReward: 2.5 } },
    { type: 'error', message: 'protocol version 2 is not supported' },
  ];
  for (const m of valid) {
    it(`round-trips ${j(m).slice(0, 60)}`, () => {
      expect(parseServerMessage(j(m))).toEqual(m);
    });
  }

  const malformed: [string, unknown][] = [
    ['a client message', { type: 'hello', version: 1 }], ['no type', { run: 'x' }],
    ['challenge without nonce', { type: 'challenge', run: 'r', version: 1 }], ['challenge with a 65-character run', { type: 'challenge', run: 'r'.repeat(65), nonce: 'n', version: 1 }],
    ['welcome without config', { type: 'welcome', address: ADDR, state }], ['welcome with a list as config', { type: 'welcome', address: ADDR, config: [], state }],
    ['welcome with an unknown phase', { type: 'welcome', address: ADDR, config: {}, state: { ...state, phase: 'done' } }],
    ['welcome with a negative round', { type: 'welcome', address: ADDR, config: {}, state: { ...state, round: -1 } }],
    ['welcome with a member list instead of a count (protocol 1)', { type: 'welcome', address: ADDR, config: {}, state: { ...state, memberCount: undefined, members: [ADDR] }, stage: 0 }],
    ['welcome with a fractional memberCount', { type: 'welcome', address: ADDR, config: {}, state: { ...state, memberCount: 1.5 }, stage: 0 }],
    ['welcome without checkpointRound', { type: 'welcome', address: ADDR, config: {}, state: { ...state, checkpointRound: undefined } }],
    ['the whole peer list (protocol 1)', { type: 'peers', peers: [ADDR] }],
    ['neighbours with a number', { type: 'neighbours', neighbours: [ADDR, 5] }], ['neighbours with an empty address', { type: 'neighbours', neighbours: [''] }], ['neighbours as a string', { type: 'neighbours', neighbours: ADDR }],
    ['257 neighbours', { type: 'neighbours', neighbours: Array(257).fill(ADDR) }],
    ['swarm without need', { type: 'swarm', peers: 3, ready: 1 }], ['swarm with negative peers', { type: 'swarm', peers: -1, ready: 0, need: 1 }], ['swarm with fractional ready', { type: 'swarm', peers: 3, ready: 0.5, need: 1 }],
    ['round without memberCount', { type: 'round', round: 1, members: [], stages: [], seed: 1, deadline: 0, tokensTrained: 0 }],
    ['round with 4097 members', { type: 'round', round: 1, memberCount: 4097, members: Array(4097).fill(ADDR), stages: Array(4097).fill(0), seed: 1, deadline: 0, tokensTrained: 0 }],
    ['commit without delivered', { type: 'commit', round: 1, included: [], checkpointBy: null }], ['commit with negative delivered', { type: 'commit', round: 1, included: [], delivered: -1, checkpointBy: null }],
    ['commit with 4097 entries', { type: 'commit', round: 1, included: Array(4097).fill({ sender: ADDR, hash: 'ab', stage: 0 }), delivered: 4097, checkpointBy: null }],
    ['signal without from', { type: 'signal', data: OFFER }], ['signal without data', { type: 'signal', from: ADDR }], ['signal with data that is not WebRTC signaling', { type: 'signal', from: ADDR, data: { candidate: 'x' } }],
    ['round without deadline', { type: 'round', round: 1, members: [], seed: 1 }], ['round with a fractional round', { type: 'round', round: 0.5, members: [], seed: 1, deadline: 0 }],
    ['commit with an entry missing its hash', { type: 'commit', round: 1, included: [{ sender: ADDR }], checkpointBy: null }],
    ['commit with a non-object entry', { type: 'commit', round: 1, included: [ADDR], checkpointBy: null }],
    ['commit without checkpointBy', { type: 'commit', round: 1, included: [] }], ['commit with a numeric checkpointBy', { type: 'commit', round: 1, included: [], checkpointBy: 3 }],
    ['round whose stages do not match its members', { type: 'round', round: 1, memberCount: 1, members: [ADDR], stages: [], seed: 1, deadline: 0, tokensTrained: 0 }],
    ['round with a negative stage', { type: 'round', round: 1, memberCount: 1, members: [ADDR], stages: [-1], seed: 1, deadline: 0, tokensTrained: 0 }],
    ['round without tokensTrained', { type: 'round', round: 1, memberCount: 1, members: [ADDR], stages: [0], seed: 1, deadline: 0 }],
    ['round with negative tokensTrained', { type: 'round', round: 1, memberCount: 1, members: [ADDR], stages: [0], seed: 1, deadline: 0, tokensTrained: -1 }],
    ['round with fractional tokensTrained', { type: 'round', round: 1, memberCount: 1, members: [ADDR], stages: [0], seed: 1, deadline: 0, tokensTrained: 1.5 }],
    ['welcome without a stage', { type: 'welcome', address: ADDR, config: {}, state }],
    ['stage without a reason', { type: 'stage', stage: 1 }], ['stage 1.5', { type: 'stage', stage: 1.5, reason: 'x' }],
    ['commit with an entry whose piece root is not a string', { type: 'commit', round: 1, included: [{ sender: ADDR, hash: 'ab', stage: 0, pieces: 7 }], delivered: 1, checkpointBy: null }],
    ['commit with an entry missing its stage', { type: 'commit', round: 1, included: [{ sender: ADDR, hash: 'ab' }], checkpointBy: null }],
    ['scores without pendingRounds', { type: 'scores', round: 3, standing: { ...standing, pendingRounds: undefined } }],
    ['scores with negative pendingRounds', { type: 'scores', round: 3, standing: { ...standing, pendingRounds: -1 } }],
    ['scores without share', { type: 'scores', round: 3, standing: { ...standing, share: undefined } }],
    ['scores with a bar that is not a boolean', { type: 'scores', round: 3, standing: { ...standing, barred: 'yes' } }],
    ['scores with a pending reward that is not a number', { type: 'scores', round: 3, standing: { ...standing, pendingReward: '40' } }],
    ['scores with a forfeited reward that is not finite', { type: 'scores', round: 3, standing: { ...standing, forfeitedReward: null } }],
    ['rejected without reason', { type: 'rejected', what: 'x' }], ['error with a 4097-character message', { type: 'error', message: 'e'.repeat(4097) }],
  ];
  for (const [name, m] of malformed) {
    it(`returns null for ${name}`, () => {
      expect(parseServerMessage(j(m))).toBeNull();
    });
  }

  it('returns null for non-JSON and for text over MAX_CONTROL_BYTES', () => {
    for (const t of ['', 'nope', '{', 'null', '[]', '"peers"', 'true']) expect(parseServerMessage(t), t).toBeNull();
    expect(parseServerMessage(j({ type: 'error', message: 'x' }).padEnd(MAX_CONTROL_BYTES + 1, ' '))).toBeNull();
    expect(parseServerMessage(j({ type: 'neighbours', neighbours: Array(20_000).fill(ADDR) }))).toBeNull();
  });
});
