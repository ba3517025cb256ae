// foxgate bench attention --variant sparsek: the float64 host check, the rows at a tiny size on the CPU, FAILED rows.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as attention from '@foxgate/attention';
import { softmaxAttention, sparsekAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { mul, probeWebGPU, randomNormal, sum, type Tensor, tensor } from '@foxgate/tensor';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { benchSparsek, checkLocalAttention, sparsekScores } from '../src/bench/sparsek.js';
import { runCli } from './util/cli-run.js';

// `sabotage` turns the next sparsekAttention calls into a wrong kernel ('wrong') or a crash ('throw')
const hooks = vi.hoisted(() => ({ sabotage: null as null | 'wrong' | 'throw' }));
vi.mock('@foxgate/attention', async (importOriginal) => {
  const real = await importOriginal<typeof attention>();
  return {
    ...real,
    sparsekAttention: (...a: Parameters<typeof real.sparsekAttention>) => {
      if (hooks.sabotage === 'throw') throw new Error('sparsekAttention: injected crash');
      const o = real.sparsekAttention(...a);
      return hooks.sabotage === 'wrong' ? mul(o, 1.01) : o;
    },
  };
});

afterEach(() => {
  hooks.sabotage = null;
});

const gpu = await probeWebGPU();
if (!gpu.available && process.env.FOXGATE_REQUIRE_WEBGPU === '1') throw new Error(`FOXGATE_REQUIRE_WEBGPU=1 but: ${gpu.reason}`);

const [B, T, H, D] = [2, 96, 2, 8];
const sh = [B, T, H, D];
const x = { q: randomNormal([1, 7], sh), k: randomNormal([2, 7], sh), v: randomNormal([3, 7], sh), dO: randomNormal([4, 7], sh) };
const uHost = sparsekScores(B, T, H, 3);
const u = tensor(uHost, [B, T, H]);

type P = { q: Tensor; k: Tensor; v: Tensor; u: Tensor };
function runSparsek(o: { k: number; window: number; gate?: 'kv' | 'v' | 'logit' }) {
  const { aux, grads } = valueAndGrad((p: P) => {
    const out = sparsekAttention(p.q, p.k, p.v, p.u, { ...o, gate: o.gate ?? 'kv' });
    return { loss: sum(mul(out, x.dO)), aux: out };
  })({ q: x.q, k: x.k, v: x.v, u });
  return { o: aux, dq: grads.q, dk: grads.k, dv: grads.v, du: grads.u };
}
function runWindow(window: number) {
  const { aux, grads } = valueAndGrad((p: Omit<P, 'u'>) => {
    const out = softmaxAttention(p.q, p.k, p.v, { window });
    return { loss: sum(mul(out, x.dO)), aux: out };
  })({ q: x.q, k: x.k, v: x.v });
  return { o: aux, dq: grads.q, dk: grads.k, dv: grads.v };
}
const bump = (t: Tensor, at: number, f: (v: number) => number) => {
  const d = Float32Array.from(t.dataSync());
  d[at] = f(d[at]);
  return tensor(d, [...t.shape]);
};

describe('bench attention --variant sparsek: sparsekScores', () => {
  it('distinct values at least 0.27 apart per (b, h), seeded', () => {
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const col = Array.from({ length: T }, (_, t) => uHost[(b * T + t) * H + h]).sort((a, z) => a - z);
        for (let n = 1; n < T; n++) expect(col[n] - col[n - 1]).toBeGreaterThan(0.27);
      }
    expect(sparsekScores(B, T, H, 3)).toEqual(uHost);
    expect(sparsekScores(B, T, H, 4)).not.toEqual(uHost);
  });
});

describe('bench attention --variant sparsek: checkLocalAttention', () => {
  it('passes the fused CPU SPARSEK kernel (several k and windows) and sliding-window softmax at float32 rounding', async () => {
    for (const o of [
      { k: 6, window: 8 },
      { k: 5, window: 0 },
      { k: 12.5, window: 3 },
    ]) {
      const c = await checkLocalAttention({ ...x, u: uHost }, runSparsek(o), { window: o.window, budget: o.k });
      expect(Object.keys(c.err)).toEqual(['o', 'dq', 'dk', 'dv', 'du']);
      for (const [n, e] of Object.entries(c.err)) expect(e, `${n} ${JSON.stringify(o)}`).toBeLessThan(1e-5);
      expect(c.rows).toBeGreaterThan(2 * 70);
      // the mean support is about k (plus the fractional entries beyond it)
      expect(c.selected).toBeGreaterThan(Math.min(o.k, 10));
      expect(c.selected).toBeLessThan(o.k + 4);
    }
    const w = await checkLocalAttention(x, runWindow(10), { window: 10 });
    expect(Object.keys(w.err)).toEqual(['o', 'dq', 'dk', 'dv']);
    for (const [n, e] of Object.entries(w.err)) expect(e, n).toBeLessThan(1e-5);
  });

  it('checks du where it is not zero: older keys held fractionally, and the fractional tail keys', async () => {
    const got = runSparsek({ k: 6, window: 8 });
    const c = await checkLocalAttention({ ...x, u: uHost }, got, { window: 8, budget: 6 });
    expect(c.duKeys).toBeGreaterThan(0);
    // du 5% off, or zero: caught (the tolerance is 2e-3 of the largest Σ|row term| among the checked keys)
    const off = await checkLocalAttention({ ...x, u: uHost }, { ...got, du: mul(got.du, 1.05) }, { window: 8, budget: 6 });
    expect(off.err.du).toBeGreaterThan(4e-3);
    const bad = await checkLocalAttention({ ...x, u: uHost }, { ...got, du: mul(got.du, 0) }, { window: 8, budget: 6 });
    expect(bad.err.du).toBeGreaterThan(0.1);
    expect(bad.err.o).toBeLessThan(1e-5);
  });

  it('catches a wrong output row, a wrong tail key gradient, a NaN, another gate, an off-by-one window', async () => {
    const got = runSparsek({ k: 6, window: 8 });
    const last = ((0 * T + (T - 1)) * H + 0) * D;
    const mid = ((0 * T + T / 2) * H + 0) * D + 3;
    const c = await checkLocalAttention(
      { ...x, u: uHost },
      {
        ...got,
        o: bump(got.o, last, (v) => v * 1.01 + 0.01),
        dk: bump(got.dk, last + 2, (v) => v * 1.01 + 0.01),
        dq: bump(got.dq, mid, () => Number.NaN),
      },
      { window: 8, budget: 6 },
    );
    expect(c.err.o).toBeGreaterThan(1e-3);
    expect(c.err.dk).toBeGreaterThan(1e-3);
    expect(c.err.dq).toBe(Number.POSITIVE_INFINITY);
    expect(c.err.dv).toBeLessThan(1e-5);
    const gateV = await checkLocalAttention({ ...x, u: uHost }, runSparsek({ k: 6, window: 8, gate: 'v' }), { window: 8, budget: 6 });
    expect(gateV.err.o).toBeGreaterThan(1e-2);
    const wider = await checkLocalAttention({ ...x, u: uHost }, runSparsek({ k: 6, window: 9 }), { window: 8, budget: 6 });
    expect(wider.err.o).toBeGreaterThan(1e-2);
    const moreK = await checkLocalAttention({ ...x, u: uHost }, runSparsek({ k: 7, window: 8 }), { window: 8, budget: 6 });
    expect(moreK.err.o).toBeGreaterThan(1e-2);
    const win = await checkLocalAttention(x, runWindow(9), { window: 10 });
    expect(win.err.o).toBeGreaterThan(1e-2);
  });
});

const ROWS = (t: number) =>
  ['sparsek k=4 window=4 cpu', 'fox (ACP off) cpu', 'sliding window 8 cpu'].flatMap((impl) =>
    ['fwd', 'fwd+bwd'].map((w) => `${w} B=1 T=${t} H=2 D=16 | ${impl}`),
  );

describe('bench attention --variant sparsek: rows', () => {
  it('fwd and fwd+bwd of SPARSEK, FoX and sliding window per T on the CPU, each checked, with µs per token', async () => {
    const rows = await benchSparsek({ device: 'cpu', sizes: [64, 128], B: 1, H: 2, D: 16, k: 4, window: 4, seconds: 0.01 });
    expect(rows.map((r) => `${r.case} | ${r.impl}`)).toEqual([...ROWS(64), ...ROWS(128)]);
    for (const r of rows) {
      expect(r.failed, r.note).toBeUndefined();
      expect(r.bench).toBe('attention');
      expect(r.unit).toBe('ms');
      expect(r.value).toBeGreaterThan(0);
      const us = Number(/([\d.]+) µs\/token/.exec(r.note ?? '')?.[1]);
      const T = Number(/T=(\d+)/.exec(r.case)?.[1]);
      expect(us).toBeCloseTo((1000 * r.value) / T, 1);
    }
    for (const r of rows.filter((z) => z.case.startsWith('fwd '))) expect(r.note).toMatch(/max rel err \S+ \(\w+\) against float64/);
    expect(rows[0].note).toMatch(/^[\d.]+× the speed of fox; /);
    expect(rows[0].note).toMatch(/older positions selected per query/);
  });

  it.skipIf(!gpu.available)('on WebGPU: the same rows, every one passing its check (the WGSL kernels)', async () => {
    const rows = await benchSparsek({ device: 'webgpu', sizes: [64], B: 1, H: 2, D: 16, k: 4, window: 4, seconds: 0.01 });
    expect(rows.map((r) => `${r.case} | ${r.impl}`)).toEqual(ROWS(64).map((r) => r.replace(/ cpu$/, ' webgpu')));
    for (const r of rows) expect(r.failed, r.note).toBeUndefined();
  });

  it('through the command: the table and exit 0; a wrong kernel or a crash is FAILED and exits 1', async () => {
    const argv = ['bench', 'attention', '--variant', 'sparsek', '--device', 'cpu', '--sizes', '64', '--batch', '1', '--heads', '2'];
    const tiny = [...argv, '--head-dim', '16', '--sparsek-k', '4', '--window', '4', '--seconds', '0.01'];
    const ok = await runCli(tiny);
    expect(ok.code, ok.err.join('\n')).toBe(0);
    expect(ok.out.join('\n')).toMatch(/^bench\s+case\s+impl\s+value\s+unit\s+note/);
    for (const r of ROWS(64)) {
      const [kase, impl] = r.split(' | ');
      expect(ok.out.join('\n')).toContain(`${kase}`);
      expect(ok.out.join('\n')).toContain(impl);
    }

    hooks.sabotage = 'wrong';
    const f = join(mkdtempSync(join(tmpdir(), 'fg-bench-sk-')), 'rows.json');
    const wrong = await runCli([...tiny, '--json', f]);
    expect(wrong.code).toBe(1);
    const rows = JSON.parse(readFileSync(f, 'utf8')).rows as { case: string; impl: string; note: string; failed?: boolean }[];
    const failed = rows.filter((r) => r.failed);
    expect(failed.map((r) => `${r.case} | ${r.impl}`)).toEqual(['fwd, fwd+bwd B=1 T=64 H=2 D=16 | sparsek k=4 window=4 cpu']);
    expect(failed[0].note).toMatch(/^FAILED: check failed: o rel err/);
    expect(rows.filter((r) => !r.failed)).toHaveLength(4);
    expect(wrong.err.at(-1)).toBe('bench: 1 case(s) FAILED: fwd, fwd+bwd B=1 T=64 H=2 D=16 (sparsek k=4 window=4 cpu)');

    hooks.sabotage = 'throw';
    const crash = await runCli(tiny);
    expect(crash.code).toBe(1);
    expect(crash.out.join('\n')).toMatch(/sparsek k=4 window=4 cpu\s+NaN\s+ms\s+FAILED: sparsekAttention: injected crash/);
  });

  it('flag errors name the flag and where it applies', async () => {
    for (const [argv, msg] of [
      [['bench', 'attention', '--sparsek-k', '8'], 'bench: --sparsek-k applies to attention --variant sparsek only'],
      [['bench', 'attention', '--window', '8'], 'bench: --window applies to attention --variant sparsek only'],
      [['bench', 'cpu', '--variant', 'sparsek'], "bench: --variant applies to the attention suite only, not 'cpu'"],
      [['bench', 'ops', '--heads', '4'], "bench: --heads applies to the attention suite only, not 'ops'"],
      [
        ['bench', 'attention', '--device', 'cpu'],
        "bench: --device applies to the train and generate suites and to attention --variant sparsek, not 'attention' (fox variant: WebGPU only)",
      ],
      [
        ['bench', 'attention', '--variant', 'sparse'],
        "bench: --variant must be one of fox, sparsek, got 'sparse' (did you mean 'sparsek'?)",
      ],
    ] as const) {
      const r = await runCli([...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toEqual([`foxgate: ${msg}`]);
    }
  });
});
