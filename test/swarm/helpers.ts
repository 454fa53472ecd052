// Shared by the live-swarm tests: `tessera contribute` as a child process with its JSON events
// collected, and a polling wait with a named timeout.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContributorEvent } from '../../src/contributor/contributor.ts';
import { Hotkey } from '../../src/wallet/keys.ts';

export const BIN = fileURLToPath(new URL('../../bin/tessera.mjs', import.meta.url));

export interface ChildContributor {
  key: Hotkey;
  events: ContributorEvent[];
  child: ChildProcess;
}

export type CommitEvent = Extract<ContributorEvent, { event: 'commit' }>;

/** Starts `tessera contribute --json` with a fresh key (files under `work`), collecting its events. */
export function spawnContributor(work: string, name: string, url: string, extraArgs: string[] = []): ChildContributor {
  const { key, mnemonic } = Hotkey.generate();
  const keyFile = join(work, `${name}.key`);
  writeFileSync(keyFile, mnemonic, { mode: 0o600 });
  const child = spawn(process.execPath, [BIN, 'contribute', '--coordinator', url, '--key', keyFile, '--state', join(work, name), '--json', ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const out: ChildContributor = { key, events: [], child };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) {
      const line = buf.slice(0, nl);
      if (line.startsWith('{')) out.events.push(JSON.parse(line) as ContributorEvent);
    }
  });
  return out;
}

export const commitsOf = (c: ChildContributor): CommitEvent[] => c.events.filter((e): e is CommitEvent => e.event === 'commit');

export async function until(what: string, ready: () => boolean, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
