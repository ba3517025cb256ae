import { flattenTree, gradcheck, unflattenTree } from '@foxgate/autograd';
import { dispose, memoryStats, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { type ConfigInput, createModel, MODEL_NAMES, type ModelParams } from '../src/index.js';
import { lcg, maxDiff } from './util.js';

const ids = (B: number, T: number, V: number, seed: number) => {
  const r = lcg(seed);
  return Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
};
const tok = (data: Int32Array, B: number, T: number) => tensor(data, [B, T], { dtype: 'int32', backend: 'cpu' });

/** A model small enough for float64 finite differences. */
const micro = (model: string, extra: ConfigInput = {}): ConfigInput => ({
  model,
  vocab_size: 11,
  hidden_size: 8,
  num_heads: 2,
  num_hidden_layers: 2,
  intermediate_size: 8,
  ...extra,
});

describe('forward: causality', () => {
  for (const name of MODEL_NAMES) {
    it(`${name}: changing tokens after position t never changes logits at ≤ t`, () => {
      const m = createModel({ model: name, preset: 'tiny', vocab_size: 50 });
      const p = m.init(rngKey(1), { backend: 'cpu' });
      const [B, T, t] = [2, 37, 20];
      const a = ids(B, T, 50, 3);
      const b = a.slice();
      for (let r = 0; r < B; r++) for (let i = t + 1; i < T; i++) b[r * T + i] = (a[r * T + i] + 7) % 50;
      const ta = tok(a, B, T);
      const tb = tok(b, B, T);
      const la = m.forward(p, ta).toArraySync() as number[][][];
      const lb = m.forward(p, tb).toArraySync() as number[][][];
      for (let r = 0; r < B; r++) {
        expect(maxDiff(la[r].slice(0, t + 1).flat(), lb[r].slice(0, t + 1).flat())).toBe(0);
        expect(maxDiff(la[r].slice(t + 1).flat(), lb[r].slice(t + 1).flat())).toBeGreaterThan(1e-6);
      }
      dispose([p, ta, tb]);
    });
  }
});

describe('forward: docStarts equals running the documents separately', () => {
  for (const name of ['fox', 'foxPro'] as const) {
    for (const acp of [false, true]) {
      it(`${name}${acp ? ' with ACP' : ''}`, () => {
        const m = createModel({ model: name, preset: 'tiny', vocab_size: 40 });
        const p = m.init(rngKey(2), { backend: 'cpu' });
        const lens = [29, 70, 31]; // one row holding three documents
        const T = lens.reduce((a, b) => a + b);
        const all = ids(1, T, 40, 9);
        const starts = new Uint8Array(T);
        let s = 0;
        for (const n of lens) {
          starts[s] = 1;
          s += n;
        }
        const docStarts = tensor(starts, [1, T], { dtype: 'bool', backend: 'cpu' });
        const packed = m.forward(p, tok(all, 1, T), { docStarts, acp }).dataSync();
        const V = 40;
        s = 0;
        for (const n of lens) {
          const alone = m.forward(p, tok(all.slice(s, s + n), 1, n), { acp }).dataSync();
          expect(maxDiff(packed.slice(s * V, (s + n) * V), alone)).toBeLessThan(2e-5);
          s += n;
        }
        dispose(p);
      });
    }
  }

  it('is refused for softmax models, with one line', () => {
    const m = createModel({ model: 'transformer', preset: 'tiny' });
    const p = m.init(rngKey(0), { backend: 'cpu' });
    const d = tensor(new Uint8Array(4), [1, 4], { dtype: 'bool', backend: 'cpu' });
    expect(() => m.forward(p, tok(new Int32Array(4), 1, 4), { docStarts: d })).toThrow(
      /^forward: opts.docStarts is not supported by softmax-attention models/,
    );
    expect(() => m.forward(p, tok(new Int32Array(4), 1, 4), { acp: true })).toThrow(/^forward: opts.acp needs forget gates/);
    dispose(p);
  });
});

describe('gradients: float64 finite differences through the whole model (CPU fused kernels)', () => {
  for (const name of MODEL_NAMES) {
    it(name, () => {
      const m = createModel(micro(name));
      const p = m.init(rngKey(4), { backend: 'cpu', dtype: 'float64' });
      const flat = flattenTree(p);
      const names = [...flat.keys()];
      const [B, T] = [2, 7];
      const x = tok(ids(B, T, 11, 5), B, T);
      const y = tok(ids(B, T, 11, 6), B, T);
      const f = (...leaves: Tensor[]) => m.loss(unflattenTree<ModelParams>(names.map((n, i) => [n, leaves[i]])), x, y);
      const report = gradcheck(f, [...flat.values()], { raise: false, atol: 1e-7, rtol: 1e-4 });
      expect(report.ok, report.message).toBe(true);
      dispose([p, x, y]);
    });
  }
});

describe('lossAndLogits', () => {
  const m = createModel(micro('foxPro'));
  const p = m.init(rngKey(7), { backend: 'cpu', dtype: 'float64' });
  const [B, T, V] = [2, 5, 11];
  const x = tok(ids(B, T, V, 1), B, T);
  const y = ids(B, T, V, 2);
  /** Mean of −log softmax(logits)[target] over the listed (row, position) pairs, by hand. */
  const byHand = (logits: number[][][], pairs: [number, number, number][]) => {
    let s = 0;
    for (const [b, t, c] of pairs) {
      const row = logits[b][t];
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
      s += lse - row[c];
    }
    return s / pairs.length;
  };

  it('aligned targets with an ignore index and a loss mask', () => {
    const yy = y.slice();
    yy[3] = -100;
    const mask = new Uint8Array(B * T).fill(1);
    mask[6] = 0;
    const { loss, logits } = m.lossAndLogits(p, x, tok(yy, B, T), { lossMask: tensor(mask, [B, T], { dtype: 'bool', backend: 'cpu' }) });
    const L = logits.toArraySync() as number[][][];
    const pairs: [number, number, number][] = [];
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) if (yy[b * T + t] !== -100 && mask[b * T + t]) pairs.push([b, t, yy[b * T + t]]);
    expect(pairs.length).toBe(8);
    expect(Math.abs(loss.dataSync()[0] - byHand(L, pairs))).toBeLessThan(1e-12);
  });

  it("shift: true predicts each row's next token (Hugging Face labels)", () => {
    const { loss, logits } = m.lossAndLogits(p, x, x, { shift: true });
    const L = logits.toArraySync() as number[][][];
    const xs = x.dataSync();
    const pairs: [number, number, number][] = [];
    for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) pairs.push([b, t, xs[b * T + t + 1]]);
    expect(Math.abs(loss.dataSync()[0] - byHand(L, pairs))).toBeLessThan(1e-12);
  });

  it("reduction 'none' gives per-token losses", () => {
    const per = m.loss(p, x, tok(y, B, T), { reduction: 'none' });
    expect(per.shape).toEqual([B, T]);
    const mean = m.loss(p, x, tok(y, B, T));
    const d = Array.from(per.dataSync());
    expect(Math.abs(d.reduce((a, v) => a + v, 0) / d.length - mean.dataSync()[0])).toBeLessThan(1e-12);
  });

  it('bad targets and options are one line', () => {
    expect(() => m.loss(p, x, tok(new Int32Array(3), 1, 3))).toThrow(/^lossAndLogits: targets must be int32 \[2,5\]/);
    expect(() => m.loss(p, x, tok(y, B, T), { acpp: true } as never)).toThrow(/^lossAndLogits: unknown option 'acpp'/);
    expect(() => m.forward(p, tensor([[1, 2]], undefined, { dtype: 'float32', backend: 'cpu' }))).toThrow(
      /^forward: tokens must be int32 \[B,T\]/,
    );
  });
});

describe('forwardWithStats', () => {
  it('reports ACP pruning per layer and logF per layer; pruning keeps the logits within the ε bound', () => {
    const m = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: 30 });
    const p = m.init(rngKey(3), { backend: 'cpu' });
    // gates that forget fast: logF ≈ logsigmoid(−4) ≈ −4 per step
    for (const l of p.model.layers) {
      const b = l.attn.fgate_proj?.bias as Tensor;
      l.attn.fgate_proj = {
        weight: l.attn.fgate_proj?.weight as Tensor,
        bias: tensor(new Float32Array(b.size).fill(-4), [...b.shape], { backend: 'cpu' }),
      };
      b.dispose();
    }
    const T = 256;
    const x = tok(ids(1, T, 30, 4), 1, T);
    const full = m.forwardWithStats(p, x);
    const acp = m.forwardWithStats(p, x, { acp: true });
    expect(full.stats.pruned.map((t) => t.dataSync()[0])).toEqual([0, 0]);
    const fr = acp.stats.pruned.map((t) => t.dataSync()[0]);
    // 4 query tiles: 10 causal tiles. A tile is pruned on Λ(its first query) − Λ(the tile's last
    // key): one step (≈ −4) for the tile just left of the diagonal, so only the 3 tiles two or
    // more tiles back go: 3/10
    for (const f of fr) expect(f).toBeCloseTo(0.3, 6);
    expect(acp.stats.logF.length).toBe(2);
    expect(acp.stats.logF[0].shape).toEqual([1, T, 2]);
    expect(Math.max(...acp.stats.logF[0].dataSync())).toBeLessThan(-3);
    expect(maxDiff(full.logits.dataSync(), acp.logits.dataSync())).toBeLessThan(1e-4);
    dispose([p, x, full, acp]);
  });
});

describe('memory', () => {
  it('forward and loss leave only their results alive', () => {
    const m = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: 30 });
    const p = m.init(rngKey(3), { backend: 'cpu' });
    const x = tok(ids(2, 16, 30, 4), 2, 16);
    const before = memoryStats().backends.cpu?.tensors ?? 0;
    const l = m.forward(p, x);
    const loss = m.loss(p, x, x);
    expect(memoryStats().backends.cpu?.tensors).toBe(before + 2);
    dispose([l, loss, p, x]);
  });
});
