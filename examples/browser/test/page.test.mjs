// examples/browser/index.html in headless Chromium (Debian's package, through puppeteer-core):
// the page runs forgetting attention on WebGPU (navigator.gpu; here Chromium's SwiftShader
// adapter, with the flags below) and writes the result into the page, which this test reads.
// The ?cpu page runs the CPU path. The page is served from 127.0.0.1 by a static server in
// this process (module scripts do not load from file:// URLs; localhost is a secure context). Skips without chromium, except in CI (CI=true), where that
// is a failure; with FOXGATE_REQUIRE_WEBGPU=1 (CI) the page must have had WebGPU.
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../build.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.FOXGATE_CHROMIUM ?? '/usr/bin/chromium';
const HAVE = existsSync(CHROMIUM);
const CI = process.env.CI === 'true' || process.env.CI === '1';
const REQUIRE_WEBGPU = process.env.FOXGATE_REQUIRE_WEBGPU === '1';
if (!HAVE && !CI)
  console.warn(`[browser-page] skipped: no chromium at ${CHROMIUM} (apt-get install chromium; CI=true makes this a failure)`);

// WebGPU in headless Chromium without a GPU: Vulkan on, ANGLE and Dawn on SwiftShader
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

describe.runIf(CI && !HAVE)('browser page in headless chromium (CI)', () => {
  it('needs chromium', () => {
    expect.fail(`CI: the browser page test needs chromium at ${CHROMIUM} (Debian's chromium package; .ci/run installs it)`);
  });
});

describe.skipIf(!HAVE)('browser page in headless chromium', () => {
  let browser;
  let server;
  let url;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-browser-page-'));
    const r = await bundle({ outdir: join(dir, 'dist') });
    expect(r.nodeImports).toEqual([]);
    copyFileSync(join(here, '../index.html'), join(dir, 'index.html'));
    server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      const file = join(dir, path === '/' ? 'index.html' : path);
      if (!file.startsWith(dir) || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8' });
      res.end(readFileSync(file));
    });
    await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${server.address().port}/index.html`;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      protocolTimeout: 180_000, // a software adapter compiles a kernel with the page's thread waiting
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', ...WEBGPU_FLAGS],
    });
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  /** Loads the page with `query`, waits until it has written its result, returns the result. */
  async function load(query) {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
    });
    page.on('requestfailed', (r) => errors.push(`requestfailed: ${r.url()}`));
    try {
      await page.goto(`${url}${query}`, { waitUntil: 'load' });
      const t0 = Date.now();
      // poll, so that an error (a script that did not load) fails at once instead of at the timeout
      for (;;) {
        const st = await page.evaluate(() => document.getElementById('result')?.dataset.state);
        if (st !== 'running') break;
        if (errors.length) throw new Error(`the page failed while running: ${errors.join('; ')}`);
        if (Date.now() - t0 > 150_000) throw new Error('the page did not finish within 150 s');
        await new Promise((r) => setTimeout(r, 200));
      }
      const { state, text } = await page.evaluate(() => {
        const el = document.getElementById('result');
        return { state: el.dataset.state, text: el.textContent };
      });
      expect(state, text).toBe('done');
      expect(errors).toEqual([]);
      return JSON.parse(text);
    } finally {
      await page.close();
    }
  }

  it('runs forgetting attention on WebGPU (navigator.gpu) and writes the result into the page', async () => {
    const r = await load('');
    console.info(`[browser-page] ${r.backend}${r.adapter ? ` (${r.adapter})` : ''}${r.why ? `: ${r.why}` : ''}: ${JSON.stringify(r)}`);
    if (REQUIRE_WEBGPU) expect(r.backend, `FOXGATE_REQUIRE_WEBGPU=1 but the page ran on ${r.backend}: ${r.why}`).toBe('webgpu');
    expect(r.shape).toEqual([1, 256, 2, 16]);
    expect(r.outMaxAbs).toBeGreaterThan(0.5); // a real output, not zeros
    expect(r.maxAbsDiff).toBeLessThan(1e-4); // against the CPU kernel on the same inputs
  });

  it('runs the CPU path with ACP and a gradient (?cpu&acp&grad)', async () => {
    const r = await load('?cpu&acp&grad');
    expect(r.backend).toBe('cpu');
    expect(r.maxAbsDiff).toBe(0); // the same kernel on the same inputs
    // these gates (logsigmoid of N(0,1)) forget fast: at T 256 ACP skips some of the tiles two or more blocks below the diagonal
    expect(r.tilesComputed).toBeGreaterThan(0.5);
    expect(r.tilesComputed).toBeLessThan(1);
    expect(r.maxAbsDiffAcp).toBeLessThan(1e-4);
    expect(r.gradMaxAbs).toBeGreaterThan(0.1);
    expect(r.gradMaxAbsDiff).toBe(0);
  });
});
