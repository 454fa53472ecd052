// The renderer build is served from app://tessera/ (a privileged, standard, secure scheme)
// rather than file://: pages get a real origin for IndexedDB, workers, the CSP and the IPC
// sender checks, and only files inside the build folder can be read.
import { extname, resolve, sep } from 'node:path';

export const APP_SCHEME = 'app';
export const APP_HOST = 'tessera';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const UI_PAGE_URL = `${APP_ORIGIN}/index.html`;
export const TRAINING_PAGE_URL = `${APP_ORIGIN}/index.html?role=training`;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.wgsl': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

export function mimeType(path: string): string {
  return MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** The file under `root` that an app:// URL names, or null for another host or a path outside root. */
export function resolveAppFile(root: string, requestUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return null;
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== APP_HOST) return null;
  let pathname: string;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    return null;
  }
  if (pathname.includes('\0')) return null;
  const base = resolve(root);
  const file = resolve(base, `.${pathname === '/' ? '/index.html' : pathname}`);
  return file.startsWith(base + sep) ? file : null;
}

export interface AppFileReader {
  readFile(path: string): Promise<Uint8Array>;
}

/**
 * The protocol.handle handler: files from root, each with the CSP — a worker takes its
 * policy from its own script's response, not from the page that started it.
 */
export function appProtocolHandler(root: string, files: AppFileReader, csp: () => string): (request: { url: string }) => Promise<Response> {
  return async (request) => {
    const file = resolveAppFile(root, request.url);
    if (!file) return new Response('not found', { status: 404 });
    let body: Uint8Array;
    try {
      body = await files.readFile(file);
    } catch {
      return new Response('not found', { status: 404 });
    }
    const headers = { 'content-type': mimeType(file), 'x-content-type-options': 'nosniff', 'content-security-policy': csp() };
    return new Response(body, { status: 200, headers });
  };
}
