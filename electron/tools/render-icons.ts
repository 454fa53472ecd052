// Renders the app icon and the tray icons (one per state) from public/icon.svg into PNGs in
// public/, with Debian's chromium through playwright-core. The PNGs are committed; rerun this
// after changing the SVG:   npx tsx electron/tools/render-icons.ts
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { TrayState } from '../contract.ts';

const PUBLIC = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'public');
const CHROMIUM = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';

/** The tray variant of the logo: grey when idle, a pause badge when paused, a red ! on error. */
export function traySvg(logo: string, state: TrayState): string {
  const inner = logo.replace(/^[\s\S]*?<svg[^>]*>/, '').replace(/<\/svg>\s*$/, '');
  const grey = state === 'idle' || state === 'error';
  const filter = grey ? '<filter id="grey"><feColorMatrix type="saturate" values="0.1"/></filter>' : '';
  const badge = state === 'paused'
    ? '<circle cx="46" cy="46" r="17" fill="#14161c"/><rect x="37" y="36" width="6" height="20" rx="1.5" fill="#fff"/><rect x="49" y="36" width="6" height="20" rx="1.5" fill="#fff"/>'
    : state === 'error'
      ? '<circle cx="46" cy="46" r="17" fill="#e5343f" stroke="#fff" stroke-width="2"/><rect x="43" y="33" width="6" height="16" rx="2" fill="#fff"/><circle cx="46" cy="55" r="3.4" fill="#fff"/>'
      : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">${filter}<g${grey ? ' filter="url(#grey)" opacity="0.85"' : ''}>${inner}</g>${badge}</svg>`;
}

async function main(): Promise<void> {
  const logo = await readFile(join(PUBLIC, 'icon.svg'), 'utf8');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const render = async (svg: string, size: number, file: string) => {
      await page.setViewportSize({ width: size, height: size });
      const html = `<html><body style="margin:0;background:transparent"><img style="display:block;width:${size}px;height:${size}px" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}"></body></html>`;
      await page.setContent(html);
      await page.waitForFunction('document.images[0]?.complete');
      await writeFile(join(PUBLIC, file), await page.screenshot({ omitBackground: true }));
      console.log(`public/${file} (${size}×${size})`);
    };
    await render(logo, 512, 'icon.png');
    for (const state of ['idle', 'training', 'paused', 'error'] as const) {
      await render(traySvg(logo, state), 16, `tray-${state}.png`);
      await render(traySvg(logo, state), 32, `tray-${state}@2x.png`);
    }
  } finally {
    await browser.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
