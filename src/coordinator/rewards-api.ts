// GET /rewards/<address>?t=<ms>&sig=<hex>: a contributor reads its standing and history. The
// request is signed by the hotkey over rewardsRequest(run, address, t), within a minute of
// the coordinator's clock, and each signed request works once: a forged or replayed one is
// refused.
import { fromHex } from '../base/hex.ts';
import { rewardsRequest } from '../protocol/messages.ts';
import { isValidAddress, verifySignature } from '../wallet/keys.ts';
import type { Ledger } from './ledger.ts';

export const REWARDS_WINDOW_MS = 60_000;

export class RewardsApi {
  private readonly used = new Map<string, number>();

  constructor(
    private readonly run: string,
    private readonly ledger: Ledger,
    private readonly epochRounds: number,
    private readonly now: () => number = Date.now,
    /** Rounds the coordinator has closed (to count those not scored yet); by default, those the ledger has seen. */
    private readonly closedRounds: () => number = () => ledger.lastRound + 1,
  ) {}

  handle(address: string, t: string | null, sig: string | null): { status: number; body: unknown } {
    const time = Number(t);
    const signature = sig ? fromHex(sig) : null;
    if (!isValidAddress(address)) return { status: 400, body: { error: `'${address}' is not an ss58 address` } };
    if (!Number.isSafeInteger(time) || !signature) return { status: 400, body: { error: 'sign the request: ?t=<unix ms>&sig=<hex sr25519 signature of rewardsRequest(run, address, t)>' } };
    const now = this.now();
    if (Math.abs(now - time) > REWARDS_WINDOW_MS) return { status: 401, body: { error: `the request's time is ${Math.round((now - time) / 1000)} s off the coordinator's clock (at most ${REWARDS_WINDOW_MS / 1000} s): check your clock and sign a fresh request` } };
    if (!verifySignature(rewardsRequest(this.run, address, time), signature, address)) return { status: 401, body: { error: 'the signature does not verify for that address' } };
    for (const [k, at] of this.used) if (now - at > 2 * REWARDS_WINDOW_MS) this.used.delete(k);
    const key = `${address}:${time}`;
    if (this.used.has(key)) return { status: 409, body: { error: 'this signed request was already used: sign a fresh one' } };
    this.used.set(key, now);
    const last = this.ledger.lastRound;
    const epoch = Math.max(0, Math.floor(last / this.epochRounds));
    const pending = Math.max(0, this.closedRounds() - 1 - last);
    return { status: 200, body: { standing: this.ledger.standing(address, epoch, pending), history: this.ledger.history(address) } };
  }
}
