// `tessera contribute --coordinator ws://host:port/ws [--key file]`: the headless contributor.
// Joins, syncs the weights, and trains round after round on this machine's GPU; prints each
// round's loss, bytes up/down and peers (or JSON lines with --json). Ctrl-C finishes the
// current step, saves, and exits; a second Ctrl-C exits at once.
import { join } from 'node:path';
import wrtc from '@roamhq/wrtc';
import WebSocket from 'ws';
import { adapterName } from '../gpu/index.ts';
import { Contributor, type ContributorEvent } from '../contributor/contributor.ts';
import type { SocketLike } from '../net/signaling.ts';
import { cryptoReady } from '../wallet/keys.ts';
import { FileCheckpointStore } from '../node/checkpoint-files.ts';
import { openNodeGpu } from '../node/dawn.ts';
import { parseCommandArgs } from './args.ts';
import { loadOwnKey } from '../node/hotkey-file.ts';
import { DEFAULT_WALLET_FILE, PASSWORD_ENV } from '../node/wallet-file.ts';
import { nodeHttpClient } from '../node/http-client.ts';
import { EventPrinter } from './contribute-output.ts';

export const CONTRIBUTE_USAGE = `usage:
  tessera contribute --coordinator ws://HOST:PORT/ws [--key FILE] [--password-file FILE] [--state DIR] [--memory-mib N] [--json] [--software]
  Joins the run served by that coordinator and trains on this machine's GPU until Ctrl-C.
  It signs with your wallet, ${DEFAULT_WALLET_FILE} (make it first: \`tessera wallet create\`, or
  \`tessera wallet import\` for words you have), unlocked with the password typed at the prompt,
  --password-file FILE or ${PASSWORD_ENV}. --key FILE: another key file (a Tessera wallet,
  a btcli hotkey file, or a file holding a mnemonic). --state: where this contributor saves its progress
  (default .tessera/contributor/<address>). --memory-mib N: GPU memory to give a pipelined run
  (the coordinator places you in a stage that fits; default: not limited).
  Simulation only: --sample-as ID trains on the batches assigned to ID instead of your own, as a
  dishonest contributor would; the validator's assigned-data check scores such work down.`;

export class ContributeUsageError extends Error {
  override name = 'ContributeUsageError';
}

function memoryBytes(flag: string | undefined): number {
  if (flag === undefined) return 0;
  const mib = Number(flag);
  if (!Number.isInteger(mib) || mib < 1) throw new ContributeUsageError(`--memory-mib must be a whole number of MiB ≥ 1, got '${flag}'`);
  return mib * 2 ** 20;
}

export async function contributeCommand(args: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args,
    options: {
      coordinator: { type: 'string' },
      key: { type: 'string' },
      'password-file': { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean' },
      software: { type: 'boolean' },
      'sample-as': { type: 'string' },
      'memory-mib': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }, (m) => new ContributeUsageError(m));
  if (values.help) {
    console.log(CONTRIBUTE_USAGE);
    return 0;
  }
  const url = values.coordinator;
  if (!url || !/^wss?:\/\/[^/]+/.test(url)) throw new ContributeUsageError(`--coordinator must be a ws:// or wss:// address, e.g. ws://127.0.0.1:8787/ws; got '${url ?? ''}'`);
  const coordinator = /\/ws\/?$/.test(url) ? url : `${url.replace(/\/$/, '')}/ws`;
  await cryptoReady();
  const own = await loadOwnKey({ key: values.key, passwordFile: values['password-file'] });
  const key = own.key;
  if (own.warning) console.error(own.warning);
  const json = values.json === true;
  const printer = new EventPrinter(process.stdout);
  const print = (e: ContributorEvent) => {
    if (json) return console.log(JSON.stringify(e));
    printer.print(e);
  };
  if (!json) console.log(`hotkey ${key.address} (${own.file})`);
  const gpu = await openNodeGpu({ adapter: values.software ? 'software' : 'auto' });
  if (!json) console.log(`GPU: ${adapterName(gpu.info)}`);
  const contributor = new Contributor({
    gpu,
    key,
    coordinator,
    openSocket: (u) => new WebSocket(u, { maxPayload: 256 * 1024 * 1024 }) as unknown as SocketLike,
    http: nodeHttpClient(),
    wrtc,
    store: new FileCheckpointStore(values.state ?? join('.tessera', 'contributor', key.address)),
    onEvent: print,
    sampleAs: values['sample-as'],
    memoryBytes: memoryBytes(values['memory-mib']),
  });
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    if (!json) console.log('stopping: saving progress (Ctrl-C again to quit at once)…');
    contributor.stop('now');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await contributor.run();
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    gpu.destroy();
  }
}
