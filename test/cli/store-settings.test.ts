// --store and its settings: the disk by default, a bucket from the environment or a file, and
// every mistake named by the variable or field to fix — never echoing the secret.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreSettingsError, storeSettings } from '../../src/cli/store-settings.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-store-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ENV = { TESSERA_S3_ENDPOINT: 'http://127.0.0.1:7480', TESSERA_S3_BUCKET: 'tessera-run', AWS_ACCESS_KEY_ID: 'AKID', AWS_SECRET_ACCESS_KEY: 'very-secret' };

describe('storeSettings', () => {
  it('is the disk unless --store s3', () => {
    expect(storeSettings(undefined, undefined, ENV)).toBeNull();
    expect(storeSettings('disk', undefined, ENV)).toBeNull();
    expect(() => storeSettings('disk', 'x.json', ENV)).toThrow('--store-config is for --store s3');
    expect(() => storeSettings('gcs', undefined, ENV)).toThrow("--store must be 'disk' or 's3', got 'gcs'");
  });

  it('reads the environment; a file overrides it field by field', () => {
    expect(storeSettings('s3', undefined, ENV)).toEqual({ endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', bucket: 'tessera-run', prefix: undefined, accessKeyId: 'AKID', secretAccessKey: 'very-secret', forcePathStyle: undefined });
    const file = join(dir, 's3.json');
    writeFileSync(file, JSON.stringify({ bucket: 'other-bucket', region: 'auto', prefix: 'runs/a', pathStyle: false }));
    expect(storeSettings('s3', file, ENV)).toMatchObject({ bucket: 'other-bucket', region: 'auto', prefix: 'runs/a', forcePathStyle: false, accessKeyId: 'AKID' });
  });

  it('names what is missing or wrong, and never prints the secret', () => {
    const { AWS_SECRET_ACCESS_KEY: _, ...noSecret } = ENV;
    expect(() => storeSettings('s3', undefined, noSecret)).toThrow('AWS_SECRET_ACCESS_KEY is needed with --store s3 (or "secretAccessKey" in --store-config)');
    expect(() => storeSettings('s3', undefined, { ...ENV, TESSERA_S3_BUCKET: 'Bad_Bucket' })).toThrow(/TESSERA_S3_BUCKET 'Bad_Bucket' is not a bucket name/);
    expect(() => storeSettings('s3', undefined, { ...ENV, TESSERA_S3_ENDPOINT: 'ftp://x' })).toThrow(/TESSERA_S3_ENDPOINT must be an http\(s\) URL/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"bucket": ');
    expect(() => storeSettings('s3', bad, ENV)).toThrow(StoreSettingsError);
    const numeric = join(dir, 'numeric.json');
    writeFileSync(numeric, JSON.stringify({ secretAccessKey: 42 }));
    expect(() => storeSettings('s3', numeric, ENV)).toThrow(/secretAccessKey in .* must be a string/);
    for (const env of [noSecret, { ...ENV, TESSERA_S3_BUCKET: 'Bad_Bucket' }]) {
      try {
        storeSettings('s3', undefined, env);
      } catch (e) {
        expect((e as Error).message).not.toContain('very-secret');
      }
    }
  });
});
