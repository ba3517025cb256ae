// The run report loaded in a real headless browser (Debian's chromium through puppeteer-core):
// no console errors, no request beyond the file itself, every plot's <svg> present and of
// non-zero size, a screenshot under the test's temp folder. Skips when chromium is missing,
// except in CI (CI=true), where that is a failure.
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/main.js';
import { fixtureCopy } from './util/fixture.js';

const CHROMIUM = process.env.FOXGATE_CHROMIUM ?? '/usr/bin/chromium';
const HAVE = existsSync(CHROMIUM);
const CI = process.env.CI === 'true' || process.env.CI === '1';
const SKIP = !HAVE && !CI;
if (SKIP) console.warn(`[report-browser] skipped: no chromium at ${CHROMIUM} (apt-get install chromium; CI=true makes this a failure)`);

interface PageCheck {
  plots: { id: string; width: number; height: number }[];
  notes: string[];
  errors: string[];
  requests: string[];
  screenshot: string;
}

describe.runIf(CI && !HAVE)('report page in headless chromium (CI)', () => {
  it('needs chromium', () => {
    expect.fail(`CI: the report browser test needs chromium at ${CHROMIUM} (Debian's chromium package; .ci/run installs it)`);
  });
});

describe.skipIf(!HAVE)('report page in headless chromium', () => {
  let browser: Browser;
  const tmp = mkdtempSync(join(tmpdir(), 'fg-browser-'));

  beforeAll(async () => {
    if (!HAVE)
      throw new Error(`CI: chromium is required for the report browser test but ${CHROMIUM} does not exist (install Debian's chromium)`);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function check(runDir: string, name: string): Promise<PageCheck> {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['report', runDir, '--quiet'])).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') errors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
    page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.setViewport({ width: 1100, height: 900 });
    const url = pathToFileURL(join(runDir, 'report.html')).href;
    await page.goto(url, { waitUntil: 'load' });
    const found = await page.evaluate(() => ({
      plots: Array.from(document.querySelectorAll('svg.plot')).map((s) => {
        const r = s.getBoundingClientRect();
        return { id: s.getAttribute('data-plot') ?? '', width: r.width, height: r.height };
      }),
      notes: Array.from(document.querySelectorAll('[data-note]')).map((n) => n.getAttribute('data-note') ?? ''),
    }));
    const screenshot = join(tmp, `${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    await page.close();
    console.info(`[report-browser] screenshot: ${screenshot}`);
    return { ...found, errors, requests: requests.filter((r) => r !== url), screenshot };
  }

  it('the full fixture run: five plots of non-zero size, no errors, nothing fetched', async () => {
    const r = await check(fixtureCopy(), 'full');
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([]);
    expect(r.plots.map((p) => p.id)).toEqual(['loss', 'per-position', 'extrapolation', 'gates', 'acp']);
    for (const p of r.plots) {
      expect(p.width, p.id).toBeGreaterThan(100);
      expect(p.height, p.id).toBeGreaterThan(50);
    }
    expect(r.notes).toEqual([]);
    expect(statSync(r.screenshot).size).toBeGreaterThan(20_000);
  });
  it('a run with only metrics.jsonl: the loss plot and four notes, no errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-browser-run-'));
    writeFileSync(
      join(dir, 'metrics.jsonl'),
      '{"kind":"train","step":1,"tokens":10,"loss":3}\n{"kind":"eval","step":1,"tokens":10,"loss":3.2}\n',
    );
    const r = await check(dir, 'minimal');
    expect(r.errors).toEqual([]);
    expect(r.plots.map((p) => p.id)).toEqual(['loss']);
    expect(r.plots[0].width).toBeGreaterThan(100);
    expect(r.notes).toEqual(['per-position', 'extrapolation', 'gates', 'acp']);
  });
});
