// The simulate benchmark's plot: bytes per peer per round and the coordinator's control
// bytes per round against N, log-log, before (all-to-all) and after (gather-K), as an SVG
// written here and rendered to PNG by headless Chromium (playwright-core and /usr/bin/chromium
// are already what test/e2e uses: no new dependency, and the SVG stays readable beside it).
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

export interface PlotSeries {
  label: string;
  colour: string;
  dashed?: boolean;
  points: { n: number; value: number }[];
}

const W = 560;
const H = 360;
const PAD = { left: 70, right: 20, top: 34, bottom: 46 };

const decades = (lo: number, hi: number) => {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
};

function human(v: number, unit: string): string {
  if (unit !== 'B') return String(v);
  return v >= 1e9 ? `${v / 1e9} GB` : v >= 1e6 ? `${v / 1e6} MB` : v >= 1e3 ? `${v / 1e3} kB` : `${v} B`;
}

/** One log-log panel: N across, the series' values up. */
export function panelSvg(title: string, unit: string, series: PlotSeries[], x0: number): string {
  const all = series.flatMap((s) => s.points).filter((p) => p.value > 0);
  const ns = all.map((p) => p.n);
  const vs = all.map((p) => p.value);
  const [nLo, nHi] = [Math.min(...ns) / 1.3, Math.max(...ns) * 1.3];
  const yTicks = decades(Math.min(...vs), Math.max(...vs));
  const [vLo, vHi] = [yTicks[0], yTicks[yTicks.length - 1]];
  const x = (n: number) => x0 + PAD.left + ((Math.log(n) - Math.log(nLo)) / (Math.log(nHi) - Math.log(nLo))) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (Math.log(v) - Math.log(vLo)) / (Math.log(vHi) - Math.log(vLo))) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`];
  for (const t of yTicks) parts.push(`<line x1="${x0 + PAD.left}" x2="${x0 + W - PAD.right}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="${x0 + PAD.left - 6}" y="${y(t) + 4}" text-anchor="end" font-size="11">${human(t, unit)}</text>`);
  for (const n of [...new Set(ns)].sort((a, b) => a - b)) parts.push(`<line x1="${x(n)}" x2="${x(n)}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#eee"/><text x="${x(n)}" y="${H - PAD.bottom + 16}" text-anchor="middle" font-size="11">${n}</text>`);
  parts.push(`<text x="${x0 + W / 2}" y="${H - 8}" text-anchor="middle" font-size="12">peers N</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.value > 0);
    parts.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((p) => `${x(p.n)},${y(p.value)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${x(p.n)}" cy="${y(p.value)}" r="3" fill="${s.colour}"/>`);
    parts.push(`<text x="${x0 + PAD.left + 8}" y="${PAD.top + 14 + 14 * i}" font-size="11" fill="${s.colour}">${s.label}</text>`);
  });
  return parts.join('\n');
}

export function plotSvg(panels: { title: string; unit: string; series: PlotSeries[] }[]): string {
  const body = panels.map((p, i) => panelSvg(p.title, p.unit, p.series, i * W)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * panels.length}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

/** Writes `svg` to svgPath and its rendering to pngPath. */
export async function writePlot(svg: string, svgPath: string, pngPath: string): Promise<void> {
  writeFileSync(svgPath, svg);
  const browser = await chromium.launch({ executablePath: process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium', headless: true });
  try {
    const page = await browser.newPage();
    await page.setContent(`<html><body style="margin:0">${svg}</body></html>`);
    await page.locator('svg').screenshot({ path: pngPath });
  } finally {
    await browser.close();
  }
}
