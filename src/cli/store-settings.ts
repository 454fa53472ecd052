// `--store s3 [--store-config FILE]` (tessera coordinator, and tessera swarm, simulate and
// `npm run web` for the coordinator they start): where the run's updates and checkpoints live.
// 'disk' (the default) keeps them in the state folder and serves them itself; 's3' puts them
// in an S3-compatible bucket that contributors upload to and download from directly, with
// presigned URLs. The bucket's settings come from the environment or a JSON file (the file wins field by
// field); the secret is never printed, logged or put in an error message.
//
//   TESSERA_S3_ENDPOINT   https://<account>.r2.cloudflarestorage.com, http://127.0.0.1:7480 …
//                         (absent: AWS S3 itself, for the region)
//   TESSERA_S3_REGION     default us-east-1 (R2: auto)
//   TESSERA_S3_BUCKET     the bucket (it must exist)
//   TESSERA_S3_PREFIX     optional key prefix, for several runs in one bucket
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//   file: {"endpoint", "region", "bucket", "prefix", "accessKeyId", "secretAccessKey", "pathStyle"}
import { readFileSync } from 'node:fs';
import { ObjectStoreError, S3ObjectStore, type S3Settings } from '../coordinator/object-store.ts';

/** A --store setting that cannot be used; `field` names the flag, variable or file field to fix. */
export class StoreSettingsError extends Error {
  override name = 'StoreSettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field} ${message}`);
  }
}

/** The flags, for parseCommandArgs: the same names in every command that starts a coordinator. */
export const STORE_OPTIONS = { store: { type: 'string' }, 'store-config': { type: 'string' } } as const;

export interface StoreFlagValues {
  store?: string;
  'store-config'?: string;
}

export const STORE_USAGE = `
  --store disk|s3     where updates and checkpoints live (default disk: the state folder, served by the coordinator).
                      s3: an S3-compatible bucket; contributors PUT and GET there with presigned
                      URLs. Settings from TESSERA_S3_ENDPOINT, TESSERA_S3_REGION, TESSERA_S3_BUCKET,
                      TESSERA_S3_PREFIX, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or --store-config
                      FILE (JSON: endpoint, region, bucket, prefix, accessKeyId, secretAccessKey).`;

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The bucket settings for --store s3, or null for --store disk (or no --store). */
export function storeSettings(store: string | undefined, configFile: string | undefined, env: Record<string, string | undefined>): S3Settings | null {
  if (store === undefined || store === 'disk') {
    if (configFile !== undefined) throw new StoreSettingsError('--store-config', 'is for --store s3');
    return null;
  }
  if (store !== 's3') throw new StoreSettingsError('--store', `must be 'disk' or 's3', got '${store.slice(0, 40)}'`);
  let file: Record<string, unknown> = {};
  if (configFile !== undefined) {
    try {
      const v: unknown = JSON.parse(readFileSync(configFile, 'utf8'));
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
      file = v as Record<string, unknown>;
    } catch (e) {
      throw new StoreSettingsError('--store-config', `${configFile} cannot be read as JSON (${(e as Error).message})`);
    }
  }
  const pick = (field: string, variable: string): string | undefined => {
    const v = file[field] ?? env[variable];
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string') throw new StoreSettingsError(`${field} in ${configFile}`, 'must be a string');
    return v;
  };
  const need = (field: string, variable: string): string => {
    const v = pick(field, variable);
    if (v === undefined) throw new StoreSettingsError(variable, `is needed with --store s3 (or "${field}" in --store-config)`);
    return v;
  };
  const endpoint = pick('endpoint', 'TESSERA_S3_ENDPOINT');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) throw new StoreSettingsError('TESSERA_S3_ENDPOINT', `must be an http(s) URL, got '${endpoint.slice(0, 60)}'`);
  const bucket = need('bucket', 'TESSERA_S3_BUCKET');
  if (!BUCKET_NAME.test(bucket)) throw new StoreSettingsError('TESSERA_S3_BUCKET', `'${bucket.slice(0, 70)}' is not a bucket name (3–63 of a-z 0-9 . -)`);
  const pathStyle = file.pathStyle;
  if (pathStyle !== undefined && typeof pathStyle !== 'boolean') throw new StoreSettingsError(`pathStyle in ${configFile}`, 'must be true or false');
  return {
    endpoint,
    region: pick('region', 'TESSERA_S3_REGION') ?? 'us-east-1',
    bucket,
    prefix: pick('prefix', 'TESSERA_S3_PREFIX'),
    accessKeyId: need('accessKeyId', 'AWS_ACCESS_KEY_ID'),
    secretAccessKey: need('secretAccessKey', 'AWS_SECRET_ACCESS_KEY'),
    forcePathStyle: pathStyle,
  };
}

/**
 * Opens the bucket and checks that it answers to these credentials (a clear error at start,
 * not at the first round); then lets browsers use presigned URLs (CORS), or says why not.
 */
export async function openBucket(settings: S3Settings, log: (line: string) => void): Promise<S3ObjectStore> {
  const store = new S3ObjectStore(settings);
  await store.check();
  await store.allowBrowsers().catch((e: unknown) => log(`${(e as Error).message}; browser contributors need a CORS rule allowing GET and PUT from any origin on this bucket (see README)`));
  log(`updates are stored in ${store.description}: contributors upload and download there directly (checkpoints too)`);
  return store;
}

/** The settings of the --store flags (null: the disk), checked without opening anything; StoreSettingsError says what to fix. */
export function storeFromFlags(values: StoreFlagValues, env: Record<string, string | undefined> = process.env): S3Settings | null {
  return storeSettings(values.store, values['store-config'], env);
}

/** --store and --store-config as given: the bucket, opened and checked, or undefined for the disk; StoreSettingsError says what to fix. */
export async function bucketFromFlags(store: string | undefined, configFile: string | undefined, env: Record<string, string | undefined>, log: (line: string) => void): Promise<S3ObjectStore | undefined> {
  return openStore(storeSettings(store, configFile, env), log);
}

/** The bucket of settings from storeFromFlags, opened and checked; undefined for the disk. */
export async function openStore(settings: S3Settings | null, log: (line: string) => void): Promise<S3ObjectStore | undefined> {
  if (!settings) return undefined;
  try {
    return await openBucket(settings, log);
  } catch (e) {
    if (e instanceof ObjectStoreError) throw new StoreSettingsError('--store s3:', `${e.message} (or leave out --store s3 to keep updates in the state folder)`);
    throw e;
  }
}
