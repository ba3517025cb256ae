import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenTree, grad, gradcheck, unflattenTree } from '@foxgate/autograd';
import { type Backend, dispose, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ConfigInput,
  countParams,
  createDecoder,
  createModel,
  generate,
  loadCheckpoint,
  type ModelParams,
  modelConfig,
  paramShapes,
  saveCheckpoint,
} from '../src/index.js';
import { lcg, maxDiff } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const ids = (B: number, T: number, V: number, seed: number) => {
  const r = lcg(seed);
  return Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
};
const tok = (data: Int32Array, B: number, T: number) => tensor(data, [B, T], { dtype: 'int32', backend: 'cpu' });

/** Small k and window so that T = 12…40 exercises the selected (older) positions, not only the window. */
const small = (extra: ConfigInput = {}): ConfigInput => ({
  model: 'sparsek',
  preset: 'tiny',
  vocab_size: 40,
  sparsek_k: 3,
  sparsek_window: 4,
  ...extra,
});

describe('sparsek model: config', () => {
  it('defaults: Transformer++ (RoPE, no forget gate) with k 64, window 64, gate kv', () => {
    const c = modelConfig({ model: 'sparsek', preset: 'tiny' });
    expect([c.use_rope, c.fgate_type, c.sparsek_k, c.sparsek_window, c.sparsek_gate]).toEqual([true, 'none', 64, 64, 'kv']);
    expect('sparsek_k' in modelConfig({ model: 'transformer' })).toBe(false);
  });

  it('bad values and sparsek fields on other models are one line each', () => {
    const err = (c: ConfigInput) => {
      try {
        modelConfig(c);
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err({ model: 'sparsek', sparsek_k: 0 })).toBe('modelConfig: sparsek_k must be a finite number > 0, got 0');
    expect(err({ model: 'sparsek', sparsek_window: -1 })).toBe('modelConfig: sparsek_window must be an integer ≥ 0, got -1');
    expect(err({ model: 'sparsek', sparsek_window: 1.5 })).toBe('modelConfig: sparsek_window must be an integer ≥ 0, got 1.5');
    expect(err({ model: 'sparsek', sparsek_gate: 'hard' as never })).toBe(
      "modelConfig: sparsek_gate must be one of 'kv', 'v', 'logit', got \"hard\"",
    );
    expect(err({ model: 'fox', sparsek_k: 8 })).toBe("modelConfig: sparsek_k is only for model 'sparsek', but model is 'fox'");
    expect(err({ sparsek_window: 8 })).toBe("modelConfig: sparsek_window is only for model 'sparsek', but model is 'fox'");
  });

  it('parameters: the scoring network [H,h] + [H] per layer; countParams = Σ paramShapes = the initialised tree', () => {
    for (const preset of ['tiny', 'small'] as const) {
      const c = modelConfig({ model: 'sparsek', preset });
      const shapes = paramShapes(c);
      expect(shapes.get('model.layers.0.attn.score_proj.weight')).toEqual([c.num_heads, c.hidden_size]);
      expect(shapes.get('model.layers.0.attn.score_proj.bias')).toEqual([c.num_heads]);
      const sum = [...shapes.values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
      expect(countParams(c)).toBe(sum);
      const t = modelConfig({ model: 'transformer', preset });
      expect(countParams(c) - countParams(t)).toBe(c.num_hidden_layers * (c.num_heads * c.hidden_size + c.num_heads));
    }
    const m = createModel({ model: 'sparsek', preset: 'tiny' });
    const p = m.init(rngKey(0), { backend: 'cpu' });
    const flat = flattenTree(p);
    expect([...flat.keys()]).toEqual([...m.paramShapes().keys()]);
    expect([...flat.values()].reduce((a, t) => a + t.size, 0)).toBe(m.countParams());
    // the other weights are the Transformer++ init of the same key (the scorer takes the unused gate key)
    const tr = createModel({ model: 'transformer', preset: 'tiny' }).init(rngKey(0), { backend: 'cpu' });
    expect(maxDiff(flat.get('model.layers.1.attn.q_proj.weight')?.dataSync() ?? [], tr.model.layers[1].attn.q_proj.weight.dataSync())).toBe(
      0,
    );
    dispose([p, tr]);
  });
});

describe('sparsek model: forward', () => {
  it('shape [B,T,V], finite, and the scores matter (u changes the logits once T > window + k)', () => {
    const m = createModel(small());
    const p = m.init(rngKey(1), { backend: 'cpu' });
    const x = tok(ids(2, 23, 40, 3), 2, 23);
    const a = m.forward(p, x);
    expect(a.shape).toEqual([2, 23, 40]);
    expect(Array.from(a.dataSync()).every(Number.isFinite)).toBe(true);
    const w = p.model.layers[0].attn.score_proj?.weight as Tensor;
    const orig = w;
    const r = lcg(9);
    p.model.layers[0].attn.score_proj = {
      weight: tensor(
        Float32Array.from({ length: w.size }, () => 4 * (r() - 0.5)),
        [...w.shape],
        { backend: 'cpu' },
      ),
      bias: p.model.layers[0].attn.score_proj?.bias,
    };
    const b = m.forward(p, x);
    // the first window + 1 positions attend only to their window: the scores cannot change them
    const V = 40;
    expect(maxDiff(a.dataSync().slice(0, 4 * V), b.dataSync().slice(0, 4 * V))).toBe(0);
    expect(maxDiff(a.dataSync(), b.dataSync())).toBeGreaterThan(1e-4);
    dispose([p, x, a, b, orig]);
  });

  it('causality: changing tokens after position t never changes logits at ≤ t', () => {
    const m = createModel(small());
    const p = m.init(rngKey(2), { backend: 'cpu' });
    const [B, T, t] = [2, 37, 20];
    const a = ids(B, T, 40, 5);
    const b = a.slice();
    for (let r = 0; r < B; r++) for (let i = t + 1; i < T; i++) b[r * T + i] = (a[r * T + i] + 7) % 40;
    const la = m.forward(p, tok(a, B, T)).toArraySync() as number[][][];
    const lb = m.forward(p, tok(b, B, T)).toArraySync() as number[][][];
    for (let r = 0; r < B; r++) {
      expect(maxDiff(la[r].slice(0, t + 1).flat(), lb[r].slice(0, t + 1).flat())).toBe(0);
      expect(maxDiff(la[r].slice(t + 1).flat(), lb[r].slice(t + 1).flat())).toBeGreaterThan(1e-6);
    }
    dispose(p);
  });

  for (const gate of ['kv', 'v', 'logit'] as const) {
    it(`fused CPU attention equals the reference (gate ${gate}, float64)`, () => {
      const m = createModel(small({ sparsek_gate: gate }));
      const p = m.init(rngKey(3), { backend: 'cpu', dtype: 'float64' });
      // scores spread by about 1: fractional selections (a gap ≥ 1 makes τ non-unique, and then the
      // fused kernel and the reference may pick different supports of equal p, which the kv/v gates see)
      for (const l of p.model.layers) {
        const w = l.attn.score_proj?.weight as Tensor;
        const r = lcg(11);
        l.attn.score_proj = {
          weight: tensor(
            Float64Array.from({ length: w.size }, () => 0.5 * (r() - 0.5)),
            [...w.shape],
            { dtype: 'float64', backend: 'cpu' },
          ),
          bias: l.attn.score_proj?.bias,
        };
        w.dispose();
      }
      const x = tok(ids(2, 30, 40, 7), 2, 30);
      const f = m.forward(p, x).dataSync();
      const r = m.forward(p, x, { impl: 'reference' }).dataSync();
      expect(maxDiff(f, r)).toBeLessThan(1e-10);
      dispose([p, x]);
    });
  }
});

describe('sparsek model: gradients', () => {
  it('float64 finite differences through a micro model (window 2, k 2, T 9: selection active)', () => {
    const m = createModel({
      model: 'sparsek',
      vocab_size: 11,
      hidden_size: 8,
      num_heads: 2,
      num_hidden_layers: 2,
      intermediate_size: 8,
      sparsek_k: 2,
      sparsek_window: 2,
      initializer_range: 0.5,
    });
    const p = m.init(rngKey(4), { backend: 'cpu', dtype: 'float64' });
    const flat = flattenTree(p);
    const names = [...flat.keys()];
    const [B, T] = [2, 9];
    const x = tok(ids(B, T, 11, 5), B, T);
    const y = tok(ids(B, T, 11, 6), B, T);
    const f = (...leaves: Tensor[]) => m.loss(unflattenTree<ModelParams>(names.map((n, i) => [n, leaves[i]])), x, y);
    const report = gradcheck(f, [...flat.values()], { raise: false, atol: 1e-7, rtol: 1e-4 });
    expect(report.ok, report.message).toBe(true);
    // the loss and gradients flow through the gates into the scoring network (train step: grad of the tree)
    const g = grad((q: ModelParams) => m.loss(q, x, y))(p);
    for (const l of [0, 1]) {
      const gw = g.model.layers[l].attn.score_proj?.weight.dataSync() ?? [];
      expect(Math.max(...Array.from(gw, Math.abs)), `layer ${l}`).toBeGreaterThan(1e-6);
    }
    dispose(g);
    dispose([p, x, y]);
  });
});

describe('sparsek model: checkpoints and generation', () => {
  it('saves and loads by the dotted names (config.json keeps model sparsek and its fields)', async () => {
    const m = createModel(small({ sparsek_gate: 'logit' }));
    const p = m.init(rngKey(5), { backend: 'cpu' });
    const dir = mkdtempSync(join(tmpdir(), 'foxgate-sparsek-'));
    try {
      await saveCheckpoint(dir, p, m.config);
      const l = await loadCheckpoint(dir, { backend: 'cpu' });
      expect([l.config.model, l.config.sparsek_k, l.config.sparsek_window, l.config.sparsek_gate]).toEqual(['sparsek', 3, 4, 'logit']);
      const x = tok(ids(1, 17, 40, 8), 1, 17);
      expect(maxDiff(m.forward(p, x).dataSync(), l.model.forward(l.params, x).dataSync())).toBe(0);
      dispose([l.params, x]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      dispose(p);
    }
  });

  it('generate (bounded SPARSEK cache, test/generate-sparsek.test.ts): greedy tokens are the argmax of the full forward', async () => {
    const m = createModel(small());
    const p = m.init(rngKey(6), { backend: 'cpu' });
    const prompts = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [5]];
    const res = await generate(m, p, prompts, { maxNewTokens: 6, temperature: 0 });
    for (let b = 0; b < prompts.length; b++) {
      const seq = [...prompts[b]];
      for (const t of res.tokens[b]) {
        const logits = m.forward(p, tok(Int32Array.from(seq), 1, seq.length)).toArraySync() as number[][][];
        const row = logits[0][seq.length - 1];
        expect(t).toBe(row.indexOf(Math.max(...row)));
        seq.push(t);
      }
      expect(res.tokens[b].length).toBe(6);
    }
    await expect(generate(m, p, prompts, { maxNewTokens: 2, kvEvict: 'acp' })).rejects.toThrow(
      /^generate: opts.kvEvict "acp" is not for model 'sparsek'/,
    );
    await expect(createDecoder(m, p, { kvEvict: 'acp' })).rejects.toThrow(/^generate: opts.kvEvict "acp" is not for model 'sparsek'/);
    dispose(p);
  });
});

describe.skipIf(!gpu)('sparsek model on WebGPU (the fused WGSL kernels)', () => {
  it('the same logits and loss gradients as the fused CPU kernel (float32)', async () => {
    const m = createModel(small());
    const pc = m.init(rngKey(7), { backend: 'cpu' });
    const pg = m.init(rngKey(7), { backend: gpu as Backend });
    const data = ids(1, 19, 40, 4);
    const tgt = ids(1, 19, 40, 5);
    const on = (b: string | Backend, d: Int32Array) => tensor(d, [1, 19], { dtype: 'int32', backend: b });
    const lc = m.forward(pc, on('cpu', data)).dataSync();
    const lg = await m.forward(pg, on(gpu as Backend, data), { impl: 'fused' }).data();
    expect(maxDiff(lc, lg)).toBeLessThan(1e-4);
    const gc = grad((q: ModelParams) => m.loss(q, on('cpu', data), on('cpu', tgt)))(pc);
    const gg = grad((q: ModelParams) => m.loss(q, on(gpu as Backend, data), on(gpu as Backend, tgt)))(pg);
    const w = (t: ModelParams) => t.model.layers[0].attn.score_proj?.weight as Tensor;
    expect(maxDiff(w(gc).dataSync(), await w(gg).data())).toBeLessThan(1e-5);
    dispose([pc, pg, gc, gg]);
  }, 120_000);
});
