// The static side of `npm run web` (src/node/web-command.ts serveStatic): the built page's
// files with their types, /local.json naming the coordinator, and nothing outside the folder.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic, type WebServer } from '../../src/cli/web-command.ts';

/** A raw GET (node:http keeps the path exactly as given, unlike fetch). */
function get(base: string, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('npm run web: the page server', () => {
  let dir: string;
  let web: WebServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-web-static-'));
    mkdirSync(join(dir, 'site/assets'), { recursive: true });
    writeFileSync(join(dir, 'site/index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'site/assets/app.js'), 'export {};');
    writeFileSync(join(dir, 'secret.txt'), 'outside');
    web = await serveStatic(join(dir, 'site'), { coordinator: 'ws://127.0.0.1:1234/ws' }, { port: 0 });
  });

  afterAll(async () => {
    await web?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its files and the local coordinator address', async () => {
    expect(await get(web.url, '/')).toMatchObject({ status: 200, type: expect.stringMatching(/text\/html/) });
    expect(await get(web.url, '/assets/app.js')).toMatchObject({ status: 200, type: expect.stringMatching(/javascript/), body: 'export {};' });
    const local = await get(web.url, '/local.json');
    expect(JSON.parse(local.body)).toEqual({ coordinator: 'ws://127.0.0.1:1234/ws' });
  });

  it('refuses what is not a file of the page', async () => {
    expect((await get(web.url, '/nothing.js')).status).toBe(404);
    expect((await get(web.url, '/assets')).status).toBe(404);
    expect((await get(web.url, '/..%2fsecret.txt')).status).toBe(403);
    expect((await get(web.url, '/%E0%A4%A')).status).toBe(400);
    expect((await get(web.url, '/', 'POST')).status).toBe(405);
  });

  it('says to build first when the folder has no page', async () => {
    await expect(serveStatic(dir + '/none', { coordinator: null }, { port: 0 })).rejects.toThrow(/npm run build:web/);
  });
});
