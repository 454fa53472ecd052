import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATE_CHARS, MAX_INIT_VALUES, MAX_SDP_CHARS, parseSignalData } from '../../src/protocol/signal-data.ts';

/** Arrays nested `depth` deep: 2 characters a level, so 6,000 levels are 12 KB of JSON. */
const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));

describe('parseSignalData: WebRTC signaling as simple-peer emits it, nothing else', () => {
  const valid = [
    { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' },
    { type: 'answer', sdp: 'v=0\r\n' },
    { type: 'pranswer', sdp: 'v=0\r\n' },
    { type: 'rollback', sdp: '' },
    { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host', sdpMLineIndex: 0, sdpMid: '0' } },
    { type: 'candidate', candidate: { candidate: '', sdpMLineIndex: null, sdpMid: null, usernameFragment: 'abcd' } },
    { type: 'candidate', candidate: { candidate: 'candidate:x', sdpMid: '0' } },
    { type: 'renegotiate', renegotiate: true },
    { type: 'transceiverRequest', transceiverRequest: { kind: 'audio' } },
    { type: 'transceiverRequest', transceiverRequest: { kind: 'video', init: { direction: 'recvonly', sendEncodings: [{ rid: 'h', maxBitrate: 900000, active: true }] } } },
  ];
  for (const data of valid) {
    it(`keeps ${JSON.stringify(data).slice(0, 70)}`, () => {
      expect(parseSignalData(JSON.parse(JSON.stringify(data)))).toEqual(data);
    });
  }

  it('relays only the known fields', () => {
    expect(parseSignalData({ type: 'offer', sdp: 'v=0', extra: { deep: [1] } })).toEqual({ type: 'offer', sdp: 'v=0' });
    expect(parseSignalData({ type: 'candidate', candidate: { candidate: 'c', sdpMid: '0', junk: nested(50) } })).toEqual({ type: 'candidate', candidate: { candidate: 'c', sdpMid: '0' } });
    expect(parseSignalData({ type: 'renegotiate', renegotiate: true, sdp: 'v=0' })).toEqual({ type: 'renegotiate', renegotiate: true });
  });

  const refused: [string, unknown][] = [
    ['6,000 levels of nesting (12 KB)', nested(6000)],
    ['deep nesting in an offer', { type: 'offer', sdp: nested(6000) }],
    ['deep nesting in a candidate', { type: 'candidate', candidate: nested(6000) }],
    ['deep nesting in a transceiver init', { type: 'transceiverRequest', transceiverRequest: { kind: 'audio', init: { a: nested(6000) } } }],
    ['a transceiver init one level too deep', { type: 'transceiverRequest', transceiverRequest: { kind: 'audio', init: { sendEncodings: [{ rid: { x: 1 } }] } } }],
    ['a transceiver init of too many values', { type: 'transceiverRequest', transceiverRequest: { kind: 'audio', init: { list: Array(MAX_INIT_VALUES).fill(1) } } }],
    ['a transceiver init that is a list', { type: 'transceiverRequest', transceiverRequest: { kind: 'audio', init: [] } }],
    ['a transceiver without kind', { type: 'transceiverRequest', transceiverRequest: {} }],
    ['null', null], ['a string', 'offer'], ['a number', 1], ['a list', [{ type: 'offer', sdp: 'v=0' }]],
    ['no type', { sdp: 'v=0' }], ['an unknown type', { type: 'hello', sdp: 'v=0' }], ['a type of another case', { type: 'Offer', sdp: 'v=0' }],
    ['an offer without sdp', { type: 'offer' }], ['an offer with a numeric sdp', { type: 'offer', sdp: 5 }],
    ['an sdp over the limit', { type: 'offer', sdp: 'x'.repeat(MAX_SDP_CHARS + 1) }],
    ['a candidate as a string', { type: 'candidate', candidate: 'candidate:1' }],
    ['a candidate line over the limit', { type: 'candidate', candidate: { candidate: 'x'.repeat(MAX_CANDIDATE_CHARS + 1) } }],
    ['a fractional sdpMLineIndex', { type: 'candidate', candidate: { candidate: 'c', sdpMLineIndex: 0.5 } }],
    ['a negative sdpMLineIndex', { type: 'candidate', candidate: { candidate: 'c', sdpMLineIndex: -1 } }],
    ['a numeric sdpMid', { type: 'candidate', candidate: { candidate: 'c', sdpMid: 0 } }],
    ['renegotiate without true', { type: 'renegotiate', renegotiate: 'yes' }],
  ];
  for (const [name, data] of refused) {
    it(`refuses ${name}`, () => {
      expect(parseSignalData(data)).toBeNull();
    });
  }

  it('nesting JSON.stringify cannot write is refused before it, and every kept value serialises', () => {
    expect(() => JSON.stringify({ type: 'signal', data: nested(200_000) })).toThrow(RangeError); // what the relay met
    expect(parseSignalData({ type: 'transceiverRequest', transceiverRequest: { kind: 'audio', init: { a: nested(200_000) } } })).toBeNull();
    for (const data of valid) expect(() => JSON.stringify(parseSignalData(data))).not.toThrow();
  });
});
