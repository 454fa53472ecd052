// The e2e harness itself: static server, skip guard, bundle cache, and that a page's console
// lines reach the test output and its errors (page or worker) fail the test at once.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  browserSkipReason,
  bundleForBrowser,
  launchChromium,
  openPage,
  servePage,
  startStaticServer,
  type Browser,
  type StaticServer,
  type TestPage,
} from './harness.ts';

const skip = browserSkipReason();
if (skip) console.warn(skip);

describe('harness (no browser)', () => {
  it('serves routes with their content types, 404 otherwise', async () => {
    const s = await startStaticServer({
      '/': '<p>hi</p>',
      '/a.js': 'export {}',
      '/b.bin': new Uint8Array([1, 2, 3]),
      '/c': { body: '{}', type: 'application/json' },
    });
    try {
      const get = (p: string) => fetch(`${s.url}${p}`);
      expect((await get('/')).headers.get('content-type')).toMatch(/^text\/html/);
      expect((await get('/a.js')).headers.get('content-type')).toMatch(/^text\/javascript/);
      expect(new Uint8Array(await (await get('/b.bin')).arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
      expect((await get('/c')).headers.get('content-type')).toBe('application/json');
      expect((await get('/nope')).status).toBe(404);
      s.set('/late.txt', 'late');
      expect(await (await get('/late.txt')).text()).toBe('late');
    } finally {
      await s.close();
    }
  });

  it('names the package to install when chromium or SwiftShader is missing', () => {
    expect(browserSkipReason(['/nonexistent/chromium'])).toMatch(/apt-get install chromium/);
    expect(browserSkipReason([])).toBeNull();
  });

  it('bundles once per entry and options, with WGSL as text', async () => {
    const first = bundleForBrowser('test/e2e/pages/engine-worker.ts');
    expect(bundleForBrowser('test/e2e/pages/engine-worker.ts')).toBe(first);
    const js = await first;
    expect(js).toContain('alias S = f32;'); // shaders/matmul.wgsl, inlined
    expect(js).not.toMatch(/\brequire\(/);
  });
});

describe.skipIf(skip !== null)('harness pages', () => {
  let server: StaticServer;
  let browser: Browser;
  const pages: TestPage[] = [];
  const open = async () => {
    const p = await openPage(browser, `${server.url}/`, { prefix: '[faults]', timeoutMs: 20_000 });
    pages.push(p);
    await p.bridge.next('ready');
    return p;
  };

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      servePage({ page: 'test/e2e/pages/faults-page.ts', workers: { 'faults-worker': 'test/e2e/pages/faults-worker.ts' } }),
      launchChromium(),
    ]);
  });
  afterAll(async () => {
    for (const p of pages) await p.close();
    await browser?.close();
    await server?.close();
  });

  it("prints the page's and its worker's console lines with a prefix", async () => {
    const tab = await open();
    const log = vi.spyOn(console, 'log');
    try {
      await tab.bridge.send({ type: 'log', text: 'hello' });
      expect((await tab.bridge.next('log:done')).length).toBe(5);
      // Worker console messages can trail the reply a little.
      await vi.waitFor(() => {
        const lines = log.mock.calls.map((c) => String(c[0]));
        expect(lines).toContain('[faults] page says hello');
        expect(lines).toContain('[faults] (worker /faults-worker.js) worker says hello');
      });
    } finally {
      log.mockRestore();
    }
  });

  it("a worker handler's throw rejects that call in the page, nothing else", async () => {
    const tab = await open();
    await tab.bridge.send({ type: 'worker-throws', text: 'boom' });
    expect((await tab.bridge.next('worker-throws:done')).caught).toMatch(/boom/);
    expect(tab.errors).toEqual([]);
  });

  it.each([
    ['page-throws', /page error: .*bang page-throws/],
    ['page-rejects', /page error: .*bang page-rejects/],
    ['worker-fatal', /page error: .*worker \/faults-worker\.js: uncaught: .*bang worker-fatal/],
    ['worker-rejects', /page error: .*worker \/faults-worker\.js: uncaught: .*bang worker-rejects/],
    ['bad-worker', /page error: worker \/missing-worker\.js: failed to load/],
  ])('%s: fails the waiting test at once', async (type, message) => {
    const tab = await open();
    const t0 = performance.now();
    await tab.bridge.send({ type, text: `bang ${type}` });
    await expect(tab.bridge.next('never-sent')).rejects.toThrow(message);
    expect(performance.now() - t0).toBeLessThan(10_000);
    await expect(tab.guard(new Promise(() => {}))).rejects.toThrow(message);
  });
});
