import { DEFAULT_LOG_EPS } from '@foxgate/attention';
import { dispose, memoryStats, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { type CacheShape, type CallState, LayerCache } from '../src/generate/cache.js';
import { acpBounds, acpThreshold, EvictionTracker } from '../src/generate/evict.js';
import { createDecoder, createModel, generate, type Model, type ModelParams } from '../src/index.js';
import { lcg, values } from './util.js';

const V = 40;
/** Small FoX-family models with explicit sizes (head dim 32). */
const make = (model: string) => createModel({ model, hidden_size: 64, num_heads: 2, num_hidden_layers: 2, vocab_size: V });
const promptOf = (n: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
};

/** Sets every forget-gate bias to `bias` (logF ≈ logsigmoid(bias) per token). */
function setGateBias(params: ModelParams, bias: number): void {
  for (const l of params.model.layers) {
    const g = l.attn.fgate_proj;
    if (!g?.bias) continue;
    const b = tensor(new Float32Array(g.bias.size).fill(bias), [...g.bias.shape], { backend: 'cpu' });
    g.bias.dispose();
    g.bias = b;
  }
}

/** Decodes the same greedy tokens (chosen by the full cache) with 'none' and 'acp'; logits per step. */
async function sideBySide(model: Model, params: ModelParams, prompts: number[][], steps: number, logEps?: number) {
  const maxLength = Math.max(...prompts.map((p) => p.length)) + steps;
  const full = await createDecoder(model, params, { maxLength });
  const ev = await createDecoder(model, params, { kvEvict: 'acp', maxLength, acpLogEps: logEps });
  const pairs: [Float32Array | Float64Array, Float32Array | Float64Array][] = [];
  try {
    let a = await full.prefill(prompts);
    let b = await ev.prefill(prompts);
    pairs.push([a, b]);
    for (let s = 0; s < steps; s++) {
      const next = prompts.map((_, r) => {
        const row = a.subarray(r * V, (r + 1) * V);
        return row.indexOf(Math.max(...row));
      });
      a = await full.step(next);
      b = await ev.step(next);
      pairs.push([a, b]);
    }
    return { pairs, stats: ev.cacheStats(), fullStats: full.cacheStats() };
  } finally {
    full.dispose();
    ev.dispose();
  }
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

describe('ACP eviction: the attention output stays within 2ε·max|v| of full attention', () => {
  it('random unit-bounded q, k with fast gates, two sequences, two heads', () => {
    const [B, H, D, steps] = [2, 2, 8, 80];
    const shape = (masked: boolean, track: boolean): CacheShape => ({
      B,
      H,
      D,
      dtype: 'float64',
      backend: (tensor([0], [1], { dtype: 'float64', backend: 'cpu' }) as Tensor).backend,
      impl: 'fused',
      masked,
      fox: true,
      trackLogF: track,
    });
    const call: CallState = { pad: null, keyColumn: null };
    const full = new LayerCache(shape(false, false), call);
    const ev = new LayerCache(shape(true, true), call);
    // q and k of norm r: |scale·q·k| ≤ scale·r² = U
    const r = 2;
    const U = (r * r) / Math.sqrt(D);
    const logEps = -3;
    const N = steps;
    const tracker = new EvictionTracker(B, H, [acpThreshold(U, N, logEps), acpThreshold(U, N, logEps)], [0, 0]);
    const unit = (seed: number) => {
      const x = values(B * H * D, seed, -1, 1);
      for (let i = 0; i < B * H; i++) {
        const n = Math.hypot(...x.slice(i * D, (i + 1) * D));
        for (let d = 0; d < D; d++) x[i * D + d] *= r / n;
      }
      return tensor(Float64Array.from(x), [B, 1, H, D], { dtype: 'float64', backend: 'cpu' });
    };
    let worst = 0;
    let bound = 0;
    let maxV = 0;
    const lam: number[][] = Array.from({ length: B * H }, () => []); // Λ per (b, h), kept by the test
    for (let s = 0; s < steps; s++) {
      const q = unit(3 * s + 1);
      const k = unit(3 * s + 2);
      const vData = values(B * H * D, 3 * s + 3, -1, 1);
      for (const x of vData) maxV = Math.max(maxV, Math.abs(x));
      const v = tensor(Float64Array.from(vData), [B, 1, H, D], { dtype: 'float64', backend: 'cpu' });
      // head 0 decays fast (logF ≈ −1.5), head 1 slowly (≈ −0.05)
      const lf = Float64Array.from({ length: B * H }, (_, i) => (i % H === 0 ? -1.5 : -0.2) * (1 + 0.3 * Math.sin(s + i)));
      const logF = tensor(lf, [B, 1, H], { dtype: 'float64', backend: 'cpu' });
      for (let i = 0; i < B * H; i++) lam[i].push((lam[i][lam[i].length - 1] ?? 0) + lf[i]);
      const oFull = full.attend(q, k, v, logF).dataSync();
      const oEv = ev.attend(q, k, v, logF).dataSync();
      worst = Math.max(worst, maxAbsDiff(oFull, oEv));
      bound = 2 * Math.exp(logEps) * maxV;
      ev.mask(tracker.push(lf, 1));
      ev.dropBefore(tracker.firstKept());
      dispose([q, k, v, logF]);
    }
    const kept = tracker.keptPerHead();
    // exactly the keys j with Λ_last − Λ_j ≥ δ are kept (Λ only falls, so earlier evictions agree)
    const delta = acpThreshold(U, N, logEps);
    const want = [0, 0];
    for (let i = 0; i < B * H; i++) want[i % H] += lam[i].filter((x) => lam[i][lam[i].length - 1] - x >= delta).length;
    expect(kept).toEqual(want);
    // the fast head keeps only a short window, the slow one much more
    expect(kept[0]).toBeLessThan(B * 20);
    expect(kept[1]).toBeGreaterThan(kept[0]);
    expect(ev.start).toBeGreaterThan(0); // rows every (b, h) dropped left the attention window
    expect(worst).toBeGreaterThan(0); // eviction changed something…
    expect(worst).toBeLessThan(bound); // …but stayed within the bound
    full.dispose();
    ev.dispose();
  });
});

describe('ACP eviction in generate', () => {
  it('foxPro with fast gates: logits within the bound of full decoding, most entries evicted, per layer and head', async () => {
    const m = make('foxPro');
    const p = m.init(rngKey(5), { backend: 'cpu' });
    setGateBias(p, -4);
    const { pairs, stats, fullStats } = await sideBySide(m, p, [promptOf(41, 1), promptOf(26, 2)], 40);
    for (const [a, b] of pairs) expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    // U = √32 from the unit QK-norm gains: δ = −(2√32 + log 81) − 10 ≈ −25.7; at logF ≈ −4 a key
    // is evicted once it is 7 tokens back: about 7 of 81 (and 66) entries kept per head
    expect(stats.perLayer.length).toBe(2);
    for (const l of stats.perLayer) {
      expect(l.full).toBe(81 + 66);
      for (const k of l.kept) expect(k).toBeLessThan(2 * 10);
    }
    expect(stats.full).toBe(fullStats.full);
    expect(fullStats.kept).toBe(fullStats.full);
    expect(stats.kept).toBe(stats.perLayer.reduce((s, l) => s + l.kept.reduce((a, b) => a + b, 0), 0));
    dispose(p);
  });

  it('a larger ε evicts more (the logits still agree: the real scores stay far below U)', async () => {
    const m = make('foxPro');
    const p = m.init(rngKey(5), { backend: 'cpu' });
    setGateBias(p, -4);
    const tight = await sideBySide(m, p, [promptOf(30, 1)], 10, DEFAULT_LOG_EPS);
    const loose = await sideBySide(m, p, [promptOf(30, 1)], 10, -1);
    expect(loose.stats.kept).toBeLessThan(tight.stats.kept);
    for (const [a, b] of loose.pairs) expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    dispose(p);
  });

  it('nothing evicted (slow gates): exactly the logits of full decoding', async () => {
    const m = make('foxPro');
    const p = m.init(rngKey(6), { backend: 'cpu' });
    setGateBias(p, 10);
    for (const prompts of [[promptOf(23, 3)], [promptOf(23, 3), promptOf(9, 4)]]) {
      const { pairs, stats } = await sideBySide(m, p, prompts, 12);
      for (const [a, b] of pairs) expect(maxAbsDiff(a, b)).toBe(0);
      expect(stats.kept).toBe(stats.full);
    }
    dispose(p);
  });

  it('fox without QK-norm: a Frobenius-norm bound U from the weights, and eviction within the bound', async () => {
    const m = make('fox');
    const p = m.init(rngKey(7), { backend: 'cpu' });
    const U = await acpBounds(m.config, p);
    expect(U.length).toBe(2);
    // by hand for layer 0, head 1: scale · h · ‖W_q,1·diag(g)‖_F · ‖W_k,1·diag(g)‖_F with g = 1
    const [h, D] = [64, 32];
    const fro = (w: Tensor, head: number) => {
      const d = w.dataSync();
      let s = 0;
      for (let i = head * D * h; i < (head + 1) * D * h; i++) s += d[i] ** 2;
      return Math.sqrt(s);
    };
    const a0 = p.model.layers[0].attn;
    const want = (h / Math.sqrt(D)) * fro(a0.q_proj.weight as Tensor, 1) * fro((a0.k_proj as { weight: Tensor }).weight, 1);
    expect(Math.abs(U[0][1] / want - 1)).toBeLessThan(2e-4);
    setGateBias(p, -9);
    const { pairs, stats } = await sideBySide(m, p, [promptOf(60, 8)], 10);
    for (const [a, b] of pairs) expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    expect(stats.kept).toBeLessThan(stats.full / 2);
    dispose(p);
  });

  it('is refused with one line for softmax models', async () => {
    for (const model of ['transformer', 'transformerPro']) {
      const m = make(model);
      const p = m.init(rngKey(0), { backend: 'cpu' });
      await expect(generate(m, p, [[1, 2]], { maxNewTokens: 2, kvEvict: 'acp' })).rejects.toThrow(
        new RegExp(`^generate: opts.kvEvict 'acp' needs forget gates, but model '${model}' has fgate_type 'none'`),
      );
      dispose(p);
    }
  });

  it('leaves no live tensors behind', async () => {
    const m = make('foxPro');
    const p = m.init(rngKey(5), { backend: 'cpu' });
    setGateBias(p, -4);
    const live = () => memoryStats().backends.cpu?.tensors ?? 0;
    const before = live();
    for (let i = 0; i < 2; i++) {
      const r = await generate(m, p, [promptOf(20, 1), promptOf(7, 2)], { maxNewTokens: 80, kvEvict: 'acp', seed: i });
      expect(r.stats.cache.kept).toBeLessThan(r.stats.cache.full);
      expect(live()).toBe(before);
    }
    dispose(p);
  });
});
