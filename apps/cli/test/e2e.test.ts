// The CLI end to end on the CPU, tiny settings: train → eval → generate → report on the default
// MQAR task (FoX-Pro) and on a small text file (Transformer++, byte tokens).
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '@foxgate/models';
import { argmax, dispose, tensor } from '@foxgate/tensor';
import { createTokenizer } from '@foxgate/train';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from './util/cli-run.js';

const root = mkdtempSync(join(tmpdir(), 'fg-e2e-'));
const mqar = join(root, 'mqar');
const text = join(root, 'text');
const corpus = join(root, 'small.txt');
const small = join(root, 'small.json');

/** ~140 KB of seeded word salad: three 64 KB segments, one held out for validation. */
function writeCorpus(file: string): void {
  const words = 'the fox and the gate forget old words while new ones come in quick brown lazy dog jumps over river stone'.split(' ');
  let s = 7;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
  const lines: string[] = [];
  let n = 0;
  while (n < 140_000) {
    const line = `${Array.from({ length: 5 + (next() % 8) }, () => words[next() % words.length]).join(' ')}.`;
    lines.push(line);
    n += line.length + 1;
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

let trained: Record<string, any>;

beforeAll(async () => {
  writeCorpus(corpus);
  writeFileSync(small, JSON.stringify({ evalRows: 16, extrapolate: [2], batch: 8 }));
  const r = await runCli(['train', '--config', small, '--steps', '6', '--eval-every', '3', '--device', 'cpu', '--out', mqar, '--json']);
  expect(r.code, r.err.join('\n')).toBe(0);
  trained = jsonOf(r);
});

describe('foxgate train (MQAR, 6 steps)', () => {
  it('writes the run folder and evaluates at steps 3 and 6', () => {
    for (const f of ['config.json', 'metrics.jsonl', 'eval.json', 'report.html', 'checkpoint/config.json', 'checkpoint/model.safetensors'])
      expect(existsSync(join(mqar, f)), f).toBe(true);
    expect(trained.step).toBe(6);
    expect(trained.tokens).toBe(6 * 8 * 32);
    const evals = readFileSync(join(mqar, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m.kind === 'eval');
    expect(evals.map((m) => m.step)).toEqual([3, 6]);
    expect(JSON.parse(readFileSync(join(mqar, 'config.json'), 'utf8')).run.steps).toBe(6);
  });
});

describe('foxgate eval', () => {
  it('on the run folder reproduces the training run’s final evaluation exactly (same data, rows, context)', async () => {
    const r = await runCli(['eval', '--checkpoint', mqar, '--device', 'cpu', '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const e = jsonOf(r);
    const saved = JSON.parse(readFileSync(join(mqar, 'eval.json'), 'utf8'));
    expect(e.context).toBe(32);
    expect(e.loss).toBe(saved.loss);
    expect(e.targets).toBe(saved.targets);
    expect(e.perPosition).toEqual(saved.perPosition);
    expect(e.accuracy).toEqual(saved.accuracy);
    expect(e.extrapolation.map((x: { factor: number }) => x.factor)).toEqual([2]);
    expect(e.extrapolation[0].loss).toBe(saved.extrapolation[0].loss);
    expect(e.checkpoint).toBe(join(mqar, 'checkpoint'));
  });
  it('prints loss, the per-position table and the recall accuracy against chance; --out writes the evaluation', async () => {
    const out = join(root, 'eval-64.json');
    const r = await runCli(['eval', '--checkpoint', mqar, '--device', 'cpu', '--context', '64', '--extrapolate', 'none', '--out', out]);
    expect(r.code, r.err.join('\n')).toBe(0);
    const text = r.out.join('\n');
    expect(text).toMatch(/^loss \d\.\d{4} over \d+ targets at context 64$/m);
    expect(text).toContain('per-position loss:');
    expect(text).toMatch(/positions\s+T=64/);
    expect(text).toMatch(/mqar recall accuracy \d+\.\d% \(\d+\/\d+\) against chance 12\.5%/);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.context).toBe(64);
    expect(j.extrapolation).toEqual([]);
    expect(text).toContain(`loss ${j.loss.toFixed(4)} over ${j.targets} targets at context 64`);
  });
});

describe('foxgate generate (MQAR token names)', () => {
  const prompt = '<bos> k1 v0 k5 v3 k1';
  it('greedy: the token the full forward ranks first after the prompt', async () => {
    const r = await runCli(['generate', '--checkpoint', mqar, '--prompt', prompt, '--max-new', '1', '--device', 'cpu', '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const g = jsonOf(r);
    // token ids of the prompt: <pad> 0, <bos> 1, k0.. from 2, v0.. from 2 + 8 keys
    const ids = [1, 2 + 1, 10 + 0, 2 + 5, 10 + 3, 2 + 1];
    const ck = await loadCheckpoint(join(mqar, 'checkpoint'));
    const x = tensor(Int32Array.from(ids), [1, ids.length], { dtype: 'int32' });
    const logits = ck.model.forward(ck.params, x);
    const best = argmax(logits, -1);
    const want = (await best.data())[ids.length - 1];
    dispose([ck.params, x, logits, best]);
    expect(g.tokens).toEqual([want]);
    const names = ['<pad>', '<bos>', ...Array.from({ length: 8 }, (_, i) => `k${i}`), ...Array.from({ length: 8 }, (_, i) => `v${i}`)];
    expect(g.text).toBe(names[want] ?? `f${want - 18}`);
    expect(g.tokensPerSecond).toBeGreaterThan(0);
    expect(g.cache).toBeUndefined();
  });
  it('seeded sampling repeats; --kv-evict acp reports the cache kept of the full length', async () => {
    const args = [
      'generate',
      '--checkpoint',
      mqar,
      '--prompt',
      prompt,
      '--max-new',
      '6',
      '--temperature',
      '1',
      '--seed',
      '5',
      '--device',
      'cpu',
    ];
    const a = jsonOf(await runCli([...args, '--json']));
    const b = jsonOf(await runCli([...args, '--json', '--kv-evict', 'acp']));
    expect(a.tokens).toHaveLength(6);
    expect(b.tokens).toEqual(a.tokens); // nothing evictable at 12 positions: the same draws
    expect(b.cache.full).toBeGreaterThan(0);
    expect(b.cache.kept).toBeLessThanOrEqual(b.cache.full);
    const plain = await runCli(args);
    expect(plain.code).toBe(0);
    expect(plain.out).toEqual([a.text]);
  });
  it('an unknown token name is one line naming it and the run’s tokens, exit 2', async () => {
    const r = await runCli(['generate', '--checkpoint', mqar, '--prompt', '<bos> k1 k99', '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([
      "foxgate: generate: --prompt: unknown token 'k99' (this mqar run's tokens: <pad>, <bos>, k0…k7, v0…v7, f0…f15)",
    ]);
  });
});

describe('foxgate report', () => {
  it('rewrites the run’s report with every plot', async () => {
    const r = await runCli(['report', mqar, '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = jsonOf(r);
    expect(j.report).toBe(join(mqar, 'report.html'));
    expect(readFileSync(j.report, 'utf8')).toContain('<svg');
    expect(j.plots.length).toBeGreaterThanOrEqual(4);
  });
});

describe('a text run (Transformer++ on a small file, byte tokens)', () => {
  let e: Record<string, any>;
  beforeAll(async () => {
    const r = await runCli([
      'train',
      '--config',
      small,
      '--model',
      'transformer',
      '--data',
      `text:${corpus}`,
      '--context',
      '32',
      '--batch',
      '4',
      '--steps',
      '4',
      '--device',
      'cpu',
      '--out',
      text,
      '--json',
    ]);
    expect(r.code, r.err.join('\n')).toBe(0);
    e = jsonOf(r).eval;
  });
  it('trains and evaluates a loss (no accuracy, no perplexity)', () => {
    expect(Number.isFinite(e.loss)).toBe(true);
    expect(e.loss).toBeLessThan(Math.log(261) + 1);
    expect(e.accuracy).toBeUndefined();
    expect(e.perplexity).toBeUndefined();
  });
  it('generate continues text: the printed text is the byte decoding of the tokens', async () => {
    const g = jsonOf(
      await runCli(['generate', '--checkpoint', text, '--prompt', 'the fox', '--max-new', '8', '--device', 'cpu', '--json']),
    );
    expect(g.tokens.length).toBeGreaterThan(0);
    expect(g.tokens.length).toBeLessThanOrEqual(8);
    expect(g.promptTokens).toBe(1 + 'the fox'.length); // BOS + one byte each
    expect(g.text).toBe(createTokenizer({ kind: 'byte' }).decode(g.tokens));
  });
  it('ACP eviction on a model without forget gates is one line, exit 2', async () => {
    const r = await runCli(['generate', '--checkpoint', text, '--prompt', 'the', '--kv-evict', 'acp', '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/^foxgate: .*acp/i);
  });
  it('a bare checkpoint: its run folder above gives the settings; a copy elsewhere needs --data', async () => {
    const inRun = jsonOf(await runCli(['eval', '--checkpoint', join(text, 'checkpoint'), '--device', 'cpu', '--json']));
    expect(inRun.loss).toBe(e.loss);
    const copy = join(root, 'copied-checkpoint');
    cpSync(join(text, 'checkpoint'), copy, { recursive: true });
    const bare = await runCli(['eval', '--checkpoint', copy, '--device', 'cpu']);
    expect(bare.code).toBe(2);
    expect(bare.err[0]).toMatch(/^foxgate: eval: --checkpoint .* is a checkpoint without its run folder: give --data/);
    const given = jsonOf(
      await runCli([
        'eval',
        '--checkpoint',
        copy,
        '--data',
        `text:${corpus}`,
        '--context',
        '32',
        '--rows',
        '16',
        '--device',
        'cpu',
        '--json',
      ]),
    );
    expect(given.loss).toBeCloseTo(e.loss, 6); // the same rows, batched 16 at a time instead of 4
    expect(given.targets).toBe(e.targets);
  });
  it('the MQAR checkpoint on text data: a vocabulary mismatch in one line, exit 2', async () => {
    const r = await runCli(['eval', '--checkpoint', mqar, '--data', `text:${corpus}`, '--device', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toEqual([
      "foxgate: eval: the checkpoint's vocabulary (34 tokens) does not match the data's (261: byte tokens); give the data and --tokenizer it was trained with",
    ]);
  });
});
