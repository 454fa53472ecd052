// What WebRTC signaling data legitimately looks like, as simple-peer emits it (peer-link.ts
// hands it over unchanged), so the coordinator relays only that: a `signal`'s `data` from
// one peer reaches another peer's simple-peer and the coordinator's JSON.stringify, and any
// other JSON (a 6,000-deep nest made JSON.stringify throw in the relay) is refused at parse.
//
//   { type: 'offer' | 'answer' | 'pranswer' | 'rollback', sdp }       a session description
//   { type: 'candidate', candidate: { candidate, sdpMLineIndex?, sdpMid?, usernameFragment? } }
//   { type: 'renegotiate', renegotiate: true }                      the answerer asks for an offer
//   { type: 'transceiverRequest', transceiverRequest: { kind, init? } }  init: RTCRtpTransceiverInit
//
// The result is rebuilt from the known fields only (nothing else is relayed), and every
// string and nesting level is bounded. Environment-free.

/** Longest SDP relayed: a data-channel offer is ~1 KB; a non-trickle one with every candidate a few KB. */
export const MAX_SDP_CHARS = 64 * 1024;
/** Longest ICE candidate line (~100–200 characters in practice). */
export const MAX_CANDIDATE_CHARS = 4096;
/** Longest short field: sdpMid, usernameFragment, a transceiver's kind, a string inside init. */
export const MAX_FIELD_CHARS = 256;
/** RTCRtpTransceiverInit nests init → sendEncodings → an encoding → its fields. */
export const MAX_INIT_DEPTH = 3;
/** Values (objects, arrays and leaves together) in a transceiver's init. */
export const MAX_INIT_VALUES = 256;

const DESCRIPTION_TYPES = new Set(['offer', 'answer', 'pranswer', 'rollback']);

export type SignalData =
  | { type: 'offer' | 'answer' | 'pranswer' | 'rollback'; sdp: string }
  | { type: 'candidate'; candidate: IceCandidate }
  | { type: 'renegotiate'; renegotiate: true }
  | { type: 'transceiverRequest'; transceiverRequest: { kind: string; init?: unknown } };

export interface IceCandidate {
  candidate: string;
  sdpMLineIndex?: number | null;
  sdpMid?: string | null;
  usernameFragment?: string | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** An optional field: absent, null, or valid. */
function optional<T>(o: Record<string, unknown>, key: string, valid: (v: unknown) => v is T): { ok: boolean; value?: T | null } {
  if (!Object.hasOwn(o, key)) return { ok: true };
  const v = o[key];
  if (v === null) return { ok: true, value: null };
  return valid(v) ? { ok: true, value: v } : { ok: false };
}

function parseCandidate(c: unknown): IceCandidate | null {
  if (!isObj(c) || !isText(c.candidate, MAX_CANDIDATE_CHARS)) return null;
  const line = optional(c, 'sdpMLineIndex', (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff);
  const mid = optional(c, 'sdpMid', (v): v is string => isText(v, MAX_FIELD_CHARS));
  const frag = optional(c, 'usernameFragment', (v): v is string => isText(v, MAX_FIELD_CHARS));
  if (!line.ok || !mid.ok || !frag.ok) return null;
  const out: IceCandidate = { candidate: c.candidate };
  if ('value' in line) out.sdpMLineIndex = line.value;
  if ('value' in mid) out.sdpMid = mid.value;
  if ('value' in frag) out.usernameFragment = frag.value;
  return out;
}

/** Plain JSON no deeper than `depth` levels below `v`, counting its values against `budget`. */
function boundedJson(v: unknown, depth: number, budget: { left: number }): boolean {
  if (--budget.left < 0) return false;
  if (v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return true;
  if (typeof v === 'string') return v.length <= MAX_FIELD_CHARS;
  if (typeof v !== 'object' || depth <= 0) return false;
  const items = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
  return items.every((x) => boundedJson(x, depth - 1, budget));
}

/** `data` of a signal as simple-peer emits it, rebuilt from its known fields; null for anything else. */
export function parseSignalData(data: unknown): SignalData | null {
  if (!isObj(data) || typeof data.type !== 'string') return null;
  const type = data.type;
  if (DESCRIPTION_TYPES.has(type)) {
    return isText(data.sdp, MAX_SDP_CHARS) ? { type: type as 'offer', sdp: data.sdp } : null;
  }
  if (type === 'candidate') {
    const candidate = parseCandidate(data.candidate);
    return candidate ? { type, candidate } : null;
  }
  if (type === 'renegotiate') return data.renegotiate === true ? { type, renegotiate: true } : null;
  if (type === 'transceiverRequest') {
    const t = data.transceiverRequest;
    if (!isObj(t) || !isText(t.kind, MAX_FIELD_CHARS) || t.kind.length === 0) return null;
    if (t.init === undefined) return { type, transceiverRequest: { kind: t.kind } };
    if (!isObj(t.init) || !boundedJson(t.init, MAX_INIT_DEPTH, { left: MAX_INIT_VALUES })) return null;
    return { type, transceiverRequest: { kind: t.kind, init: t.init } };
  }
  return null;
}
