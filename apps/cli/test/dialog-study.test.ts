import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '@foxgate/models';
import { getBackend, tensor } from '@foxgate/tensor';
import { createTokenizer, dialogSequence, loadDailyDialog, type StudyResults } from '@foxgate/train';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/main.js';
import { captureConsole } from './util/cli-run.js';

/** DailyDialog: $FOXGATE_DATA_DIR, else ../shared/data relative to the repo root. */
function dailyDialog(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const p = join(process.env.FOXGATE_DATA_DIR ?? join(root, '../shared/data'), 'dailydialog');
  if (!existsSync(p)) throw new Error(`shared data missing: ${p} (set FOXGATE_DATA_DIR to the folder holding dailydialog/)`);
  return p;
}

afterEach(() => vi.restoreAllMocks());

const T = 64;
const args = (out: string, extra: string[] = []) => [
  'dialog-study',
  '--data',
  dailyDialog(),
  '--model',
  'transformer,foxPro',
  '--train-context',
  '0,1',
  '--test-context',
  '0,1',
  '--hidden',
  '32',
  '--steps',
  '3',
  '--batch',
  '4',
  '--context',
  String(T),
  '--max-dialogs',
  '24',
  '--max-test-dialogs',
  '5',
  '--eval-batch',
  '7',
  '--device',
  'cpu',
  '--out',
  out,
  ...extra,
];

/** Per-sample mean losses at test N by hand: each row alone, unpadded, log-softmax in float64. */
async function handLosses(cellDir: string, dataDir: string, n: number): Promise<number[]> {
  const { model, params } = await loadCheckpoint(join(cellDir, 'checkpoint'), { backend: getBackend('cpu') });
  const tokenizer = createTokenizer({ kind: 'byte' });
  const V = model.config.vocab_size;
  const out: number[] = [];
  for (const d of loadDailyDialog(dataDir, 'test')) {
    for (let turn = 1; turn < d.turns.length; turn++) {
      const { seq, responseStart } = dialogSequence(d, turn, { tokenizer, T, context: n });
      const L = seq.length - 1;
      const x = tensor(Int32Array.from(seq.slice(0, L)), [1, L], { dtype: 'int32', backend: 'cpu' });
      const logits = model.forward(params, x);
      const z = await logits.data();
      logits.dispose();
      x.dispose();
      let sum = 0;
      for (let p = responseStart; p < L; p++) {
        let max = -Infinity;
        for (let v = 0; v < V; v++) max = Math.max(max, z[p * V + v]);
        let s = 0;
        for (let v = 0; v < V; v++) s += Math.exp(z[p * V + v] - max);
        sum += max + Math.log(s) - z[p * V + seq[p + 1]];
      }
      out.push(sum / (L - responseStart));
    }
  }
  return out;
}

describe('foxgate dialog-study', () => {
  it('runs the whole study on a tiny subset: files, the metric by hand, the oracle, and a rerun retrains nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fg-dstudy-'));
    const first = captureConsole();
    expect(await main(args(out))).toBe(0);
    expect(first.err).toEqual([]);
    const text = first.out.join('\n');
    expect(text).toContain('dialog study: 4 cells (4 trained now, 0 only evaluated, 0 finished earlier)');
    expect(text).toMatch(/foxPro: oracle PPL \d+\.\d+ vs best single N=\d/);

    const plots = ['grid-transformer.svg', 'grid-foxPro.svg', 'ppl-by-train-n.svg', 'buckets-transformer.svg', 'buckets-foxPro.svg'];
    plots.push('oracle-transformer.svg', 'oracle-foxPro.svg', 'ratio-foxPro-vs-transformer.svg');
    for (const f of [...plots, 'results.json', 'results.md', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);
    for (const f of plots) {
      const svg = readFileSync(join(out, f), 'utf8');
      expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg class="plot"')).toBe(true);
      expect(svg).toContain('<style>.t{');
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    }
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    for (const h of ['## (1) PPL vs training N', '## (2) PPL by history length', '## (3) Per-sample oracle', '## (4) Models compared'])
      expect(md).toContain(h);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<h2>(3) Per-sample oracle</h2>');
    expect(html.match(/<figure data-file=/g)).toHaveLength(plots.length);

    const r = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;
    expect(r.cells.map((c) => c.dir)).toEqual(['transformer-n0', 'transformer-n1', 'foxPro-n0', 'foxPro-n1'].map((c) => join('cells', c)));
    expect(r.data).toMatchObject({ trainDialogs: 24, testDialogs: 5 });
    expect(r.settings.modelFields).toEqual({ hidden_size: 32 });

    // the metric by hand on one cell: exp(mean over samples of each response's mean token loss)
    const cell = join(out, 'cells', 'foxPro-n1');
    const hand = await handLosses(cell, join(out, 'data'), 1);
    expect(hand.length).toBe(r.data.testSamples);
    const saved = JSON.parse(readFileSync(join(cell, 'test-eval.json'), 'utf8'));
    const got = saved.contexts['1'].meanLoss as number[];
    for (let i = 0; i < hand.length; i++) expect(Math.abs(got[i] - hand[i])).toBeLessThan(2e-5);
    const ppl = Math.exp(hand.reduce((a, v) => a + v, 0) / hand.length);
    const grid = r.analysis.grid.find((g) => g.model === 'foxPro' && g.trainContext === 1 && g.testContext === 1);
    expect(Math.abs((grid?.perplexity ?? 0) / ppl - 1)).toBeLessThan(5e-6);

    // the oracle from the cells' own per-sample losses
    const matched = [0, 1].map(
      (n) =>
        JSON.parse(readFileSync(join(out, 'cells', `foxPro-n${n}`, 'test-eval.json'), 'utf8')).contexts[String(n)].meanLoss as number[],
    );
    const best = matched[0].map((l, i) => Math.min(l, matched[1][i]));
    const o = r.analysis.oracle.find((x) => x.model === 'foxPro');
    expect(o?.perplexity).toBeCloseTo(Math.exp(best.reduce((a, v) => a + v, 0) / best.length), 10);
    expect((o?.wins['0'] ?? 0) + (o?.wins['1'] ?? 0)).toBe(r.data.testSamples);
    expect(o?.wins['0']).toBe(matched[0].filter((l, i) => l <= matched[1][i]).length);

    // the same command again: every cell is found finished, nothing is retrained
    const mtimes = r.cells.map((c) => statSync(join(out, c.dir, 'checkpoint', 'model.safetensors')).mtimeMs);
    const again = captureConsole();
    expect(await main(args(out))).toBe(0);
    const log = again.out.join('\n');
    for (const c of ['transformer-n0', 'transformer-n1', 'foxPro-n0', 'foxPro-n1'])
      expect(log).toMatch(new RegExp(`${c}: finished earlier, not retrained`));
    expect(log).toContain('dialog study: 4 cells (0 trained now, 0 only evaluated, 4 finished earlier)');
    expect(r.cells.map((c) => statSync(join(out, c.dir, 'checkpoint', 'model.safetensors')).mtimeMs)).toEqual(mtimes);
    const r2 = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as StudyResults;
    expect(r2.analysis).toEqual(r.analysis);

    // foxgate report on the study folder redraws its page and plots
    const rep = captureConsole();
    expect(await main(['report', out])).toBe(0);
    expect(rep.out).toEqual([`report: ${join(out, 'report.html')} (dialog study, ${plots.length} plots)`]);
  });
  it('rejects bad flags in one line (exit 2)', async () => {
    const { err } = captureConsole();
    expect(await main(['dialog-study', '--model', 'transformer'])).toBe(2);
    expect(await main(['dialog-study', '--data', 'x', '--train-context', '1,two'])).toBe(2);
    expect(await main(['dialog-study', '--data', 'x', '--model', 'foxpro'])).toBe(2);
    expect(await main(['dialog-study', '--data', '/nonexistent-dd', '--device', 'cpu', '--out', mkdtempSync(join(tmpdir(), 'fg-'))])).toBe(
      2,
    );
    expect(err).toHaveLength(4);
    expect(err[0]).toMatch(/^foxgate: .*--data/);
    expect(err[1]).toMatch(/^foxgate: dialog-study: --train-context must be a comma list of non-negative integers.* got 'two' in '1,two'$/);
    expect(err[2]).toMatch(/did you mean 'foxPro'/);
    expect(err[3]).toMatch(/^foxgate: loadDailyDialog: \/nonexistent-dd is not a folder$/);
  });
});
