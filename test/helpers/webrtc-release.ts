// Ending @roamhq/wrtc deterministically. Closing every RTCPeerConnection leaves libwebrtc's
// threads running: the connection factory that owns them (its worker and signaling threads,
// the audio module, the low-priority queue) is freed only when garbage collection finalizes
// the closed connections and then the factory. A process that exits before such a collection
// runs Node's exit-time cleanup (wrtc's hook calls rtc::CleanupSSL) and the C++ static
// destructors — Dawn's among them where it is loaded — while those threads still run.
// releaseWebRtc() collects until they are gone, so a process can end with none.
import { readFileSync, readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Thread names (as /proc shows them: 15 characters) of the factory's threads. */
const FACTORY_THREAD = /^PeerConnection/;

/** This process's threads that belong to a libwebrtc connection factory (Linux; [] elsewhere). */
export function webrtcThreads(): string[] {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const t of tasks) {
    try {
      const name = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
      if (FACTORY_THREAD.test(name)) names.push(name);
    } catch {
      // the thread ended meanwhile
    }
  }
  return names;
}

let gc: (() => void) | null = null;

function collector(): () => void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  return gc;
}

/**
 * Runs garbage collection until libwebrtc's factory threads have ended (every connection must
 * be closed and unreferenced first). Resolves with the factory threads still running at the
 * deadline: [] when WebRTC is fully down.
 */
export async function releaseWebRtc(timeoutMs = 10_000): Promise<string[]> {
  const collect = collector();
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = webrtcThreads();
    if (left.length === 0 || Date.now() > end) return left;
    collect();
    // Finalizers and the factory's teardown run after the collection, on later ticks.
    await new Promise((r) => setTimeout(r, 50));
  }
}
