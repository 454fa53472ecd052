// Window hardening: web preferences (isolated, sandboxed, no Node), the Content Security
// Policy, and guards that deny navigation, new windows, webviews and permission requests.
import type { TrustedPage } from './ipc-guard.ts';

export interface SecureWebPreferences {
  preload: string;
  contextIsolation: true;
  sandbox: true;
  nodeIntegration: false;
  nodeIntegrationInWorker: false;
  nodeIntegrationInSubFrames: false;
  webviewTag: false;
  webSecurity: true;
  allowRunningInsecureContent: false;
  spellcheck: false;
  backgroundThrottling: boolean;
}

/**
 * The training window keeps running hidden (backgroundThrottling off); the UI window is
 * throttled like any hidden page.
 */
export function secureWebPreferences(preload: string, role: 'ui' | 'training'): SecureWebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webviewTag: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    spellcheck: false,
    backgroundThrottling: role === 'ui',
  };
}

/** The coordinator's WebSocket origin and its HTTP twin (it serves both on one port). */
export function coordinatorOrigins(coordinatorUrl: string): string[] {
  const url = new URL(coordinatorUrl);
  const http = url.protocol === 'wss:' ? 'https:' : 'http:';
  return [`${url.protocol}//${url.host}`, `${http}//${url.host}`];
}

/**
 * 'wasm-unsafe-eval': the wallet's sr25519 runs in WebAssembly (@polkadot/wasm-crypto).
 * Inline styles are allowed (React and uPlot set them); inline scripts and eval are not.
 * WebRTC to peers is not governed by connect-src.
 */
export function contentSecurityPolicy(coordinatorUrl: string, devServerOrigin: string | null = null): string {
  const connect = ["'self'", ...coordinatorOrigins(coordinatorUrl)];
  const script = ["'self'", "'wasm-unsafe-eval'"];
  if (devServerOrigin) {
    // Vite's dev server: hot reload over its WebSocket and its inline React-refresh preamble.
    const dev = new URL(devServerOrigin);
    connect.push(dev.origin, `ws://${dev.host}`);
    script.push("'unsafe-inline'");
  }
  return [
    "default-src 'none'",
    `script-src ${script.join(' ')}`,
    "worker-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

export interface PreventableEvent {
  preventDefault(): void;
}

export interface GuardedWebContents {
  on(event: 'will-navigate' | 'will-redirect', listener: (event: PreventableEvent & { url: string }) => void): unknown;
  on(event: 'will-attach-webview', listener: (event: PreventableEvent) => void): unknown;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
}

export interface WindowGuardOptions {
  /** Opens http(s) links (documentation, a block explorer) in the user's browser. */
  openExternal: (url: string) => void;
  log?: (message: string) => void;
}

/**
 * Links the user clicks that may leave the app, in their browser: https only, and never with
 * credentials in the link (`https://user:password@host` would hand a password to whoever the
 * link names, or dress a phishing host up as a trusted one: `https://docs.example@evil`).
 */
export function externalLinkAllowed(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}

/** A URL for the log, without any user name or password it carries. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return `${u.href} (credentials removed)`;
  } catch {
    return url;
  }
}

export function guardWebContents(contents: GuardedWebContents, options: WindowGuardOptions): void {
  const log = options.log ?? (() => {});
  const deny = (event: PreventableEvent & { url: string }) => {
    event.preventDefault();
    log(`navigation to ${withoutCredentials(event.url)} denied`);
  };
  contents.on('will-navigate', deny);
  contents.on('will-redirect', deny);
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    if (externalLinkAllowed(url)) options.openExternal(url);
    else log(`new window for ${withoutCredentials(url)} denied`);
    return { action: 'deny' };
  });
}

/** Permission requests: only writing to the clipboard (the address's copy button), only from the app. */
export function permissionAllowed(permission: string, requestingUrl: string, isAppOrigin: TrustedPage): boolean {
  return permission === 'clipboard-sanitized-write' && isAppOrigin(requestingUrl);
}
