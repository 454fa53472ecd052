// The TURN flags `tessera coordinator` and `tessera swarm` share: which coturn the run uses
// (--turn URLs) and its shared secret, read from a file (--turn-secret-file) or the
// TESSERA_TURN_SECRET environment variable — never from the command line or the run config,
// and never printed.
import { readFileSync } from 'node:fs';
import { DEFAULT_TURN_TTL_SECONDS, TurnGrants, TurnSettingsError } from '../coordinator/turn.ts';

export type { TurnGrants } from '../coordinator/turn.ts';

export const TURN_SECRET_ENV = 'TESSERA_TURN_SECRET';

export const TURN_OPTIONS = {
  turn: { type: 'string' },
  'turn-secret-file': { type: 'string' },
  'turn-ttl': { type: 'string' },
} as const;

export const TURN_USAGE = `  TURN (a coturn beside the coordinator, see README): --turn URL[,URL…] (stun:, turn:,
  turns: URLs, e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:443?transport=tcp)
  with coturn's static-auth-secret in --turn-secret-file FILE or $${TURN_SECRET_ENV}. Each
  member gets its own credentials, valid --turn-ttl seconds (default ${DEFAULT_TURN_TTL_SECONDS}) and renewed
  before they expire.`;

export interface TurnFlagValues {
  turn?: string;
  'turn-secret-file'?: string;
  'turn-ttl'?: string;
}

/** The run's TURN grants from the flags; null without --turn. Every mistake names its flag (thrown as `mistake` makes it). */
export function turnFromFlags(values: TurnFlagValues, mistake: (message: string) => Error, env: NodeJS.ProcessEnv = process.env): TurnGrants | null {
  try {
    return grantsFrom(values, env);
  } catch (e) {
    throw e instanceof TurnSettingsError ? mistake(e.message) : e;
  }
}

function grantsFrom(values: TurnFlagValues, env: NodeJS.ProcessEnv): TurnGrants | null {
  if (values.turn === undefined) {
    if (values['turn-secret-file'] !== undefined || values['turn-ttl'] !== undefined) throw new TurnSettingsError('--turn', 'is needed with --turn-secret-file and --turn-ttl: the URLs of the TURN server');
    return null;
  }
  let secret: string;
  const file = values['turn-secret-file'];
  if (file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new TurnSettingsError('--turn-secret-file', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the file holding coturn's static-auth-secret`);
    }
  } else {
    const fromEnv = env[TURN_SECRET_ENV];
    if (fromEnv === undefined) throw new TurnSettingsError('--turn-secret-file', `(or $${TURN_SECRET_ENV}) is needed with --turn: coturn's static-auth-secret`);
    secret = fromEnv.trim();
  }
  const ttl = values['turn-ttl'] === undefined ? DEFAULT_TURN_TTL_SECONDS : Number(values['turn-ttl']);
  const urls = values.turn.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  return new TurnGrants({ urls, secret, ttlSeconds: ttl });
}
