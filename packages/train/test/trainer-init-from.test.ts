import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenTree } from '@foxgate/autograd';
import { createModel, loadCheckpoint, saveCheckpoint } from '@foxgate/models';
import { dispose, readSafetensorsFile, rngKey, type Tensor, writeSafetensorsFile } from '@foxgate/tensor';
import { rejectsNaming } from '@foxgate/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { train } from '../src/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'foxgate-init-from-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A tiny run on MQAR on the CPU (context 32). */
const RUN = {
  data: 'synthetic:mqar',
  device: 'cpu',
  batch: 4,
  context: 32,
  logEvery: 1,
  evalEvery: 0,
  checkpointEvery: 0,
  seed: 3,
};
const quiet = { skipFinalEval: true };

/** The first run: a tiny Transformer++ trained for a few steps; its run folder is what the others start from. */
const source = join(tmp, 'transformer');
beforeAll(async () => {
  await train({ ...RUN, model: { model: 'transformer', preset: 'tiny' }, steps: 4 }, { out: source, ...quiet });
});

const bits = (t: Tensor) => new Uint8Array((t.dataSync() as Float32Array).slice().buffer);
const same = (a: Tensor, b: Tensor) => Buffer.from(bits(a)).equals(Buffer.from(bits(b)));

describe('train({ initFrom }): sparsek from a trained Transformer++', () => {
  it('loads every weight bit for bit, the scoring network is the seed init, and the config is the checkpoint’s', async () => {
    const out = join(tmp, 'sparsek-step0');
    const r = await train(
      { ...RUN, model: { model: 'sparsek', sparsek_k: 4, sparsek_window: 8 }, initFrom: source, steps: 0 },
      { out, ...quiet },
    );
    expect(r.modelConfig.model).toBe('sparsek');
    const src = await loadCheckpoint(join(source, 'checkpoint'), { backend: 'cpu' });
    const got = await loadCheckpoint(join(out, 'checkpoint'), { backend: 'cpu' });
    try {
      for (const f of ['hidden_size', 'num_hidden_layers', 'num_heads', 'vocab_size', 'intermediate_size', 'rope_base'] as const) {
        expect(got.config[f], f).toEqual(src.config[f]);
      }
      expect([got.config.sparsek_k, got.config.sparsek_window]).toEqual([4, 8]);
      const a = flattenTree(src.params);
      const b = flattenTree(got.params);
      // the seeded init of the same sparsek config: its score_proj is what the run must hold
      const seeded = flattenTree(createModel(got.config).init(rngKey(RUN.seed), { backend: 'cpu' }));
      let scorers = 0;
      for (const [name, t] of b) {
        if (name.includes('.attn.score_proj.')) {
          scorers++;
          expect(a.has(name)).toBe(false);
          expect(same(t, seeded.get(name) as Tensor), name).toBe(true);
        } else expect(same(t, a.get(name) as Tensor), name).toBe(true);
      }
      expect(scorers).toBe(2 * src.config.num_hidden_layers);
      expect(b.size).toBe(a.size + scorers);
      // the trained weights are not the seed's (the check above is not trivially true)
      expect(same(b.get('model.layers.0.attn.q_proj.weight') as Tensor, seeded.get('model.layers.0.attn.q_proj.weight') as Tensor)).toBe(
        false,
      );
      const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(saved.run.initFrom).toBe(source);
      expect(saved.model.model).toBe('sparsek');
      dispose([...seeded.values()]);
    } finally {
      dispose([src.params, got.params]);
    }
  });

  it('window ≥ context: the first loss equals the Transformer’s on the same batch (1e-5); training runs', async () => {
    const steps = 3;
    const tr = await train({ ...RUN, initFrom: source, steps }, { out: join(tmp, 'finetune'), ...quiet });
    expect(tr.modelConfig.model).toBe('transformer'); // no --model: the checkpoint's (a fine-tune)
    const sk = await train(
      { ...RUN, model: { model: 'sparsek', sparsek_k: 4, sparsek_window: RUN.context }, initFrom: source, steps },
      { out: join(tmp, 'sparsek-full'), ...quiet },
    );
    expect(sk.losses.length).toBe(steps);
    for (const l of [...tr.losses, ...sk.losses]) expect(Number.isFinite(l)).toBe(true);
    // every query sees its whole past through the window: SPARSEK attention is softmax attention
    expect(Math.abs(sk.losses[0] - tr.losses[0])).toBeLessThan(1e-5 * Math.abs(tr.losses[0]));
    // a window shorter than the context: the selection is in play, the loss finite and of the same size
    const short = await train(
      { ...RUN, model: { model: 'sparsek', sparsek_k: 4, sparsek_window: 8 }, initFrom: join(source, 'checkpoint'), steps: 2 },
      { out: join(tmp, 'sparsek-short'), ...quiet },
    );
    expect(Number.isFinite(short.losses[0])).toBe(true);
    expect(short.losses[0]).not.toBe(tr.losses[0]);
    expect(Math.abs(short.losses[0] - tr.losses[0])).toBeLessThan(0.5 * tr.losses[0]);
  }, 120_000);
});

describe('train({ initFrom }): sparsek from Transformer-Pro (its flags carry over)', () => {
  it('QK-norm, token shift and output gate come along; window ≥ context gives the same first loss', async () => {
    const pro = join(tmp, 'pro');
    await train({ ...RUN, model: { model: 'transformerPro', preset: 'tiny' }, steps: 1 }, { out: pro, ...quiet });
    const tr = await train({ ...RUN, initFrom: pro, steps: 1 }, { out: join(tmp, 'pro-finetune'), ...quiet });
    const sk = await train(
      { ...RUN, model: { model: 'sparsek', sparsek_window: RUN.context }, initFrom: pro, steps: 1 },
      { out: join(tmp, 'pro-sparsek'), ...quiet },
    );
    expect(sk.modelConfig).toMatchObject({ model: 'sparsek', qk_norm: true, use_k_shift: true, use_output_gate: true });
    expect(Math.abs(sk.losses[0] - tr.losses[0])).toBeLessThan(1e-5 * Math.abs(tr.losses[0]));
  }, 120_000);
});

describe('train({ initFrom }): what is refused, in one line', () => {
  const refuse = (settings: Record<string, unknown>, name: string, re: RegExp) =>
    rejectsNaming(train({ ...RUN, steps: 0, ...settings }, { out: join(tmp, `bad-${name}`), ...quiet }), 'train', re);

  it('a checkpoint with forget gates, another model, clashing config fields, a missing folder', async () => {
    const fox = join(tmp, 'fox-ckpt');
    const fm = createModel({ model: 'fox', preset: 'tiny', vocab_size: 16 });
    const fp = fm.init(rngKey(0), { backend: 'cpu' });
    await saveCheckpoint(fox, fp, fm.config);
    dispose(fp);
    await refuse({ model: { model: 'sparsek' }, initFrom: fox }, 'fox', /a 'fox' checkpoint has forget gates \(fgate_proj\)/);
    await refuse({ model: { model: 'fox' }, initFrom: source }, 'other', /a 'transformer' checkpoint cannot start a 'fox' run/);
    await refuse(
      { model: { model: 'sparsek', hidden_size: 128 }, initFrom: source },
      'hidden',
      /hidden_size 128 clashes with the checkpoint's 64/,
    );
    await refuse({ model: { model: 'sparsek', preset: 'small' }, initFrom: source }, 'preset', /preset 'small' sets hidden_size 512/);
    await refuse({ initFrom: join(tmp, 'nowhere') }, 'missing', /--init-from .*nowhere: no such folder/);
  });

  it('a checkpoint missing a tensor: the tensor is named', async () => {
    const dir = join(tmp, 'holed');
    const src = await loadCheckpoint(join(source, 'checkpoint'), { backend: 'cpu' });
    await saveCheckpoint(dir, src.params, src.config);
    dispose(src.params);
    const file = join(dir, 'model.safetensors');
    const st = await readSafetensorsFile(file);
    const entries: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of st.tensors) {
      if (name !== 'model.layers.1.mlp.down_proj.weight') entries[name] = { dtype: 'F32', shape: t.shape, data: t.data as Float32Array };
    }
    await writeSafetensorsFile(file, entries);
    await refuse({ model: { model: 'sparsek' }, initFrom: dir }, 'holed', /model\.layers\.1\.mlp\.down_proj\.weight/);
  });
});
