// A small internet on this machine, in network namespaces the test makes and removes: a
// "public" namespace (a bridge, 10.77.0.1/24: the coordinator and coturn live here) and, per
// contributor, a NAT router namespace (WAN 10.77.0.1x on the bridge, LAN 192.168.k.1) with the
// contributor's own namespace behind it (192.168.k.2, default route through the router).
// Routers masquerade (iptables): a 'cone' router keeps a flow's source port, so one socket
// keeps one public address for every destination (endpoint-independent mapping); a
// 'symmetric' router picks a random port for each new flow (MASQUERADE --random-fully), so
// each destination sees another public port (endpoint-dependent mapping) and STUN's answer is
// useless to the peer. Both filter by conntrack: only replies to flows sent out get in.
// Nothing leaves the machine: every address is on veth links and a bridge made here.
// The public namespace and the routers route everything else to an "internet" namespace on
// the bridge (10.77.0.254) that forwards nothing, so a packet to a private address that is
// not on the bridge vanishes as it would on the internet. Without that default route such a
// send failed at once (ENETUNREACH), and coturn closes a whole allocation when its relay
// socket gets a send error — every Node peer's allocation died a second after ICE tried the
// remote's private host candidate through it (issue 18).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export type NatKind = 'cone' | 'symmetric';

const PREFIX = 'tn';
export const PUBLIC_NS = `${PREFIX}pub`;
export const PUBLIC_ADDR = '10.77.0.1';
const BRIDGE = 'tnbr';
const INTERNET_NS = `${PREFIX}inet`;
/** The default gateway of the public namespace and the routers: the "internet", which drops what it gets. */
const INTERNET_ADDR = '10.77.0.254';
/** Most NATs a topology may have (addresses 10.77.0.11… and 192.168.11… leave room). */
const MAX_NATS = 8;

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();
const inNs = (ns: string, cmd: string, args: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...args]);
const quiet = (cmd: string, args: string[]) => {
  try {
    run(cmd, args);
  } catch {
    /* already gone */
  }
};

export const routerNs = (k: number) => `${PREFIX}r${k}`;
export const hostNs = (k: number) => `${PREFIX}h${k}`;
export const wanAddr = (k: number) => `10.77.0.${11 + k}`;
const lanNet = (k: number) => `192.168.${11 + k}`;

/** Removes every namespace (and with them their links) a topology of this module may have left. */
export function removeNatNet(): void {
  for (let k = 0; k < MAX_NATS; k++) {
    quiet('ip', ['netns', 'del', hostNs(k)]);
    quiet('ip', ['netns', 'del', routerNs(k)]);
  }
  quiet('ip', ['netns', 'del', INTERNET_NS]);
  quiet('ip', ['netns', 'del', PUBLIC_NS]);
}

/** Whether this machine lets us make namespaces and NAT rules (root, iptables with nat); the reason when not. */
export function natNetUnavailable(): string | null {
  try {
    run('ip', ['netns', 'add', `${PREFIX}probe`]);
  } catch (e) {
    return `ip netns add failed (root needed): ${(e as Error).message.split('\n')[0]}`;
  }
  try {
    inNs(`${PREFIX}probe`, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'lo', '-j', 'MASQUERADE', '--random-fully']);
    return null;
  } catch (e) {
    return `iptables NAT in a namespace failed: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    quiet('ip', ['netns', 'del', `${PREFIX}probe`]);
  }
}

/** Makes the public namespace and one NAT (router + host namespace) per entry of `nats`. */
export function createNatNet(nats: readonly NatKind[]): void {
  if (nats.length > MAX_NATS) throw new Error(`at most ${MAX_NATS} NATs`);
  removeNatNet();
  run('ip', ['netns', 'add', PUBLIC_NS]);
  inNs(PUBLIC_NS, 'ip', ['link', 'set', 'lo', 'up']);
  inNs(PUBLIC_NS, 'ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  inNs(PUBLIC_NS, 'ip', ['addr', 'add', `${PUBLIC_ADDR}/24`, 'dev', BRIDGE]);
  inNs(PUBLIC_NS, 'ip', ['link', 'set', BRIDGE, 'up']);
  // The internet: on the bridge, forwarding off (a new namespace's default), so it silently
  // drops whatever is routed to it rather than answering "unreachable".
  run('ip', ['netns', 'add', INTERNET_NS]);
  inNs(INTERNET_NS, 'ip', ['link', 'set', 'lo', 'up']);
  inNs(INTERNET_NS, 'ip', ['link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'tnwi']);
  inNs(INTERNET_NS, 'ip', ['link', 'set', 'tnwi', 'netns', PUBLIC_NS]);
  inNs(PUBLIC_NS, 'ip', ['link', 'set', 'tnwi', 'master', BRIDGE]);
  inNs(PUBLIC_NS, 'ip', ['link', 'set', 'tnwi', 'up']);
  inNs(INTERNET_NS, 'ip', ['addr', 'add', `${INTERNET_ADDR}/24`, 'dev', 'wan']);
  inNs(INTERNET_NS, 'ip', ['link', 'set', 'wan', 'up']);
  inNs(INTERNET_NS, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
  inNs(PUBLIC_NS, 'ip', ['route', 'add', 'default', 'via', INTERNET_ADDR]);
  nats.forEach((kind, k) => {
    const r = routerNs(k), h = hostNs(k);
    run('ip', ['netns', 'add', r]);
    run('ip', ['netns', 'add', h]);
    for (const ns of [r, h]) inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    // WAN: router ↔ the public bridge.
    inNs(r, 'ip', ['link', 'add', 'wan', 'type', 'veth', 'peer', 'name', `tnw${k}`]);
    inNs(r, 'ip', ['link', 'set', `tnw${k}`, 'netns', PUBLIC_NS]);
    inNs(PUBLIC_NS, 'ip', ['link', 'set', `tnw${k}`, 'master', BRIDGE]);
    inNs(PUBLIC_NS, 'ip', ['link', 'set', `tnw${k}`, 'up']);
    inNs(r, 'ip', ['addr', 'add', `${wanAddr(k)}/24`, 'dev', 'wan']);
    inNs(r, 'ip', ['link', 'set', 'wan', 'up']);
    // LAN: router ↔ the contributor's namespace.
    inNs(r, 'ip', ['link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0']);
    inNs(r, 'ip', ['link', 'set', 'eth0', 'netns', h]);
    inNs(r, 'ip', ['addr', 'add', `${lanNet(k)}.1/24`, 'dev', 'lan']);
    inNs(r, 'ip', ['link', 'set', 'lan', 'up']);
    inNs(h, 'ip', ['addr', 'add', `${lanNet(k)}.2/24`, 'dev', 'eth0']);
    inNs(h, 'ip', ['link', 'set', 'eth0', 'up']);
    inNs(h, 'ip', ['route', 'add', 'default', 'via', `${lanNet(k)}.1`]);
    inNs(r, 'ip', ['route', 'add', 'default', 'via', INTERNET_ADDR]);
    inNs(r, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const masquerade = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-s', `${lanNet(k)}.0/24`, '-j', 'MASQUERADE'];
    inNs(r, 'iptables', kind === 'symmetric' ? [...masquerade, '--random-fully'] : masquerade);
    // Only replies come in from the WAN (conntrack); nothing unsolicited is forwarded.
    inNs(r, 'iptables', ['-A', 'FORWARD', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
    inNs(r, 'iptables', ['-A', 'FORWARD', '-i', 'wan', '-j', 'DROP']);
    // An unsolicited packet to the router itself is dropped before its conntrack entry is
    // confirmed: a confirmed one would make the router pick another port for our own flow to
    // that sender later (a port collision), which no home router does to a cone mapping.
    inNs(r, 'iptables', ['-A', 'INPUT', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP']);
  });
}

/**
 * The public ports one UDP socket in NAT k's host namespace is seen from at two destinations
 * in the public namespace: equal behind a cone NAT, different behind a symmetric one.
 */
export async function observedPorts(k: number): Promise<[number, number]> {
  const echo = `const d=require('dgram');for(const p of [40001,40002]){const s=d.createSocket('udp4');s.on('message',(m,r)=>s.send(String(r.port),r.port,r.address));s.bind(p,'${PUBLIC_ADDR}')}setTimeout(()=>process.exit(0),8000)`;
  const server = spawn('ip', ['netns', 'exec', PUBLIC_NS, process.execPath, '-e', echo], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const probe = `const d=require('dgram');const s=d.createSocket('udp4');const got=[];s.on('message',(m)=>{got.push(Number(String(m)));if(got.length===2){console.log(JSON.stringify(got));process.exit(0)}});s.bind(0,()=>{s.send('a',40001,'${PUBLIC_ADDR}');setTimeout(()=>s.send('b',40002,'${PUBLIC_ADDR}'),100)});setTimeout(()=>process.exit(1),5000)`;
    const out = inNs(hostNs(k), process.execPath, ['-e', probe]);
    return JSON.parse(out.trim()) as [number, number];
  } finally {
    server.kill('SIGKILL');
  }
}

/** coturn in the public namespace with the TURN REST shared secret (use-auth-secret); its config file holds the secret. */
export function startCoturn(configFile: string): ChildProcess {
  return spawn('ip', ['netns', 'exec', PUBLIC_NS, 'turnserver', '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export function coturnConfig(secret: string, pidFile: string): string {
  return [
    `listening-ip=${PUBLIC_ADDR}`,
    `relay-ip=${PUBLIC_ADDR}`,
    'listening-port=3478',
    'min-port=49160',
    'max-port=49260',
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=tessera.test',
    'fingerprint',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    // As the README's deployment: no relaying to private addresses (a peer's LAN host
    // candidates), except 10.x, which this little internet uses as its public addresses.
    'denied-peer-ip=172.16.0.0-172.31.255.255',
    'denied-peer-ip=192.168.0.0-192.168.255.255',
    'log-file=stdout',
    `pidfile=${pidFile}`,
    '',
  ].join('\n');
}

/** Resolves once coturn listens on its UDP port in the public namespace, or rejects after `ms` (with its log). */
export async function coturnReady(child: ChildProcess, ms = 10_000): Promise<void> {
  let log = '';
  let exited: number | null | undefined;
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2000)));
  child.on('exit', (code) => (exited = code));
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (exited !== undefined) throw new Error(`coturn exited (${exited}): ${log.slice(-500)}`);
    if (inNs(PUBLIC_NS, 'ss', ['-Hnlu', 'sport = :3478']).includes(PUBLIC_ADDR)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`coturn did not listen within ${ms} ms: ${log.slice(-500)}`);
}
