import { type SparsekGate, sparsek, sparsekAttention } from '@foxgate/attention';
import { type Backend, dispose, getBackend, memoryStats, rngKey, type Tensor, tensor } from '@foxgate/tensor';
import { destroyTestWebGPU, testWebGPU } from '@foxgate/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { SparsekLayerCache } from '../src/generate/sparsek-cache.js';
import { argmaxOf, type ConfigInput, createDecoder, createModel, generate, type Model, type ModelParams } from '../src/index.js';
import { lcg, rejectsNaming, relMaxError } from './util.js';

const gpu = (await testWebGPU()) as unknown as Backend | null;
afterAll(destroyTestWebGPU);

const GATES: readonly SparsekGate[] = ['kv', 'v', 'logit'];

// ---- the cache alone, on synthetic q, k, v, u ---------------------------------------------------

type ScoreKind = 'spread' | 'hard' | 'flat';

/** Scores `[B,T,H]`: spread ≈ 2 (fractional selections), hard (distinct levels 1.5 apart: hard top-k), flat (within 0.01). */
function scoresOf(kind: ScoreKind, B: number, T: number, H: number, seed: number): Float64Array {
  const r = lcg(seed);
  const u = new Float64Array(B * T * H);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      // hard: a random permutation of the levels 0, 1.5, 3, … over the positions
      const perm = Array.from({ length: T }, (_, i) => i);
      for (let i = T - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      for (let t = 0; t < T; t++) {
        const x = kind === 'spread' ? 2 * (r() - 0.5) : kind === 'hard' ? 1.5 * perm[t] : 0.01 * r();
        u[(b * T + t) * H + h] = x;
      }
    }
  return u;
}

const f64 = (x: ArrayLike<number>, shape: number[]) => tensor(Float64Array.from(x), shape, { dtype: 'float64', backend: 'cpu' });

/** Rows `[from, from + n)` of sequence b of a `[B,T,…]` array with `row` elements per position. */
function rows(x: Float64Array, b: number, T: number, row: number, from: number, n: number): Float64Array {
  return x.slice((b * T + from) * row, (b * T + from + n) * row);
}

/** The support size of sparsek(u_{0..e}, k) computed on its own (the projection op). */
function supportOf(u: Float64Array, b: number, T: number, H: number, h: number, e: number, k: number): number {
  const z = f64(
    Array.from({ length: e + 1 }, (_, j) => u[(b * T + j) * H + h]),
    [e + 1],
  );
  const p = sparsek(z, k);
  const n = Array.from(p.dataSync()).filter((x) => x > 0).length;
  dispose([z, p]);
  return n;
}

/**
 * Prefills B prompts of the given lengths into a cache, decodes up to T positions, and compares every
 * step's output with the full `sparsekAttention` over each sequence's prefix; returns the worst
 * relative error and checks the cache's size against the independently computed support.
 */
async function cacheAgainstFull(o: { gate: SparsekGate; window: number; k: number; kind: ScoreKind; lens: number[]; T: number }) {
  const [H, D] = [2, 4];
  const B = o.lens.length;
  const T = o.T;
  const r = lcg(7);
  const q = Float64Array.from({ length: B * T * H * D }, () => 2 * (r() - 0.5));
  const k = Float64Array.from({ length: B * T * H * D }, () => 2 * (r() - 0.5));
  const v = Float64Array.from({ length: B * T * H * D }, () => 2 * (r() - 0.5));
  const u = scoresOf(o.kind, B, T, H, 11);
  const opts = { k: o.k, window: o.window, gate: o.gate };
  const cache = new SparsekLayerCache({ B, H, D, dtype: 'float64', backend: getBackend('cpu'), ...opts });
  const row = H * D;
  let worst = 0;
  let maxKept = 0;
  try {
    // prefill: each prompt alone through the full kernel
    for (let b = 0; b < B; b++) {
      const n = o.lens[b];
      cache.beginPrefill(b);
      const t = [q, k, v].map((x) => f64(rows(x, b, T, row, 0, n), [1, n, H, D]));
      const tu = f64(rows(u, b, T, H, 0, n), [1, n, H]);
      cache.attendSparsek(t[0], t[1], t[2], tu, opts).dispose();
      dispose([...t, tu]);
    }
    await cache.finishPrefill();
    const steps = T - Math.max(...o.lens);
    for (let s = 0; s < steps; s++) {
      const pos = o.lens.map((n) => n + s);
      const pick = (x: Float64Array, w: number) => {
        const out = new Float64Array(B * w);
        for (let b = 0; b < B; b++) out.set(rows(x, b, T, w, pos[b], 1), b * w);
        return out;
      };
      const ub = pick(u, H);
      if (o.window === 0) cache.pushScores(ub);
      const [tq, tk, tv] = [q, k, v].map((x) => f64(pick(x, row), [B, 1, H, D]));
      const tu = f64(ub, [B, 1, H]);
      const got = cache.attendSparsek(tq, tk, tv, tu, opts).dataSync();
      await cache.commit();
      for (let b = 0; b < B; b++) {
        const n = pos[b] + 1;
        const full = [q, k, v].map((x) => f64(rows(x, b, T, row, 0, n), [1, n, H, D]));
        const fu = f64(rows(u, b, T, H, 0, n), [1, n, H]);
        const want = sparsekAttention(full[0], full[1], full[2], fu, opts);
        const w = want.dataSync().slice((n - 1) * row);
        worst = Math.max(worst, relMaxError(got.slice(b * row, (b + 1) * row), w));
        dispose([...full, fu, want]);
        for (let h = 0; h < H; h++) {
          const c = cache.headCounts(b, h);
          const e = pos[b] - o.window;
          const support = e >= 0 ? supportOf(u, b, T, H, h, e, o.k) : 0;
          // the window (what exists of it) plus the support of the newest query, nothing else
          expect(c.selected, `b ${b} h ${h} step ${s}`).toBe(support);
          expect(c.kept).toBe(Math.min(o.window, n) + support);
          maxKept = Math.max(maxKept, c.kept);
        }
      }
      dispose([tq, tk, tv, tu]);
    }
    return { worst, maxKept, cap: cache.cap };
  } finally {
    cache.dispose();
  }
}

describe('SparsekLayerCache: decoding equals the full SPARSEK attention (CPU, float64)', () => {
  for (const gate of GATES)
    for (const window of [0, 3]) {
      it(`gate ${gate}, window ${window}: ragged prompts, fractional selections`, async () => {
        const r = await cacheAgainstFull({ gate, window, k: 2.5, kind: 'spread', lens: [9, 1, 4], T: 40 });
        expect(r.worst).toBeLessThan(1e-12);
      });
    }

  it('hard top-k (score levels 1.5 apart): each head holds at most k + window entries', async () => {
    for (const window of [0, 4]) {
      const r = await cacheAgainstFull({ gate: 'kv', window, k: 3, kind: 'hard', lens: [6, 2], T: 70 });
      expect(r.worst).toBeLessThan(1e-12);
      expect(r.maxKept).toBeLessThanOrEqual(3 + window);
      expect(r.cap).toBeLessThanOrEqual(3 + window);
    }
  });

  it('flat scores (all within 1 of τ): the support, and so the cache, grows with the prefix', async () => {
    // the honest limit of the bound: window + |support|, and every entry within 1 of τ is in the support
    const r = await cacheAgainstFull({ gate: 'v', window: 2, k: 2, kind: 'flat', lens: [3], T: 30 });
    expect(r.worst).toBeLessThan(1e-12);
    expect(r.maxKept).toBe(30);
  });
});

// ---- the model ----------------------------------------------------------------------------------

const V = 40;
const promptOf = (n: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
};

/** Small k and window (so prompts of 20 reach past window + k), hidden 32, 2 layers, 2 heads. */
const cfg = (o: Partial<ConfigInput> = {}): ConfigInput => ({
  model: 'sparsek',
  vocab_size: V,
  hidden_size: 32,
  num_heads: 2,
  num_hidden_layers: 2,
  intermediate_size: 64,
  sparsek_k: 3,
  sparsek_window: 4,
  ...o,
});

/** The scoring networks with weights of std `std` (the init's 0.02 puts every score within 1 of τ). */
function spreadScores(p: ModelParams, std: number, seed: number): void {
  for (const l of p.model.layers) {
    const w = l.attn.score_proj?.weight as Tensor;
    const r = lcg(seed++);
    const data = Float32Array.from({ length: w.size }, () => std * 2 * Math.sqrt(3) * (r() - 0.5));
    l.attn.score_proj = { weight: tensor(data, [...w.shape], { backend: w.backend }), bias: l.attn.score_proj?.bias };
    w.dispose();
  }
}

async function fullLast(m: Model, p: ModelParams, seq: number[]): Promise<Float32Array> {
  const ids = tensor(Int32Array.from(seq), [1, seq.length], { dtype: 'int32', backend: p.model.embeddings.weight.backend });
  const logits = m.forward(p, ids);
  const all = (await logits.data()) as Float32Array;
  dispose([ids, logits]);
  return all.slice((seq.length - 1) * V);
}

/** Greedy decoding through the cache vs the full forward (`ref`: its model and params, possibly on another backend). */
async function decodeMatchesFull(
  m: Model,
  p: ModelParams,
  prompts: number[][],
  steps: number,
  ref: { m: Model; p: ModelParams } = { m, p },
  check: (s: number) => boolean = () => true,
) {
  const dec = await createDecoder(m, p);
  const seqs = prompts.map((x) => [...x]);
  let worst = 0;
  const kept: number[] = [];
  try {
    let logits = await dec.prefill(prompts);
    for (let s = 0; s <= steps; s++) {
      if (check(s))
        for (let b = 0; b < prompts.length; b++)
          worst = Math.max(worst, relMaxError(logits.subarray(b * V, (b + 1) * V), await fullLast(ref.m, ref.p, seqs[b])));
      if (s === steps) break;
      const next = seqs.map((_, b) => argmaxOf(logits.subarray(b * V, (b + 1) * V)));
      for (let b = 0; b < next.length; b++) seqs[b].push(next[b]);
      logits = await dec.step(next);
      kept.push(dec.cacheStats().kept);
    }
    return { worst, stats: dec.cacheStats(), kept };
  } finally {
    dec.dispose();
  }
}

describe('sparsek decoding equals the full forward at every step (CPU, float32)', () => {
  for (const gate of GATES) {
    it(`gate ${gate}: a ragged batch (prompts 20, 9, 1 > window + k), 24 greedy tokens`, async () => {
      const m = createModel(cfg({ sparsek_gate: gate }));
      const p = m.init(rngKey(1), { backend: 'cpu' });
      spreadScores(p, 1, 3);
      const r = await decodeMatchesFull(m, p, [promptOf(20, 1), promptOf(9, 2), promptOf(1, 3)], 24);
      expect(r.worst).toBeLessThan(1e-5);
      dispose(p);
    });
  }

  it('window 0 (the new entry joins the candidates at once) and a token-shift + QK-norm block', async () => {
    const m = createModel(cfg({ sparsek_window: 0, use_k_shift: true, use_v_shift: true, qk_norm: true }));
    const p = m.init(rngKey(2), { backend: 'cpu' });
    spreadScores(p, 1, 5);
    const r = await decodeMatchesFull(m, p, [promptOf(12, 4), promptOf(5, 5)], 16);
    expect(r.worst).toBeLessThan(1e-5);
    dispose(p);
  });

  it('300 decoded tokens: the cache stays bounded (window + support per head), logits still equal the full forward', async () => {
    const m = createModel(cfg({ sparsek_k: 4, sparsek_window: 8 }));
    const p = m.init(rngKey(3), { backend: 'cpu' });
    spreadScores(p, 4, 7); // scores spread far beyond 1: few entries within 1 of τ
    const steps = 300;
    const r = await decodeMatchesFull(m, p, [promptOf(30, 6)], steps, { m, p }, (s) => s % 50 === 0 || s === steps);
    expect(r.worst).toBeLessThan(1e-5);
    const st = r.stats;
    const H = 2;
    expect(st.full).toBe(2 * H * (30 + steps));
    for (const l of st.perLayer) {
      for (let h = 0; h < H; h++) {
        // held = the window + the support of the newest query; the support is k plus the few fractional extras
        expect(l.kept[h]).toBe(8 + (l.selected?.[h] ?? Number.NaN));
        expect(l.selected?.[h]).toBeGreaterThanOrEqual(4);
        expect(l.selected?.[h]).toBeLessThanOrEqual(12);
      }
    }
    // the held count over the whole run: never above 2 layers × 2 heads × (8 + 12), far below 4 × 330
    expect(Math.max(...r.kept)).toBeLessThanOrEqual(2 * H * 20);
    console.log(
      `sparsek 300 tokens: kept ${st.kept} of ${st.full} entries (max over the run ${Math.max(...r.kept)}), ${st.bytes} bytes; selected per layer/head ${JSON.stringify(st.perLayer.map((l) => l.selected))}`,
    );
    dispose(p);
  }, 300_000);
});

describe('sparsek generate', () => {
  it('greedy generate equals token-by-token argmax of the full forward; stats count the bounded cache', async () => {
    const m = createModel(cfg());
    const p = m.init(rngKey(4), { backend: 'cpu' });
    spreadScores(p, 1, 9);
    const prompts = [promptOf(15, 8), promptOf(6, 9)];
    const res = await generate(m, p, prompts, { maxNewTokens: 10, temperature: 0 });
    for (let b = 0; b < prompts.length; b++) {
      const seq = [...prompts[b]];
      for (const t of res.tokens[b]) {
        expect(t).toBe(argmaxOf(await fullLast(m, p, seq)));
        seq.push(t);
      }
    }
    expect(res.stats.cache.full).toBe(2 * 2 * (15 + 6 + 2 * 9));
    expect(res.stats.cache.kept).toBeLessThan(res.stats.cache.full);
    expect(res.stats.cache.bytes).toBeGreaterThan(0);
    await rejectsNaming(
      generate(m, p, prompts, { maxNewTokens: 2, kvEvict: 'acp' }),
      'generate',
      /kvEvict "acp" is not for model 'sparsek'/,
    );
    dispose(p);
  });

  it('live tensors stay flat over repeated generate calls (window ≥ 1 and window 0)', async () => {
    for (const w of [4, 0]) {
      const m = createModel(cfg({ sparsek_window: w, use_k_shift: true }));
      const p = m.init(rngKey(5), { backend: 'cpu' });
      const live = () => memoryStats().backends.cpu?.tensors ?? 0;
      await generate(m, p, [promptOf(9, 1), promptOf(3, 2)], { maxNewTokens: 3, temperature: 0 });
      const before = live();
      for (let i = 0; i < 2; i++) {
        await generate(m, p, [promptOf(9, 1), promptOf(3, 2)], { maxNewTokens: 20, temperature: 0.8, seed: i });
        expect(live()).toBe(before);
      }
      dispose(p);
    }
  });
});

describe.skipIf(!gpu)('sparsek decoding on WebGPU', () => {
  it('WebGPU decode (ragged batch) equals the CPU full forward', async () => {
    for (const gate of GATES) {
      const m = createModel(cfg({ sparsek_gate: gate }));
      const pc = m.init(rngKey(6), { backend: 'cpu' });
      const pg = m.init(rngKey(6), { backend: gpu as Backend });
      // scores spread by about 1 (fractional selections): where a gap ≥ 1 makes the selection a hard
      // top-k, the float32 reference that the WebGPU prefill still runs may put an entry at the edge
      // of the support that the CPU kernel leaves out, and the 'kv'/'v' gates see that
      spreadScores(pc, 0.2, 11);
      spreadScores(pg, 0.2, 11);
      const r = await decodeMatchesFull(m, pg, [promptOf(14, 7), promptOf(5, 8)], 10, { m, p: pc });
      expect(r.worst, `gate ${gate}`).toBeLessThan(1e-5);
      expect(r.stats.kept).toBeLessThan(r.stats.full); // the selection evicted entries
      dispose([pc, pg]);
    }
  }, 300_000);
});
