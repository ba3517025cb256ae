import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { flattenTree } from '@foxgate/autograd';
import { dispose, rngKey } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { countParams, createModel, intermediateSize, MODEL_NAMES, modelConfig, PRESET_NAMES, paramShapes } from '../src/index.js';
import { repoRoot } from './util.js';

const manifests = JSON.parse(readFileSync(resolve(repoRoot(), '../shared/fixtures/models/models.json'), 'utf8')) as Record<
  string,
  { variant: string; config: Record<string, unknown> }
>;

describe('modelConfig', () => {
  it('accepts the official fixture configs as they are and infers the model from their flags', () => {
    const want: Record<string, string> = { fox: 'fox', fox_pro: 'foxPro', transformer_pro: 'transformerPro' };
    for (const m of Object.values(manifests)) {
      const c = modelConfig(m.config);
      expect(c.model).toBe(want[m.variant]);
      expect(c.hidden_size).toBe(64);
    }
    expect(modelConfig({ model_type: 'transformer-project_fox' }).model).toBe('transformer');
    expect(modelConfig({ model_type: 'forgetting_transformer-project_fox' }).model).toBe('fox');
  });

  it('model names set the family flags; preset the sizes; given fields override both', () => {
    const c = modelConfig({ model: 'foxPro', preset: '125M', vocab_size: 50257, use_v_shift: false });
    expect([c.hidden_size, c.num_hidden_layers, c.num_heads, c.hidden_ratio]).toEqual([768, 12, 12, 3.5]);
    expect([c.qk_norm, c.use_k_shift, c.use_v_shift, c.use_output_gate, c.use_output_norm, c.use_rope, c.fgate_type]).toEqual([
      true,
      true,
      false,
      true,
      true,
      false,
      'full',
    ]);
    const t = modelConfig({ model: 'transformer' });
    expect([t.use_rope, t.fgate_type, t.hidden_ratio, t.qk_norm]).toEqual([true, 'none', 4, false]);
  });

  it('the MLP width formula: 256·ceil(int(h·r·2/3)/256), or intermediate_size', () => {
    expect(intermediateSize({ hidden_size: 64, hidden_ratio: 4, intermediate_size: null })).toBe(256);
    expect(intermediateSize({ hidden_size: 768, hidden_ratio: 4, intermediate_size: null })).toBe(2048);
    expect(intermediateSize({ hidden_size: 768, hidden_ratio: 3.5, intermediate_size: null })).toBe(1792);
    expect(intermediateSize({ hidden_size: 1024, hidden_ratio: 3.5, intermediate_size: null })).toBe(2560); // int(2389.33) → 10 × 256
    expect(intermediateSize({ hidden_size: 64, hidden_ratio: 4, intermediate_size: 100 })).toBe(100);
  });

  it('each mistake is one line naming the field and what is allowed', () => {
    const err = (cfg: Record<string, unknown>) => {
      try {
        modelConfig(cfg);
      } catch (e) {
        expect((e as Error).name).toBe('FoxgateError');
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err({ model: 'fox', hiden_size: 64 })).toMatch(
      /^modelConfig: unknown field 'hiden_size' \(fields: model, vocab_size, hidden_size, /,
    );
    expect(err({ model: 'gpt' })).toBe(
      "modelConfig: model must be one of 'transformer', 'fox', 'foxPro', 'transformerPro', 'sparsek', got \"gpt\"",
    );
    expect(err({ hidden_size: '64' })).toBe('modelConfig: hidden_size must be a positive integer, got "64"');
    expect(err({ num_heads: 0 })).toBe('modelConfig: num_heads must be a positive integer, got 0');
    expect(err({ qk_norm: 1 })).toBe('modelConfig: qk_norm must be true or false, got 1');
    expect(err({ fgate_type: 'scalar' })).toBe("modelConfig: fgate_type must be one of 'full', 'none', got \"scalar\"");
    expect(err({ hidden_act: 'gelu' })).toBe('modelConfig: hidden_act must be one of \'swish\', got "gelu"');
    expect(err({ norm_eps: -1 })).toBe('modelConfig: norm_eps must be a finite number > 0, got -1');
    expect(err({ hidden_size: 100, num_heads: 3 })).toBe('modelConfig: num_heads 3 must divide hidden_size 100');
    expect(err({ model: 'transformer', hidden_size: 6, num_heads: 2 })).toBe(
      'modelConfig: use_rope needs an even head dim, got hidden_size/num_heads = 3',
    );
    expect(err({ qk_norm_share_param_across_head: true })).toBe('modelConfig: qk_norm_share_param_across_head needs qk_norm: true');
    expect(err({ preset: 'huge' })).toBe("modelConfig: preset must be one of 'tiny', 'small', '125M', '360M', '760M', got \"huge\"");
  });
});

describe('parameter counts', () => {
  it('countParams equals Σ paramShapes and the initialised tree, for every model (tiny and small)', () => {
    for (const model of MODEL_NAMES) {
      for (const preset of ['tiny', 'small'] as const) {
        const m = createModel({ model, preset });
        const sum = [...paramShapes(m.config).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
        expect(countParams(m.config), `${model} ${preset}`).toBe(sum);
        if (preset === 'tiny') {
          const p = m.init(rngKey(0), { backend: 'cpu' });
          const flat = flattenTree(p);
          expect([...flat.keys()]).toEqual([...paramShapes(m.config).keys()]);
          expect([...flat.values()].reduce((a, t) => a + t.size, 0)).toBe(sum);
          dispose(p);
        }
      }
    }
    const shared = modelConfig({ model: 'foxPro', qk_norm_share_param_across_head: true });
    expect(countParams(modelConfig({ model: 'foxPro' })) - countParams(shared)).toBe(2 * 2 * (64 - 32));
  });

  it('presets: tiny < 1M, small ≈ 20M (byte vocab); 125M/360M/760M near the paper sizes (GPT-2 vocab)', () => {
    const rows: string[] = [];
    for (const preset of PRESET_NAMES) {
      const vocab = preset === 'tiny' || preset === 'small' ? 261 : 50257;
      const counts = MODEL_NAMES.map((model) => countParams(modelConfig({ model, preset, vocab_size: vocab })));
      rows.push(`${preset.padEnd(5)} V=${vocab}: ${MODEL_NAMES.map((m, i) => `${m} ${(counts[i] / 1e6).toFixed(2)}M`).join(', ')}`);
      if (preset === 'tiny') for (const n of counts) expect(n).toBeLessThan(1e6);
      if (preset === 'small') for (const n of counts) expect(Math.abs(n / 20e6 - 1)).toBeLessThan(0.15);
      const nominal = { '125M': 125e6, '360M': 360e6, '760M': 760e6 }[preset as string];
      // untied input and output embeddings of a 50k vocabulary add 2·V·h on top of the nominal size
      if (nominal) {
        for (const n of counts) {
          expect(n / nominal).toBeGreaterThan(0.95);
          expect(n / nominal).toBeLessThan(1.35);
        }
      }
    }
    console.log(`parameter counts:\n${rows.join('\n')}`);
  });
});
