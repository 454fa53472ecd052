// The worker's end of the RTC bridge: RTCPeerConnection, RTCSessionDescription and
// RTCIceCandidate look-alikes, handed to simple-peer as its `wrtc`, whose real counterparts
// live in the page (rtc-host.ts). Only what simple-peer 9 uses of them is here: offers and
// answers, trickle ICE, one data channel, getStats, the state properties (mirrored from the
// page with every reply and event). bufferedAmount is the page's figure plus the bytes still
// on their way to it, so simple-peer's backpressure works as on a real channel.
import { type PcMethod, type PcState, type RtcCommand, type RtcNotice } from './rtc-protocol.ts';

interface Port {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', fn: (ev: MessageEvent) => void): void;
}

type Handler = ((ev: unknown) => void) | null;

export function rtcFromPage(port: Port): { RTCPeerConnection: unknown; RTCSessionDescription: unknown; RTCIceCandidate: unknown } {
  const send = (rtc: RtcCommand, transfer: Transferable[] = []) => port.postMessage({ rtc }, transfer);
  const pcs = new Map<number, BridgedPeerConnection>();
  const channels = new Map<number, BridgedDataChannel>();
  const calls = new Map<number, { pc: BridgedPeerConnection; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextPc = 1;
  let nextDc = 1;
  let nextCall = 1;

  class BridgedDataChannel {
    readyState = 'connecting';
    binaryType = 'arraybuffer';
    onopen: Handler = null;
    onclose: Handler = null;
    onerror: Handler = null;
    onmessage: Handler = null;
    onbufferedamountlow: Handler = null;
    #threshold = 0;
    #posted = 0;
    #pageAmount = 0;
    #pageHanded = 0;

    constructor(
      readonly id: number,
      readonly label: string,
    ) {
      channels.set(id, this);
    }

    get bufferedAmount(): number {
      return this.#pageAmount + (this.#posted - this.#pageHanded);
    }

    get bufferedAmountLowThreshold(): number {
      return this.#threshold;
    }

    set bufferedAmountLowThreshold(bytes: number) {
      this.#threshold = bytes;
      send({ op: 'dc-threshold', dc: this.id, bytes });
    }

    send(data: ArrayBuffer | ArrayBufferView): void {
      if (this.readyState !== 'open') throw new DOMException(`data channel is ${this.readyState}`, 'InvalidStateError');
      const view = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const copy = view.slice().buffer;
      this.#posted += copy.byteLength;
      send({ op: 'dc-send', dc: this.id, data: copy }, [copy]);
    }

    close(): void {
      if (this.readyState === 'closed') return;
      this.readyState = 'closing';
      send({ op: 'dc-close', dc: this.id });
    }

    notice(n: RtcNotice): void {
      if (n.ev === 'dc-message') return this.onmessage?.({ data: n.data });
      if (n.ev === 'dc-buffered') {
        const before = this.bufferedAmount;
        this.#pageAmount = n.amount;
        this.#pageHanded = n.handed;
        if (before > this.#threshold && this.bufferedAmount <= this.#threshold) this.onbufferedamountlow?.({});
        return;
      }
      if (n.ev !== 'dc-event') return;
      this.readyState = n.readyState;
      if (n.name === 'open') this.onopen?.({});
      else if (n.name === 'error') this.onerror?.({ error: new Error(n.message ?? 'data channel error') });
      else if (n.name === 'close') {
        channels.delete(this.id);
        this.onclose?.({});
      }
    }
  }

  class BridgedPeerConnection {
    readonly id = nextPc++;
    connectionState = 'new';
    iceConnectionState = 'new';
    iceGatheringState = 'new';
    signalingState = 'stable';
    localDescription: PcState['localDescription'] = null;
    remoteDescription: PcState['remoteDescription'] = null;
    onicecandidate: Handler = null;
    oniceconnectionstatechange: Handler = null;
    onicegatheringstatechange: Handler = null;
    onconnectionstatechange: Handler = null;
    onsignalingstatechange: Handler = null;
    ondatachannel: Handler = null;
    ontrack: Handler = null;

    constructor(config?: unknown) {
      pcs.set(this.id, this);
      send({ op: 'pc-new', pc: this.id, config: config ?? {} });
    }

    #call(method: PcMethod, args: unknown[]): Promise<unknown> {
      const call = nextCall++;
      return new Promise((resolve, reject) => {
        calls.set(call, { pc: this, resolve, reject });
        send({ op: 'pc-call', pc: this.id, call, method, args: args.map(plain) });
      });
    }

    createOffer(options?: unknown) {
      return this.#call('createOffer', [options ?? {}]);
    }
    createAnswer(options?: unknown) {
      return this.#call('createAnswer', [options ?? {}]);
    }
    setLocalDescription(d: unknown) {
      return this.#call('setLocalDescription', [d]);
    }
    setRemoteDescription(d: unknown) {
      return this.#call('setRemoteDescription', [d]);
    }
    addIceCandidate(c: unknown) {
      return this.#call('addIceCandidate', [c]);
    }
    /** Promise style, no parameters: simple-peer picks its getStats flavour by the arity. */
    getStats() {
      return this.#call('getStats', []);
    }

    createDataChannel(label: string, init?: unknown): BridgedDataChannel {
      const dc = new BridgedDataChannel(nextDc++, label);
      send({ op: 'dc-new', pc: this.id, dc: dc.id, label, init: init ?? {} });
      return dc;
    }

    close(): void {
      if (!pcs.has(this.id)) return;
      pcs.delete(this.id);
      this.connectionState = 'closed';
      this.signalingState = 'closed';
      send({ op: 'pc-close', pc: this.id });
    }

    apply(state: PcState): void {
      Object.assign(this, state);
    }
  }

  port.addEventListener('message', (ev: MessageEvent) => {
    const n = (ev.data as { rtc?: RtcNotice } | null)?.rtc;
    if (!n || !('ev' in n)) return;
    switch (n.ev) {
      case 'pc-reply': {
        const c = calls.get(n.call);
        if (!c) return;
        calls.delete(n.call);
        c.pc.apply(n.state);
        if (n.ok) c.resolve(n.result);
        else c.reject(new Error(n.error ?? 'RTCPeerConnection call failed'));
        return;
      }
      case 'pc-event': {
        const pc = pcs.get(n.pc);
        if (!pc) return;
        pc.apply(n.state);
        const handler = pc[`on${n.name}`];
        handler?.(n.name === 'icecandidate' ? { candidate: n.candidate ?? null } : {});
        return;
      }
      case 'pc-datachannel': {
        const pc = pcs.get(n.pc);
        if (!pc) return;
        const dc = new BridgedDataChannel(n.dc, n.label);
        dc.readyState = n.readyState;
        pc.ondatachannel?.({ channel: dc });
        return;
      }
      default:
        channels.get(n.dc)?.notice(n);
    }
  });

  return {
    RTCPeerConnection: BridgedPeerConnection,
    RTCSessionDescription: class {
      constructor(d: { type: string; sdp: string }) {
        return { type: d.type, sdp: d.sdp };
      }
    },
    RTCIceCandidate: class {
      constructor(c: Record<string, unknown>) {
        return { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null, usernameFragment: c.usernameFragment ?? null };
      }
    },
  };
}

/** A description or candidate as plain data (simple-peer may pass class instances). */
function plain(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}
