// The page's end of the RTC bridge: holds the real RTCPeerConnections and data channels the
// worker's simple-peer drives (see rtc-worker.ts), and reports their events and state back.
// It only relays: the bytes are framed, signed and checked in the worker.
import { PAGE_CHANNEL_IDS, type PcState, type RtcCommand, type RtcNotice } from './rtc-protocol.ts';

interface WorkerPort {
  postMessage(msg: unknown, transfer?: Transferable[]): void;
}

export interface RtcHost {
  /** Handles one { rtc } command from the worker. */
  handle(cmd: RtcCommand): void;
  /** Closes every connection (the worker is going away). */
  closeAll(): void;
}

export function hostRtc(worker: WorkerPort, Peer: typeof RTCPeerConnection = RTCPeerConnection): RtcHost {
  const pcs = new Map<number, RTCPeerConnection>();
  const channels = new Map<number, { dc: RTCDataChannel; handed: number }>();
  let nextPageChannel = PAGE_CHANNEL_IDS;
  const notify = (rtc: RtcNotice, transfer: Transferable[] = []) => worker.postMessage({ rtc }, transfer);
  const describe = (d: RTCSessionDescription | null) => (d ? { type: d.type, sdp: d.sdp } : null);
  const stateOf = (pc: RTCPeerConnection): PcState => ({
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    iceGatheringState: pc.iceGatheringState,
    signalingState: pc.signalingState,
    localDescription: describe(pc.localDescription),
    remoteDescription: describe(pc.remoteDescription),
  });

  const adopt = (id: number, dc: RTCDataChannel) => {
    dc.binaryType = 'arraybuffer';
    const entry = { dc, handed: 0 };
    channels.set(id, entry);
    const event = (name: 'open' | 'close' | 'error', message?: string) => {
      notify({ ev: 'dc-event', dc: id, name, readyState: dc.readyState, message });
      if (name === 'close') channels.delete(id);
    };
    dc.onopen = () => event('open');
    dc.onclose = () => event('close');
    dc.onerror = (e) => event('error', (e as RTCErrorEvent).error?.message ?? 'data channel error');
    dc.onmessage = (e: MessageEvent) => {
      const data = e.data as ArrayBuffer;
      notify({ ev: 'dc-message', dc: id, data }, [data]);
    };
    dc.onbufferedamountlow = () => notify({ ev: 'dc-buffered', dc: id, amount: dc.bufferedAmount, handed: entry.handed });
  };

  const call = async (pc: RTCPeerConnection, method: string, args: unknown[]): Promise<unknown> => {
    switch (method) {
      case 'createOffer':
        return plainDescription(await pc.createOffer(args[0] as RTCOfferOptions));
      case 'createAnswer':
        return plainDescription(await pc.createAnswer(args[0] as RTCAnswerOptions));
      case 'setLocalDescription':
        return void (await pc.setLocalDescription(args[0] as RTCSessionDescriptionInit));
      case 'setRemoteDescription':
        return void (await pc.setRemoteDescription(args[0] as RTCSessionDescriptionInit));
      case 'addIceCandidate':
        return void (await pc.addIceCandidate(args[0] as RTCIceCandidateInit));
      case 'getStats':
        return [...(await pc.getStats()).values()].map((r) => ({ ...r }));
      default:
        throw new Error(`no RTCPeerConnection method '${method}' over the bridge`);
    }
  };

  return {
    handle(cmd) {
      switch (cmd.op) {
        case 'pc-new': {
          const pc = new Peer(cmd.config as RTCConfiguration);
          pcs.set(cmd.pc, pc);
          const event = (name: Extract<RtcNotice, { ev: 'pc-event' }>['name'], candidate?: unknown) => notify({ ev: 'pc-event', pc: cmd.pc, name, candidate, state: stateOf(pc) });
          pc.onicecandidate = (e) => event('icecandidate', e.candidate ? e.candidate.toJSON() : null);
          pc.oniceconnectionstatechange = () => event('iceconnectionstatechange');
          pc.onicegatheringstatechange = () => event('icegatheringstatechange');
          pc.onconnectionstatechange = () => event('connectionstatechange');
          pc.onsignalingstatechange = () => event('signalingstatechange');
          pc.ondatachannel = (e) => {
            const id = nextPageChannel++;
            adopt(id, e.channel);
            notify({ ev: 'pc-datachannel', pc: cmd.pc, dc: id, label: e.channel.label, readyState: e.channel.readyState });
          };
          return;
        }
        case 'pc-call': {
          const pc = pcs.get(cmd.pc);
          if (!pc) return;
          call(pc, cmd.method, cmd.args).then(
            (result) => notify({ ev: 'pc-reply', call: cmd.call, ok: true, result, state: stateOf(pc) }),
            (e: unknown) => notify({ ev: 'pc-reply', call: cmd.call, ok: false, error: (e as Error)?.message ?? String(e), state: stateOf(pc) }),
          );
          return;
        }
        case 'pc-close':
          pcs.get(cmd.pc)?.close();
          pcs.delete(cmd.pc);
          return;
        case 'dc-new': {
          const pc = pcs.get(cmd.pc);
          if (pc) adopt(cmd.dc, pc.createDataChannel(cmd.label, cmd.init as RTCDataChannelInit));
          return;
        }
        case 'dc-send': {
          const entry = channels.get(cmd.dc);
          if (!entry) return;
          entry.handed += cmd.data.byteLength;
          try {
            entry.dc.send(cmd.data);
          } catch (e) {
            notify({ ev: 'dc-event', dc: cmd.dc, name: 'error', readyState: entry.dc.readyState, message: (e as Error).message });
          }
          notify({ ev: 'dc-buffered', dc: cmd.dc, amount: entry.dc.bufferedAmount, handed: entry.handed });
          return;
        }
        case 'dc-threshold': {
          const entry = channels.get(cmd.dc);
          if (entry) entry.dc.bufferedAmountLowThreshold = cmd.bytes;
          return;
        }
        case 'dc-close':
          channels.get(cmd.dc)?.dc.close();
          return;
      }
    },
    closeAll() {
      for (const pc of pcs.values()) pc.close();
      pcs.clear();
      channels.clear();
    },
  };
}

function plainDescription(d: RTCSessionDescriptionInit): { type: string; sdp: string } {
  return { type: String(d.type), sdp: d.sdp ?? '' };
}
