// foxgate train --init-from: sparsek from a trained Transformer++ run, and the one-line refusals.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from './util/cli-run.js';

const root = mkdtempSync(join(tmpdir(), 'fg-init-from-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const source = join(root, 'transformer');
const settings = join(root, 'small.json');
const common = ['--config', settings, '--device', 'cpu', '--eval-every', '0', '--json'];

beforeAll(async () => {
  writeFileSync(settings, JSON.stringify({ evalRows: 8, extrapolate: [2], batch: 4, logEvery: 1 }));
  const r = await runCli(['train', '--model', 'transformer', '--steps', '3', '--out', source, ...common]);
  expect(r.code, r.err.join('\n')).toBe(0);
});

describe('foxgate train --init-from', () => {
  it('--model sparsek from the transformer run: trains, the config is the checkpoint’s, config.json records the source', async () => {
    const out = join(root, 'sparsek');
    const r = await runCli(['train', '--model', 'sparsek', '--init-from', source, '--steps', '2', '--out', out, ...common]);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = jsonOf(r);
    expect(j.step).toBe(2);
    expect(Number.isFinite(j.loss)).toBe(true);
    const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const src = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8'));
    expect(saved.model.model).toBe('sparsek');
    for (const f of ['hidden_size', 'num_hidden_layers', 'num_heads', 'vocab_size']) expect(saved.model[f], f).toBe(src.model[f]);
    expect(saved.run.initFrom).toBe(source);
  });

  it('without --model: a fine-tune of the checkpoint’s model; the banner names the source', async () => {
    const out = join(root, 'finetune');
    const r = await runCli([
      'train',
      '--init-from',
      join(source, 'checkpoint'),
      '--steps',
      '1',
      '--out',
      out,
      '--config',
      settings,
      '--device',
      'cpu',
      '--quiet',
    ]);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model.model).toBe('transformer');
    const banner = await runCli([
      'train',
      '--init-from',
      source,
      '--steps',
      '0',
      '--out',
      join(root, 'banner'),
      '--config',
      settings,
      '--device',
      'cpu',
    ]);
    expect(banner.code, banner.err.join('\n')).toBe(0);
    expect(banner.out.join('\n')).toMatch(/weights from: .*transformer \(every tensor by name/);
  });

  it('refusals are one line with exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--model', 'sparsek', '--preset', 'small'], /preset 'small' sets hidden_size 512, but the checkpoint has 64/],
      [['--model', 'fox'], /a 'transformer' checkpoint cannot start a 'fox' run/],
      [['--resume', source], /give --init-from or --resume, not both/],
    ];
    for (const [i, [flags, re]] of cases.entries()) {
      const extra = flags.includes('--resume') ? [] : ['--out', join(root, `bad-${i}`)];
      const r = await runCli(['train', '--init-from', source, '--steps', '0', '--device', 'cpu', ...flags, ...extra]);
      expect(r.code, r.out.join('\n')).toBe(2);
      expect(r.err.length).toBe(1);
      expect(r.err[0]).toMatch(re);
    }
  });
});
