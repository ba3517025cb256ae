import { forgettingAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { logsigmoid, mul, randomNormal, randomUniform, sum, type Tensor } from '@foxgate/tensor';
import type { BenchRow } from './types.js';

/**
 * Forgetting attention on the CPU backend, float32, B=8 T=128 H=4 D=32 (a small model's
 * training batch): the fused CPU kernel against the composed reference, forward and forward +
 * backward (`valueAndGrad` of Σ o·dO for q, k, v, logF), median wall time of `repeats` runs after
 * two warm-up runs. The fused kernel is meant never to be slower than the composed reference.
 */
export function benchCpuAttention(opts: { repeats?: number } = {}): BenchRow[] {
  const [B, T, H, D] = [8, 128, 4, 32];
  const repeats = Math.max(1, opts.repeats ?? 7);
  const shape = [B, T, H, D];
  const q = randomNormal([21, 1], shape);
  const k = randomNormal([22, 1], shape);
  const v = randomNormal([23, 1], shape);
  const dO = randomNormal([24, 1], shape);
  const logits = randomUniform([25, 1], [B, T, H], { low: 0, high: 5 });
  const logF = logsigmoid(logits);
  const params = { q, k, v, logF };
  const rows: BenchRow[] = [];
  const kase = (what: string) => `${what} f32 B=${B} T=${T} H=${H} D=${D}`;
  for (const impl of ['fused', 'reference'] as const) {
    const fwd = time(repeats, () => forgettingAttention(q, k, v, logF, { impl }).dispose());
    const both = time(repeats, () => {
      const { value, grads } = valueAndGrad((p: typeof params) => sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF, { impl }), dO)))(
        params,
      );
      for (const t of [value, grads.q, grads.k, grads.v, grads.logF] as Tensor[]) t.dispose();
    });
    for (const [what, ms] of [
      ['fwd', fwd],
      ['fwd+bwd', both],
    ] as const) {
      rows.push({
        bench: 'cpu-attention',
        case: kase(what),
        impl: `foxgate cpu ${impl}`,
        value: median(ms),
        unit: 'ms',
        note: `median of ${ms.length}, best ${Math.min(...ms).toFixed(1)} ms`,
      });
    }
  }
  for (const t of [q, k, v, dO, logits, logF]) t.dispose();
  return rows;
}

function time(repeats: number, fn: () => void): number[] {
  fn();
  fn();
  const ms: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
