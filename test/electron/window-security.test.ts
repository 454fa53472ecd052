import { describe, expect, it } from 'vitest';
import { appProtocolHandler, mimeType, resolveAppFile } from '../../electron/services/app-protocol.ts';
import { trustedOrigin } from '../../electron/services/ipc-guard.ts';
import {
  contentSecurityPolicy, coordinatorOrigins, guardWebContents, permissionAllowed, secureWebPreferences, type GuardedWebContents, type PreventableEvent,
} from '../../electron/services/window-security.ts';

function directives(csp: string): Record<string, string[]> {
  return Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
}

describe('web preferences', () => {
  it('isolate, sandbox and keep Node out of both windows; only the training window runs unthrottled', () => {
    for (const role of ['ui', 'training'] as const) {
      expect(secureWebPreferences('/p.cjs', role)).toMatchObject({
        preload: '/p.cjs', contextIsolation: true, sandbox: true, nodeIntegration: false, nodeIntegrationInWorker: false,
        nodeIntegrationInSubFrames: false, webviewTag: false, webSecurity: true, allowRunningInsecureContent: false,
      });
    }
    expect(secureWebPreferences('/p.cjs', 'ui').backgroundThrottling).toBe(true);
    expect(secureWebPreferences('/p.cjs', 'training').backgroundThrottling).toBe(false);
  });
});

describe('Content Security Policy', () => {
  it('connects only to the app and the coordinator (WebSocket and its HTTP twin)', () => {
    const csp = directives(contentSecurityPolicy('wss://coord.example.org:9000/ws'));
    expect(csp['connect-src']).toEqual(["'self'", 'wss://coord.example.org:9000', 'https://coord.example.org:9000']);
    expect(coordinatorOrigins('ws://127.0.0.1:8787/ws')).toEqual(['ws://127.0.0.1:8787', 'http://127.0.0.1:8787']);
  });

  it('no inline script or eval; WebAssembly allowed for the wallet; nothing by default', () => {
    const csp = directives(contentSecurityPolicy('ws://127.0.0.1:8787/ws'));
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(csp['object-src']).toEqual(["'none'"]);
    expect(csp['frame-ancestors']).toEqual(["'none'"]);
    expect(Object.values(csp).flat()).not.toContain("'unsafe-eval'");
  });

  it('the dev server adds its own origin and hot-reload socket, nothing else', () => {
    const csp = directives(contentSecurityPolicy('ws://127.0.0.1:8787/ws', 'http://localhost:5173/'));
    expect(csp['connect-src']).toEqual(["'self'", 'ws://127.0.0.1:8787', 'http://127.0.0.1:8787', 'http://localhost:5173', 'ws://localhost:5173']);
  });
});

class FakeContents implements GuardedWebContents {
  listeners = new Map<string, (event: PreventableEvent & { url: string }) => void>();
  openHandler: ((details: { url: string }) => { action: 'deny' }) | null = null;
  on(event: string, listener: (event: PreventableEvent & { url: string }) => void) {
    this.listeners.set(event, listener);
    return this;
  }
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }) {
    this.openHandler = handler;
  }
  fire(event: string, url = '') {
    let prevented = false;
    this.listeners.get(event)!({ url, preventDefault: () => (prevented = true) });
    return prevented;
  }
}

describe('navigation guards', () => {
  it('deny navigation, redirects and webviews; new windows never open, https links go to the browser', () => {
    const contents = new FakeContents();
    const opened: string[] = [];
    const logged: string[] = [];
    guardWebContents(contents, { openExternal: (url) => opened.push(url), log: (m) => logged.push(m) });
    expect(contents.fire('will-navigate', 'https://evil.example')).toBe(true);
    expect(contents.fire('will-redirect', 'https://evil.example')).toBe(true);
    expect(contents.fire('will-attach-webview')).toBe(true);
    expect(contents.openHandler!({ url: 'https://docs.example.org' })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'http://plain.example.org' })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'file:///etc/passwd' })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'javascript:alert(1)' })).toEqual({ action: 'deny' });
    // Credentials in the link: refused, with a password or a user name alone.
    for (const url of ['https://user:password@docs.example.org', 'https://docs.example.org@evil.example', 'https://:secret@docs.example.org/']) {
      expect(contents.openHandler!({ url })).toEqual({ action: 'deny' });
    }
    expect(opened).toEqual(['https://docs.example.org']);
    expect(logged.join('\n')).not.toMatch(/password|secret/); // a refused link's password is not logged either
    expect(logged.some((m) => m.includes('https://docs.example.org/ (credentials removed)'))).toBe(true);
  });

  it('grants only clipboard writes, only to the app', () => {
    const app = trustedOrigin('app://tessera/index.html');
    expect(permissionAllowed('clipboard-sanitized-write', 'app://tessera/index.html', app)).toBe(true);
    expect(permissionAllowed('clipboard-sanitized-write', 'https://evil.example', app)).toBe(false);
    for (const p of ['media', 'geolocation', 'notifications', 'openExternal', 'clipboard-read']) expect(permissionAllowed(p, 'app://tessera', app)).toBe(false);
  });
});

describe('app:// protocol', () => {
  const root = '/opt/tessera/dist/renderer';

  it('maps app URLs into the build folder and refuses everything outside it', () => {
    expect(resolveAppFile(root, 'app://tessera/index.html?role=training')).toBe(`${root}/index.html`);
    expect(resolveAppFile(root, 'app://tessera/')).toBe(`${root}/index.html`);
    expect(resolveAppFile(root, 'app://tessera/assets/worker-1.js')).toBe(`${root}/assets/worker-1.js`);
    // The URL parser itself resolves dot segments at the root: this one stays inside the folder.
    expect(resolveAppFile(root, 'app://tessera/%2e%2e/%2e%2e/etc/passwd')).toBe(`${root}/etc/passwd`);
    // Encoded slashes survive the parser and are decoded here: refused.
    expect(resolveAppFile(root, 'app://tessera/..%2f..%2fsecret')).toBeNull();
    expect(resolveAppFile(root, 'app://tessera/a%00b')).toBeNull();
    expect(resolveAppFile(root, 'app://other/index.html')).toBeNull();
    expect(resolveAppFile(root, 'https://tessera/index.html')).toBeNull();
    expect(resolveAppFile(root, 'app://tessera/%E0%A4%A')).toBeNull();
  });

  it('serves files with their type and the CSP (pages and worker scripts); missing files are 404', async () => {
    const files = new Map([[`${root}/index.html`, '<html></html>'], [`${root}/app.js`, 'x']]);
    const handler = appProtocolHandler(root, { readFile: async (p) => Buffer.from(files.get(p) ?? (() => { throw new Error('ENOENT'); })()) }, () => "default-src 'none'");
    const page = await handler({ url: 'app://tessera/index.html' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe('<html></html>');
    const script = await handler({ url: 'app://tessera/app.js' });
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect((await handler({ url: 'app://tessera/missing.js' })).status).toBe(404);
    expect((await handler({ url: 'app://tessera/../../etc/passwd' })).status).toBe(404);
    expect(mimeType('x.wasm')).toBe('application/wasm');
  });
});
