import { dispose, type Tensor, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { adamw, constantLr, type WarmupCosineOptions, warmupCosine } from '../src/index.js';
import { throwsNaming } from './util/optim.js';

describe('warmupCosine', () => {
  // peak 1e-3, 1000 warmup tokens, cosine over the next 10 000 tokens down to 1e-4
  const sched = warmupCosine({ peak: 1e-3, warmupTokens: 1000, totalTokens: 11_000, minRatio: 0.1 });

  it('hand-computed values: linear warmup from 0, then cosine down to minRatio·peak', () => {
    const cases: [number, number][] = [
      [0, 0],
      [1, 1e-6],
      [250, 2.5e-4],
      [500, 5e-4],
      [999, 9.99e-4],
      [1000, 1e-3], // the peak
      [3500, 1e-4 + 9e-4 * 0.5 * (1 + Math.SQRT1_2)], // a quarter of the decay: cos(π/4)
      [6000, 5.5e-4], // half-way: the mean of peak and floor
      [8500, 1e-4 + 9e-4 * 0.5 * (1 - Math.SQRT1_2)], // three quarters: cos(3π/4)
      [11_000, 1e-4], // the end
      [50_000, 1e-4], // and after it
    ];
    for (const [tokens, lr] of cases) expect(sched(tokens), `tokens ${tokens}`).toBeCloseTo(lr, 15);
    expect(sched(3500)).toBeCloseTo(8.681980515339464e-4, 15);
  });

  it('rises during the warmup and falls after it', () => {
    let prev = -1;
    for (let n = 0; n <= 1000; n += 50) {
      expect(sched(n)).toBeGreaterThan(prev);
      prev = sched(n);
    }
    for (let n = 1100; n <= 11_000; n += 100) {
      expect(sched(n)).toBeLessThan(prev);
      prev = sched(n);
    }
  });

  it('defaults to minRatio 0.1; minRatio 0 decays to 0; no warmup starts at the peak', () => {
    expect(warmupCosine({ peak: 2, warmupTokens: 10, totalTokens: 20 })(20)).toBeCloseTo(0.2, 15);
    const toZero = warmupCosine({ peak: 2, warmupTokens: 10, totalTokens: 20, minRatio: 0 });
    expect(toZero(15)).toBeCloseTo(1, 15);
    expect(toZero(20)).toBe(0);
    const noWarmup = warmupCosine({ peak: 2, warmupTokens: 0, totalTokens: 100, minRatio: 0.5 });
    expect(noWarmup(0)).toBe(2);
    expect(noWarmup(50)).toBeCloseTo(1.5, 15);
  });

  it('drives adamw by tokens: lr(step) = schedule(step · tokens per step)', () => {
    const seen: number[] = [];
    const tokensPerStep = 500;
    const opt = adamw<{ w: Tensor }>({
      lr: (step) => {
        const lr = sched(step * tokensPerStep);
        seen.push(lr);
        return lr;
      },
      weightDecay: 0,
    });
    let params = { w: tensor([1], [1], { dtype: 'float64' }) };
    let state = opt.init(params);
    const grads = { w: tensor([1], [1], { dtype: 'float64' }) };
    for (let i = 0; i < 3; i++) ({ params, state } = opt.updateAndDispose(params, grads, state));
    expect(seen).toEqual([5e-4, 1e-3, sched(1500)]);
    // constant positive gradient: Adam moves by lr per step (m̂/√v̂ = 1, up to eps)
    expect(params.w.itemSync()).toBeCloseTo(1 - 5e-4 - 1e-3 - sched(1500), 7);
    dispose([params, state, grads]);
  });

  it('names a bad option or token count', () => {
    const bad: [WarmupCosineOptions, string][] = [
      [{ peak: 0, warmupTokens: 0, totalTokens: 1 }, 'warmupCosine: peak must be a finite number > 0, got 0'],
      [{ peak: Number.NaN, warmupTokens: 0, totalTokens: 1 }, 'warmupCosine: peak must be a finite number > 0, got NaN'],
      [{ peak: 1, warmupTokens: -1, totalTokens: 1 }, 'warmupCosine: warmupTokens must be a finite number ≥ 0, got -1'],
      [{ peak: 1, warmupTokens: 10, totalTokens: 10 }, 'warmupCosine: totalTokens must be a finite number > warmupTokens (10), got 10'],
      [
        { peak: 1, warmupTokens: 0, totalTokens: Number.POSITIVE_INFINITY },
        'warmupCosine: totalTokens must be a finite number > warmupTokens (0), got Infinity',
      ],
      [{ peak: 1, warmupTokens: 0, totalTokens: 5, minRatio: 1.5 }, 'warmupCosine: minRatio must be in [0, 1], got 1.5'],
      [
        { peak: 1, warmupTokens: 0, totalTokens: 5, warmup: 3 } as WarmupCosineOptions,
        'warmupCosine: unknown option "warmup" (the options are peak, warmupTokens, totalTokens, minRatio)',
      ],
    ];
    for (const [opts, msg] of bad) expect(throwsNaming(() => warmupCosine(opts))).toBe(msg);
    expect(throwsNaming(() => sched(-1))).toBe('warmupCosine: tokens must be a finite number ≥ 0, got -1');
    expect(throwsNaming(() => sched(Number.NaN))).toBe('warmupCosine: tokens must be a finite number ≥ 0, got NaN');
  });
});

describe('constantLr', () => {
  it('is constant, after an optional linear warmup', () => {
    const c = constantLr(3e-4);
    expect([0, 1, 1e9].map(c)).toEqual([3e-4, 3e-4, 3e-4]);
    const w = constantLr(3e-4, { warmupTokens: 100 });
    expect(w(0)).toBe(0);
    expect(w(50)).toBeCloseTo(1.5e-4, 15);
    expect(w(100)).toBe(3e-4);
    expect(w(1000)).toBe(3e-4);
  });

  it('names a bad value', () => {
    expect(throwsNaming(() => constantLr(0))).toBe('constantLr: lr must be a finite number > 0, got 0');
    expect(throwsNaming(() => constantLr(1, { warmupTokens: -5 }))).toBe('constantLr: warmupTokens must be a finite number ≥ 0, got -5');
    expect(throwsNaming(() => constantLr(1)(-1))).toBe('constantLr: tokens must be a finite number ≥ 0, got -1');
  });
});
