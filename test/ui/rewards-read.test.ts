// readStanding (renderer/engine/rewards.ts), how the desktop UI window reads its rewards: a
// real hotkey signs, the coordinator's real RewardsApi checks the signature (over a ledger
// stand-in holding one standing), and what it answers comes back; a coordinator without
// rewards (404) is null, a refusal an error with its reason.
import { describe, expect, it } from 'vitest';
import { RewardsApi } from '../../src/coordinator/rewards-api.ts';
import type { Ledger } from '../../src/coordinator/ledger.ts';
import type { Standing } from '../../src/protocol/messages.ts';
import { Hotkey, cryptoReady } from '../../src/wallet/keys.ts';
import { readStanding } from '../../renderer/engine/rewards.ts';
import { MNEMONIC } from './fakes.ts';

const NOW = 1_750_000_000_000;

function coordinator(api: RewardsApi | null, run = 'run-7') {
  const asked: string[] = [];
  const fetchFn = (async (input: string) => {
    const url = new URL(input);
    asked.push(url.pathname);
    if (url.pathname === '/run') return Response.json({ run, model: 'tiny' });
    const m = /^\/rewards\/(\w+)$/.exec(url.pathname);
    if (!m) return new Response('no', { status: 404 });
    if (!api) return Response.json({ error: 'this coordinator does not validate' }, { status: 404 });
    const r = api.handle(m[1], url.searchParams.get('t'), url.searchParams.get('sig'));
    return Response.json(r.body, { status: r.status });
  }) as typeof fetch;
  return { fetchFn, asked };
}

describe('reading the standing from the coordinator (desktop UI window)', () => {
  it('signs GET /rewards with the hotkey; the coordinator verifies it and answers the standing', async () => {
    await cryptoReady();
    const key = Hotkey.fromMnemonic(MNEMONIC);
    const standing: Standing = { address: key.address, ema: 0.01, assignedEma: 0.5, rank: 1, of: 2, share: 0.7, epoch: 0, epochReward: 1.5, totalReward: 1.5, lastRound: 3, pendingRounds: 0 };
    const ledger = { lastRound: 3, standing: (a: string) => (a === key.address ? standing : null), history: () => [] } as unknown as Ledger;
    const { fetchFn, asked } = coordinator(new RewardsApi('run-7', ledger, 10, () => NOW));
    expect(await readStanding(key, 'ws://127.0.0.1:8787/ws', fetchFn, () => NOW)).toEqual(standing);
    expect(asked).toEqual(['/run', `/rewards/${key.address}`]);

    // Signed for another run: the coordinator refuses, and the reason comes through.
    const other = coordinator(new RewardsApi('run-8', ledger, 10, () => NOW), 'run-7');
    await expect(readStanding(key, 'ws://127.0.0.1:8787/ws', other.fetchFn, () => NOW)).rejects.toThrow(/HTTP 401.*does not verify/);
    // A coordinator that keeps no rewards.
    expect(await readStanding(key, 'wss://run.example.org/ws', coordinator(null).fetchFn, () => NOW)).toBeNull();
  });
});
