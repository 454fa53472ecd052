// The contributor UI end to end, as a new user meets it: the page `npm run web` serves (built
// by Vite), with its embedded local coordinator (validating on SwiftShader, so rewards come),
// in headless Chromium with WebGPU on SwiftShader. A user creates a wallet (words, check,
// password), picks the local run, sees the GPU check, presses Contribute, watches the loss
// chart grow and a reward arrive; reloads and carries on; a second tab of the same browser
// profile finds the wallet in use, takes a wallet of its own, and both complete a round
// together; that tab's reload keeps its wallet. Along the way: the network step says how to
// host a run (the shipped list is empty), the GPU step and the main view say what the run is
// and how far it has come, start-up progress, the bytes sent and why, rewards with their unit,
// and a list of runs fetched in Settings (a bad entry dropped). Screenshots of each main view go to
// test/e2e/screenshots/ (as <name>.tmp.png; TESSERA_SCREENSHOTS=update writes <name>.png).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { readRunFile } from '../../src/cli/coordinator-command.ts';
import { LOCAL_RUN, startWeb, type StartedWeb } from '../../src/cli/web-command.ts';
import { REPO_ROOT, browserSkipReason, launchChromium, openPage, type Browser, type Page, type TestPage } from './harness.ts';

/** A page's errors and a guard against them, as TestPage has: for a second tab of a TestPage's context. */
type Tab = Pick<TestPage, 'page' | 'errors' | 'guard'>;

async function anotherTab(of: TestPage, prefix: string): Promise<Tab> {
  const page = await of.context.newPage();
  const errors: Error[] = [];
  let fail!: (e: Error) => void;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  page.on('console', (m) => {
    if (m.type() === 'debug') return;
    const line = `${prefix}${m.worker() ? ' (worker)' : ''} ${m.type() === 'log' ? '' : `${m.type()}: `}${m.text()}`;
    if (m.type() === 'error' || m.type() === 'warning') console.warn(line);
    else console.log(line);
  });
  page.on('pageerror', (e) => {
    console.error(`${prefix} uncaught: ${e.stack ?? e.message}`);
    errors.push(e);
    fail(new Error(`${prefix} page error: ${e.message}`, { cause: e }));
  });
  const guard = <T,>(work: Promise<T>, what = 'the page', ms = 60_000): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${prefix} timed out after ${ms} ms waiting for ${what}`)), ms)));
    return Promise.race([work, failed, timeout]).finally(() => clearTimeout(timer));
  };
  return { page, errors, guard };
}

const skip = browserSkipReason();
if (skip) console.warn(skip);

const PASSWORD = 'correct horse battery';
const SHOTS = join(REPO_ROOT, 'test/e2e/screenshots');
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}${process.env.TESSERA_SCREENSHOTS === 'update' ? '' : '.tmp'}.png`), fullPage: true });
/** SwiftShader on 2 busy cores: compiling the kernels and a round take a while, never this long. */
const WAIT_MS = 90_000;

describe.skipIf(skip !== null)('the contributor web page', () => {
  let work: string;
  let web: StartedWeb;
  let browser: Browser;
  const tabs: TestPage[] = [];
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tessera-e2e-ui-'));
    const dist = join(work, 'dist');
    const built = build({ configFile: join(REPO_ROOT, 'renderer/vite.config.ts'), build: { outDir: dist, emptyOutDir: true, sourcemap: false }, logLevel: 'warn' });
    const config = readRunFile(undefined, { ...LOCAL_RUN, run: 'e2e-ui', innerSteps: 2, roundSeconds: 45 });
    [, browser] = await Promise.all([built, launchChromium()]);
    web = await startWeb({ port: 0, config, staticDir: dist, stateDir: join(work, 'state'), validate: true, software: true, log: (l) => console.log(`[coordinator] ${elapsed()} ${l}`) });
    // A list of known runs for Settings to fetch: this run (an example the test made), and an entry the page must drop.
    const runs = [
      { name: 'This test’s run', description: 'An example entry written by the UI test: the local coordinator of this test.', coordinator: web.coordinator.server.url, owner: 'the UI test', model: 'tiny' },
      { name: 'Not a run', coordinator: 'javascript:alert(1)' },
    ];
    writeFileSync(join(dist, 'runs.json'), JSON.stringify({ runs }));
    console.log(`page at ${web.web.url}, coordinator ${web.coordinator.server.url}, ready at ${elapsed()}`);
  });

  afterAll(async () => {
    for (const t of tabs) await t.close();
    await browser?.close();
    await web?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    console.log(`stopped at ${elapsed()}`);
  });

  /** Waits until the chart `testId` has `n` points, failing early on a page error. */
  const chartPoints = (tab: Tab, testId: string, n: number, what: string, timeout = WAIT_MS) =>
    tab.guard(
      tab.page.waitForFunction(([id, min]) => Number((globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string } | null } }).document.querySelector(`[data-testid=${id}]`)?.getAttribute('data-points')) >= min, [testId, n] as const, { timeout, polling: 250 }),
      what,
      timeout + 1000,
    );
  const text = (page: Page, testId: string) => page.getByTestId(testId).innerText();
  const logLines = (page: Page) => page.locator('.log li').allTextContents();

  /** A new user's first run, up to the main view. */
  const onboard = async (tab: TestPage, name: string, screenshots: boolean) => {
    const { page } = tab;
    await page.getByRole('button', { name: 'Create a wallet' }).click();
    await page.locator('.words .word').first().waitFor({ timeout: 30_000 });
    const words = await page.locator('.words .word').allTextContents();
    expect(words).toHaveLength(12);
    if (screenshots) await shot(page, 'wallet-words');
    await page.getByRole('button', { name: 'I wrote them down' }).click();
    await page.getByRole('heading', { name: 'Check your copy' }).waitFor();
    for (const label of await page.locator('form label').allTextContents()) {
      const position = Number(/Word (\d+)/.exec(label)![1]);
      await page.getByLabel(`Word ${position}`, { exact: true }).fill(words[position - 1]);
    }
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Password again').fill(PASSWORD);
    await page.getByLabel('Password again').press('Enter');
    await page.getByRole('heading', { name: 'Choose a network' }).waitFor({ timeout: 30_000 });
    // The shipped list of public runs is empty: the page says how to host one.
    expect(await text(page, 'no-known-runs')).toContain('npx tessera coordinator');
    if (screenshots) await shot(page, 'network');
    expect(await page.getByLabel(/Local run/).isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('gpu-adapter').waitFor({ timeout: 30_000 });
    expect(await text(page, 'gpu-adapter')).toMatch(/swiftshader/i);
    // Before contributing: what this run is (GET /run of the local coordinator).
    await page.getByTestId('run-name').waitFor({ timeout: 10_000 });
    expect(await text(page, 'run-name')).toBe('Local run (npm run web)');
    expect(await text(page, 'reward-unit')).toMatch(/^counted in points — Points of this run/);
    if (screenshots) await shot(page, 'gpu-check');
    await page.getByRole('button', { name: 'Continue' }).click();
    console.log(`[${name}] onboarded at ${elapsed()}`);
  };

  it('takes a new user from a wallet to rewards, resumes after a reload, and trains a round with a second tab of the same profile on a wallet of its own', { timeout: 240_000 }, async () => {
    const a = await openPage(browser, web.web.url, { prefix: '[tab-a]' });
    tabs.push(a);
    await a.page.setViewportSize({ width: 1000, height: 900 });
    await shot(a.page, 'welcome');
    await onboard(a, 'tab-a', true);

    // A coordinator that is not there: a warning with the retry, and Stop ends the waiting.
    await a.page.getByRole('button', { name: 'Settings' }).click();
    await a.page.getByLabel('Coordinator address').check();
    await a.page.getByLabel('Coordinator URL').fill('ws://127.0.0.1:9/ws');
    await a.page.getByLabel('Log level').focus(); // blur: the URL is saved
    await a.page.getByRole('button', { name: 'Training' }).click();
    await a.page.getByRole('button', { name: 'Contribute' }).click();
    await a.page.getByRole('status').filter({ hasText: 'Cannot reach the coordinator' }).waitFor({ timeout: 30_000 });
    expect(await a.page.getByRole('status').filter({ hasText: 'Cannot reach' }).innerText()).toMatch(/Attempt 1; trying again in \d+ s/);
    await shot(a.page, 'coordinator-unreachable');
    await a.page.getByRole('button', { name: 'Stop now' }).click();
    await a.page.getByRole('button', { name: 'Contribute' }).waitFor({ timeout: 10_000 });
    await a.page.getByRole('button', { name: 'Settings' }).click();
    await a.page.getByLabel(/^Local run/).check();
    await a.page.getByRole('button', { name: 'Training' }).click();

    await a.page.getByRole('button', { name: 'Contribute' }).click();
    // Start-up says what it is doing (compiling kernels, fetching the data, syncing) where the contributor reports it.
    const starting = await a.page.getByTestId('progress').waitFor({ timeout: 20_000 }).then(() => true, () => false);
    if (starting) {
      console.log(`[tab-a] start-up: ${await text(a.page, 'progress')}`);
      await shot(a.page, 'starting');
    } else console.log('[tab-a] no start-up progress shown (the contributor sent no progress events)');
    await chartPoints(a, 'loss-chart', 2, 'two points on the loss chart');
    console.log(`[tab-a] loss chart has points at ${elapsed()}`);
    expect(await text(a.page, 'run-progress')).toMatch(/^round \d+ of 1000/);
    expect(await text(a.page, 'speed')).toMatch(/^\d+ tokens\/s$/);
    expect(await text(a.page, 'peers')).toBe('alone in this round — no other contributors yet');
    expect(await text(a.page, 'your-part')).toMatch(/tokens trained on this device/);
    expect(await a.page.getByTestId('holds').count(), 'one stage: where the model is does not matter').toBe(0);
    await a.guard(a.page.getByTestId('sent').filter({ hasText: 'of updates and messages' }).waitFor({ timeout: WAIT_MS }), 'the bytes sent, explained', WAIT_MS + 1000);
    console.log(`[tab-a] run progress: ${await text(a.page, 'run-progress')}; sent: ${await text(a.page, 'sent')}`);
    await shot(a.page, 'contribute');

    // A second tab of the same browser profile (narrow screen) has the same wallet: unlocked,
    // it would carry on contributing with it, which the first tab holds. It takes a wallet of
    // its own instead and joins the same local run; its kernels compile while the first tab
    // waits for its reward and reloads.
    const b = await anotherTab(a, '[tab-b]');
    await b.page.setViewportSize({ width: 380, height: 900 });
    await b.page.goto(web.web.url);
    await b.page.getByLabel('Wallet password').fill(PASSWORD);
    await b.page.getByLabel('Wallet password').press('Enter'); // the keyboard submits, as everywhere
    await b.page.getByRole('alert').filter({ hasText: 'already contributing in another tab' }).waitFor({ timeout: 30_000 });
    await b.page.getByRole('button', { name: 'Use another wallet in this tab' }).click();
    await shot(b.page, 'tab-wallet');
    await b.page.getByRole('button', { name: 'Create a wallet for this tab' }).click();
    await b.page.locator('.words .word').nth(11).waitFor({ timeout: 30_000 }); // the worker makes the words
    expect(await b.page.locator('.words .word').allTextContents()).toHaveLength(12);
    await shot(b.page, 'tab-wallet-new');
    await b.page.getByLabel('Password for this wallet').fill(PASSWORD);
    await b.page.getByLabel('Password again').fill(PASSWORD);
    await b.page.getByLabel('Password again').press('Enter');
    await b.page.getByRole('button', { name: 'Pause' }).waitFor({ timeout: 30_000 }); // contributing with it
    console.log(`[tab-b] contributing with a wallet of its own at ${elapsed()}`);

    await a.page.getByRole('button', { name: 'Wallet' }).click();
    await chartPoints(a, 'reward-chart', 1, 'a reward');
    // The validator samples: a round it had no time to evaluate pays nothing (its first, while
    // nothing is measured, often), so the total is waited for, not read at the first point.
    await a.guard(
      a.page.waitForFunction(() => parseFloat((globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('[data-testid=total-reward]')?.textContent ?? '0') > 0, undefined, { timeout: WAIT_MS, polling: 250 }),
      'a reward above zero',
      WAIT_MS + 1000,
    );
    const total = await text(a.page, 'total-reward');
    expect(total, 'every reward has its unit').toMatch(/^\d+\.\d{3} points$/);
    const reward = parseFloat(total);
    expect(reward).toBeGreaterThan(0);
    expect(await text(a.page, 'reward-note')).toMatch(/^Rewards are counted in points\./);
    const addressA = await text(a.page, 'address');
    expect(addressA).toMatch(/^5[1-9A-HJ-NP-Za-km-z]{47}$/);
    console.log(`[tab-a] reward ${reward} at ${elapsed()}`);
    await shot(a.page, 'wallet');
    await a.page.getByRole('button', { name: 'Settings' }).click();
    expect(await text(a.page, 'budget-why')).toMatch(/starts at 60%/);
    // A list of public runs at an address (served beside the page: this run, and an entry that is dropped).
    await a.page.getByLabel('List address').fill(`${web.web.url}/runs.json`);
    await a.page.getByRole('button', { name: 'Refresh the list' }).click();
    await a.page.getByTestId('run-list-status').filter({ hasText: 'fetched' }).waitFor({ timeout: 10_000 });
    expect(await text(a.page, 'run-list-status')).toMatch(/^1 run from http:\/\/.+\/runs\.json, fetched .+ Left out: entry 2: 'coordinator' must be a ws\(s\):\/\/ or http\(s\):\/\/ address/);
    expect(await a.page.getByRole('button', { name: 'Join This test’s run' }).isDisabled(), 'no other run while contributing').toBe(true);
    await shot(a.page, 'settings');
    await a.page.getByRole('button', { name: 'Training' }).click();

    // A reload: unlock, and it carries on by itself with the history it had.
    const before = Number(await a.page.getByTestId('loss-chart').getAttribute('data-points'));
    await a.page.reload();
    await a.page.getByLabel('Wallet password').fill('not the password');
    await a.page.getByRole('button', { name: 'Unlock' }).click();
    await a.page.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 30_000 });
    await shot(a.page, 'wrong-password');
    await a.page.getByLabel('Wallet password').fill(PASSWORD);
    await a.page.getByRole('button', { name: 'Unlock' }).click();
    await a.page.getByTestId('loss-chart').waitFor({ timeout: 30_000 });
    expect(Number(await a.page.getByTestId('loss-chart').getAttribute('data-points')), 'the loss history survives the reload').toBeGreaterThanOrEqual(before);
    await a.page.getByRole('button', { name: 'Pause' }).waitFor({ timeout: 10_000 }); // contributing again, without a click

    // …from its own checkpoint in IndexedDB, not from scratch or another's copy.
    await a.guard(a.page.locator('.log li').filter({ hasText: /holding the weights of round \d+ \(from local/ }).first().waitFor({ state: 'attached', timeout: WAIT_MS }), 'a sync from the local checkpoint', WAIT_MS + 1000);
    console.log(`[tab-a] resumed from its checkpoint after the reload at ${elapsed()}`);

    // Both complete a round with both updates, after the reload.
    // …and the updates went peer to peer too (the worker's simple-peer over the page's
    // WebRTC): "N from peers" counts the updates that came over a link (not the tab's own), and
    // the commit says how many the store held ("2 of 2 update(s)").
    const together = (lines: string[]) => lines.map((l) => /round (\d+) committed: 2 (?:of \d+ )?update/.exec(l)?.[1]).filter(Boolean);
    const overLinks = (lines: string[]) => lines.some((l) => /committed: 2 (?:of \d+ )?update\(s\), [1-9]\d* from peers/.test(l));
    await b.guard(
      (async () => {
        for (;;) {
          const [la, lb] = await Promise.all([logLines(a.page), logLines(b.page)]);
          const shared = together(la).filter((r) => together(lb).includes(r));
          if (shared.length > 0 && (overLinks(la) || overLinks(lb))) return shared;
          await new Promise((r) => setTimeout(r, 500));
        }
      })(),
      'a round committed with both tabs’ updates, one of them received over WebRTC',
      WAIT_MS * 1.5,
    );
    console.log(`both tabs completed a round together, updates over WebRTC, at ${elapsed()}`);
    await shot(b.page, 'contribute-narrow');
    expect(Number(await text(b.page, 'rounds-done'))).toBeGreaterThanOrEqual(1);
    const peers = await text(b.page, 'peers');
    console.log(`[tab-b] peers: ${peers}`);
    expect(peers).toMatch(/^(linked directly to|alone in this round)/);


    // A reload of the second tab unlocks the wallet it took (sessionStorage), not the first,
    // and carries on with it by itself.
    await b.page.reload();
    const own = b.page.getByText(/^This tab contributes with its own wallet, 5\S+…\S{4}\.$/);
    await own.waitFor({ timeout: 30_000 });
    expect(await own.innerText(), 'two contributors, two wallets').not.toContain(`${addressA.slice(0, 6)}…${addressA.slice(-4)}`);
    await b.page.getByLabel('Wallet password').fill(PASSWORD);
    await b.page.getByRole('button', { name: 'Unlock' }).click();
    await b.page.getByRole('button', { name: 'Pause' }).waitFor({ timeout: 30_000 }); // contributing again, without a click
    console.log(`[tab-b] resumed with its own wallet after a reload at ${elapsed()}`);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });
});
