// Short-lived TURN credentials for the run's members (the TURN REST scheme that coturn's
// `use-auth-secret` checks): username = "<expiry, unix seconds>:<address>", credential =
// base64(HMAC-SHA1(shared secret, username)). The coordinator and coturn share the secret;
// nothing else ever sees it. A member gets its grant right after its welcome and a fresh
// one once half of the old one's life has passed, so a link dialled late in a long run never
// carries an expired credential; a connection that is not a member gets none.
import { createHmac } from 'node:crypto';
import type { IceServer } from '../protocol/run-config.ts';

/** A grant's life unless --turn-ttl says otherwise: long enough for any link set-up, short enough that a leaked one soon dies. */
export const DEFAULT_TURN_TTL_SECONDS = 3600;
/** Shortest life accepted: a refresh comes at half of it, and links need seconds to dial. */
export const MIN_TURN_TTL_SECONDS = 60;
/** Shortest shared secret accepted (coturn takes any; a short one can be guessed from a credential). */
export const MIN_TURN_SECRET_CHARS = 16;

export interface TurnSettings {
  /** stun:, turn: and turns: URLs of the run's coturn (turn(s): ones get the credentials). */
  urls: string[];
  /** coturn's static-auth-secret. */
  secret: string;
  ttlSeconds: number;
}

export interface IceGrant {
  servers: IceServer[];
  /** When the credentials stop working, ms since the epoch. */
  expiresAt: number;
}

/** A settings mistake, naming the flag to fix. */
export class TurnSettingsError extends Error {
  override name = 'TurnSettingsError';
  constructor(readonly field: string, detail: string) {
    super(`${field} ${detail}`);
  }
}

const URL_RE = /^(stun|turns?):(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(\?transport=(udp|tcp))?$/;

/** The TURN REST credential for `address`, valid until `expirySeconds` (unix seconds). */
export function turnCredential(secret: string, address: string, expirySeconds: number): { username: string; credential: string } {
  const username = `${expirySeconds}:${address}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

/** Checks the settings; the STUN URL is derived from the first turn: URL when none is listed. */
export function checkTurnSettings(s: TurnSettings): TurnSettings {
  if (s.urls.length === 0) throw new TurnSettingsError('--turn', 'needs at least one URL, e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp');
  for (const u of s.urls) if (!URL_RE.test(u)) throw new TurnSettingsError('--turn', `has '${u}', which is not a stun:, turn: or turns: URL (host[:port][?transport=udp|tcp])`);
  if (!s.urls.some((u) => u.startsWith('turn'))) throw new TurnSettingsError('--turn', 'lists no turn: or turns: URL: peers behind symmetric NATs need a relay');
  if (s.secret.length < MIN_TURN_SECRET_CHARS) throw new TurnSettingsError('--turn-secret-file', `(or TESSERA_TURN_SECRET) must hold coturn's static-auth-secret, at least ${MIN_TURN_SECRET_CHARS} characters`);
  if (!Number.isInteger(s.ttlSeconds) || s.ttlSeconds < MIN_TURN_TTL_SECONDS) throw new TurnSettingsError('--turn-ttl', `must be a whole number of seconds ≥ ${MIN_TURN_TTL_SECONDS}, got ${s.ttlSeconds}`);
  let urls = s.urls;
  if (!urls.some((u) => u.startsWith('stun:'))) {
    // coturn answers STUN on its TURN listening port: the same host and port, no credentials.
    const plain = urls.find((u) => u.startsWith('turn:'));
    if (plain) urls = [plain.replace(/^turn:/, 'stun:').replace(/\?.*$/, ''), ...urls];
  }
  return { ...s, urls };
}

/** Grants per member and when each is due for a fresh one. */
export class TurnGrants {
  readonly #settings: TurnSettings;
  /** Member → when its grant should be renewed (half its life), ms. */
  readonly #renewAt = new Map<string, number>();

  constructor(settings: TurnSettings) {
    this.#settings = checkTurnSettings(settings);
  }

  /** A fresh grant for a member (the caller has checked it joined). */
  grant(address: string, nowMs: number): IceGrant {
    const ttlMs = this.#settings.ttlSeconds * 1000;
    const expirySeconds = Math.floor((nowMs + ttlMs) / 1000);
    const stun = this.#settings.urls.filter((u) => u.startsWith('stun:'));
    const relay = this.#settings.urls.filter((u) => !u.startsWith('stun:'));
    this.#renewAt.set(address, nowMs + ttlMs / 2);
    return {
      servers: [...(stun.length ? [{ urls: stun }] : []), { urls: relay, ...turnCredential(this.#settings.secret, address, expirySeconds) }],
      expiresAt: expirySeconds * 1000,
    };
  }

  /** Members whose grant is past half its life (each then gets a fresh one from grant()). */
  due(nowMs: number): string[] {
    return [...this.#renewAt].filter(([, at]) => at <= nowMs).map(([a]) => a);
  }

  /** A member left: no renewals for it. */
  forget(address: string): void {
    this.#renewAt.delete(address);
  }

  get members(): number {
    return this.#renewAt.size;
  }
}
