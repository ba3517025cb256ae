import { forgettingAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { logsigmoid, mul, randomNormal, randomUniform, sum, type Tensor } from '@foxgate/tensor';
import type { BenchRow } from './types.js';

/**
 * Forgetting attention on the CPU backend, float32, B=8 T=128 H=4 D=32 (a small model's
 * training batch): the fused CPU kernel against the composed reference, forward and forward +
 * backward (`valueAndGrad` of Σ o·dO for q, k, v, logF), median wall time of `repeats` interleaved
 * runs after two warm-up runs (and the process CPU time, steadier on a shared machine). The fused
 * kernel is meant never to be slower than the composed reference.
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
  const impls = ['fused', 'reference'] as const;
  const cases = impls.flatMap((impl) => [
    { impl, what: 'fwd', run: () => forgettingAttention(q, k, v, logF, { impl }).dispose() },
    {
      impl,
      what: 'fwd+bwd',
      run: () => {
        const { value, grads } = valueAndGrad((p: typeof params) => sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF, { impl }), dO)))(
          params,
        );
        for (const t of [value, grads.q, grads.k, grads.v, grads.logF] as Tensor[]) t.dispose();
      },
    },
  ]);
  // interleaved (one run of each case per round) so that a change in machine load hits all alike
  const wall = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  for (const c of cases) {
    c.run();
    c.run();
  }
  for (let r = 0; r < repeats; r++)
    cases.forEach((c, n) => {
      const t0 = performance.now();
      const u0 = process.cpuUsage();
      c.run();
      const u = process.cpuUsage(u0);
      wall[n].push(performance.now() - t0);
      cpu[n].push((u.user + u.system) / 1000);
    });
  cases.forEach((c, n) => {
    rows.push({
      bench: 'cpu-attention',
      case: kase(c.what),
      impl: `foxgate cpu ${c.impl}`,
      value: median(wall[n]),
      unit: 'ms',
      note: `median of ${repeats} interleaved runs, best ${Math.min(...wall[n]).toFixed(1)} ms; process CPU time median ${median(cpu[n]).toFixed(1)} ms`,
    });
  });
  for (const t of [q, k, v, dO, logits, logF]) t.dispose();
  return rows;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
