// Messages of the RTC bridge: the worker's simple-peer drives RTCPeerConnections that live in
// the page (Chromium has no RTCPeerConnection inside workers). Plain data only. Every
// message is wrapped as { rtc: … } so it shares the worker's channel with the engine calls.

export interface PcState {
  connectionState: string;
  iceConnectionState: string;
  iceGatheringState: string;
  signalingState: string;
  localDescription: { type: string; sdp: string } | null;
  remoteDescription: { type: string; sdp: string } | null;
}

export type PcMethod = 'createOffer' | 'createAnswer' | 'setLocalDescription' | 'setRemoteDescription' | 'addIceCandidate' | 'getStats';

/** Worker → page. */
export type RtcCommand =
  | { op: 'pc-new'; pc: number; config: unknown }
  | { op: 'pc-call'; pc: number; call: number; method: PcMethod; args: unknown[] }
  | { op: 'pc-close'; pc: number }
  | { op: 'dc-new'; pc: number; dc: number; label: string; init: unknown }
  | { op: 'dc-send'; dc: number; data: ArrayBuffer }
  | { op: 'dc-threshold'; dc: number; bytes: number }
  | { op: 'dc-close'; dc: number };

/** Page → worker. */
export type RtcNotice =
  | { ev: 'pc-reply'; call: number; ok: boolean; result?: unknown; error?: string; state: PcState }
  | { ev: 'pc-event'; pc: number; name: 'icecandidate' | 'iceconnectionstatechange' | 'icegatheringstatechange' | 'connectionstatechange' | 'signalingstatechange'; candidate?: unknown; state: PcState }
  | { ev: 'pc-datachannel'; pc: number; dc: number; label: string; readyState: string }
  | { ev: 'dc-event'; dc: number; name: 'open' | 'close' | 'error'; readyState: string; message?: string }
  | { ev: 'dc-message'; dc: number; data: ArrayBuffer }
  /** After each send: the channel's real bufferedAmount and how many bytes the page has handed to it in all. */
  | { ev: 'dc-buffered'; dc: number; amount: number; handed: number };

/** Channel ids the page makes (incoming channels) count down from here, the worker's up from 1. */
export const PAGE_CHANNEL_IDS = 1 << 30;
