import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/main.js';
import { findSetting, renderReport } from '../src/report/html.js';
import { loadRun, parseMetrics } from '../src/report/run.js';
import { bar, downsample, sparkline, terminalCharts } from '../src/report/terminal.js';
import { captureConsole } from './util/cli-run.js';
import { FIXTURE, fixtureCopy } from './util/fixture.js';

afterEach(() => vi.restoreAllMocks());

describe('loadRun on the fixture run folder', () => {
  it('reads the records, skips the truncated last line, checks eval.json', () => {
    const run = loadRun(FIXTURE);
    expect(run.train).toHaveLength(20);
    expect(run.evals.map((e) => e.step)).toEqual([50, 100, 150, 200]);
    expect(run.train[0]).toEqual({ step: 10, tokens: 20480, loss: 4.0969, lr: 0.001, gradNorm: 1.5, tokensPerSecond: 5010, seconds: 4.1 });
    expect(run.notes).toEqual([`${join(FIXTURE, 'metrics.jsonl')}: the last line is incomplete (a run still writing?): skipped`]);
    expect(run.config?.model).toBe('foxPro');
    expect(run.eval?.meanLogF).toHaveLength(2);
    expect(run.eval?.extrapolation?.map((e) => [e.factor, e.perPosition?.length])).toEqual([
      [2, 16],
      [4, 32],
    ]);
  });
  it('a bad line in the middle of metrics.jsonl is an error naming the line; records of other kinds are ignored', () => {
    const notes: string[] = [];
    expect(() => parseMetrics('{"kind":"train","step":1,"loss":2}\n{oops\n{"kind":"train","step":2,"loss":1}\n', 'm.jsonl', notes)).toThrow(
      /^report: m\.jsonl line 2 is not valid JSON \(/,
    );
    const r = parseMetrics(
      '{"kind":"checkpoint","step":5}\n{"kind":"train","step":"x","loss":1}\n{"kind":"eval","step":3,"loss":2}\n',
      'm',
      notes,
    );
    expect(r).toEqual({ train: [], evals: [{ step: 3, tokens: undefined, loss: 2 }] });
    expect(notes).toEqual(['m: 1 record(s) without a numeric step and loss: skipped']);
  });
  it('finds settings at the top level or nested', () => {
    expect(findSetting({ model: 'fox', train: { steps: 5, opt: { lr: 1 } } }, 'steps')).toBe(5);
    expect(findSetting({ a: { b: { context: 7 } } }, 'context')).toBe(7);
    expect(findSetting({ a: 1 }, 'device')).toBeUndefined();
  });
});

describe('foxgate report RUN_DIR', () => {
  it('writes report.html atomically with the five plots and prints terminal charts', async () => {
    const dir = fixtureCopy();
    const { out, err } = captureConsole();
    expect(await main(['report', dir])).toBe(0);
    expect(err).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'eval.json', 'metrics.jsonl', 'report.html']);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    const ids = [...html.matchAll(/<svg class="plot" data-plot="([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['loss', 'per-position', 'extrapolation', 'gates', 'acp']);
    // self-contained: no scripts, no links, nothing fetched (the only URL is the SVG namespace)
    expect(html).not.toMatch(/<script|<link|@import|url\(/i);
    expect([...html.matchAll(/https?:\/\/[^"'\s)]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg')).toEqual([]);
    // the sample is escaped, the settings shown
    expect(html).toContain('&lt;b&gt;not html&lt;/b&gt;');
    expect(html).not.toContain('<b>not html</b>');
    expect(html).toMatch(/<th>model<\/th><td>foxPro<\/td>/);
    expect(html).toMatch(/<th>data<\/th><td>synthetic:mqar<\/td>/);
    expect(html).toContain('mqar accuracy (chance 6.3%)');
    // extrapolation: one line per context factor
    expect(html).toContain('×1 (256)');
    expect(html).toContain('×2 (512)');
    expect(html).toContain('×4 (1024)');
    const text = out.join('\n');
    expect(text).toMatch(/^train loss {2}[▁-█]{20} {2}4\.097 → 1\.567 \(step 10 → 200, 409,600 tokens\)$/m);
    expect(text).toMatch(/^val loss {4}█▄▂▁ {2}3\.004 → 1\.807 \(4 evals, best 1\.807\)$/m);
    expect(text).toContain('loss by position (context 256):');
    expect(text).toMatch(/^ {5}0–32 {2}█{30} {2}2\.550$/m);
    expect(text).toContain('extrapolation (mean loss): ×1 2.200, ×2 2.165, ×4 3.145');
    expect(text).toContain('mqar accuracy 93.0% (chance 6.3%)');
    expect(text).toContain('ACP pruned per layer: 41.0%, 12.0%');
    expect(out.at(-1)).toBe(`report: ${join(dir, 'report.html')} (5 of 5 plots)`);
  });
  it('--json prints one JSON object and nothing else; --quiet the path only', async () => {
    const dir = fixtureCopy();
    const { out } = captureConsole();
    expect(await main(['report', dir, '--json'])).toBe(0);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0])).toEqual({
      report: join(dir, 'report.html'),
      plots: ['loss', 'per-position', 'extrapolation', 'gates', 'acp'],
      notes: [`${join(dir, 'metrics.jsonl')}: the last line is incomplete (a run still writing?): skipped`],
    });
    expect(await main(['report', '-q', dir])).toBe(0);
    expect(out[1]).toBe(join(dir, 'report.html'));
  });
  it('a run with only metrics.jsonl: the loss plot, a one-line note for each other plot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-report-'));
    writeFileSync(
      join(dir, 'metrics.jsonl'),
      '{"kind":"train","step":1,"tokens":10,"loss":3}\n{"kind":"train","step":2,"tokens":20,"loss":2.5}\n',
    );
    const { out } = captureConsole();
    expect(await main(['report', dir])).toBe(0);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect([...html.matchAll(/data-plot="([^"]+)"/g)].map((m) => m[1])).toEqual(['loss']);
    expect([...html.matchAll(/data-note="([^"]+)"/g)].map((m) => m[1])).toEqual(['per-position', 'extrapolation', 'gates', 'acp']);
    expect(out).toContain('note: Loss by position: no eval.json (run foxgate eval)');
    expect(out).toContain('note: ACP pruned fraction: no ACP statistics (eval.json acp.prunedFraction; the run had ACP off?)');
    expect(out.at(-1)).toBe(`report: ${join(dir, 'report.html')} (1 of 5 plots)`);
  });
  it('an eval.json field of the wrong shape is a note, not an error', async () => {
    const dir = fixtureCopy();
    const ev = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8'));
    ev.perPosition = [{ start: 0, end: 'x' }];
    ev.gates = { meanLogF: 'none' };
    writeFileSync(join(dir, 'eval.json'), JSON.stringify(ev));
    const r = renderReport(loadRun(dir));
    expect(r.plots).toEqual(['loss', 'extrapolation', 'acp']);
    expect(r.notes).toContain('eval.json: perPosition (a list of {start, end, loss}) has the wrong shape: skipped');
    expect(r.notes).toContain('eval.json: gates.meanLogF ([layer][head] numbers) has the wrong shape: skipped');
  });
  it('a bad RUN_DIR is one line and exit 2', async () => {
    const base = mkdtempSync(join(tmpdir(), 'fg-report-'));
    const file = join(base, 'file');
    writeFileSync(file, '');
    const empty = join(base, 'empty');
    mkdirSync(empty);
    const badCfg = fixtureCopy();
    writeFileSync(join(badCfg, 'config.json'), '{"model": ');
    const badEval = fixtureCopy();
    writeFileSync(join(badEval, 'eval.json'), 'nope');
    const arrCfg = fixtureCopy();
    writeFileSync(join(arrCfg, 'config.json'), '[1]');
    const badLine = fixtureCopy();
    writeFileSync(join(badLine, 'metrics.jsonl'), '{"kind":"train","step":1,"loss":1}\n{"kind":\n{"kind":"train","step":2,"loss":1}\n');
    const { err } = captureConsole();
    for (const d of [join(base, 'missing'), file, empty, badCfg, badEval, arrCfg, badLine]) expect(await main(['report', d])).toBe(2);
    expect(err).toHaveLength(7);
    expect(err[0]).toBe(`foxgate: report: run folder '${join(base, 'missing')}' does not exist`);
    expect(err[1]).toBe(`foxgate: report: '${file}' is not a folder (give the run folder)`);
    expect(err[2]).toBe(`foxgate: report: '${empty}' has no metrics.jsonl (is it a foxgate run folder?)`);
    expect(err[3]).toMatch(new RegExp(`^foxgate: report: ${join(badCfg, 'config.json')} is not valid JSON \\(.+\\)$`));
    expect(err[4]).toMatch(new RegExp(`^foxgate: report: ${join(badEval, 'eval.json')} is not valid JSON \\(.+\\)$`));
    expect(err[5]).toBe(`foxgate: report: ${join(arrCfg, 'config.json')} is not a JSON object`);
    expect(err[6]).toMatch(new RegExp(`^foxgate: report: ${join(badLine, 'metrics.jsonl')} line 2 is not valid JSON`));
    for (const d of [badCfg, badEval]) expect(readdirSync(d)).not.toContain('report.html');
    rmSync(base, { recursive: true, force: true });
  });
});

describe('terminal charts', () => {
  it('sparklines span ▁ to █, downsample by means', () => {
    expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([8, 1])).toBe('█▁');
    expect(sparkline([2, 2, 2])).toBe('▄▄▄');
    expect(sparkline([])).toBe('');
    expect(downsample([1, 2, 3, 4, 5, 6], 3)).toEqual([1.5, 3.5, 5.5]);
    expect(
      sparkline(
        Array.from({ length: 1000 }, (_, i) => -i),
        10,
      ),
    ).toHaveLength(10);
  });
  it('bars are value / max of the width, in eighths', () => {
    expect(bar(1, 2, 4)).toBe('██');
    expect(bar(0.3, 1, 1)).toBe('▎');
    expect(bar(2, 2, 3)).toBe('███');
    expect(bar(0, 2, 3)).toBe('');
  });
  it('a run without eval.json prints the loss lines only', () => {
    const run = loadRun(FIXTURE);
    const lines = terminalCharts({ ...run, eval: undefined }).split('\n');
    expect(lines.map((l) => l.split(/\s{2,}/)[0])).toEqual(['train loss', 'val loss']);
  });
});
