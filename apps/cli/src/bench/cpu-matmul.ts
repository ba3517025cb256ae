import { CpuBackend, contiguousStrides, type View } from '@foxgate/tensor';
import type { BenchRow } from './types.js';

/**
 * float32 matmul throughput on the CPU, single thread: foxgate's CpuBackend (WebAssembly SIMD
 * micro-kernel, and its plain-JS fallback for n ≤ 1024) against @tensorflow/tfjs-backend-cpu
 * (a devDependency: skipped when not installed or when `tfjs: false`). GFLOP/s = 2n³ / median
 * time over `repeats` runs after two warm-up runs.
 */
export async function benchCpuMatmul(opts: { sizes?: number[]; repeats?: number; tfjs?: boolean } = {}): Promise<BenchRow[]> {
  const sizes = opts.sizes ?? [512];
  const repeats = Math.max(1, opts.repeats ?? 5);
  const rows: BenchRow[] = [];
  const tf = opts.tfjs === false ? null : await loadTfjs();
  for (const n of sizes) {
    const a = randomMatrix(n, 1);
    const b = randomMatrix(n, 2);
    const flops = 2 * n ** 3;
    const kase = `f32 ${n}x${n}x${n}`;
    const row = (impl: string, ms: number[], note = ''): BenchRow => {
      const med = median(ms);
      const best = Math.min(...ms);
      return {
        bench: 'cpu-matmul',
        case: kase,
        impl,
        value: flops / med / 1e6,
        unit: 'GFLOP/s',
        note: `median ${med.toFixed(1)} ms of ${ms.length}, best ${(flops / best / 1e6).toFixed(2)} GFLOP/s${note}`,
      };
    };
    for (const simd of n <= 1024 ? [true, false] : [true]) {
      const cpu = new CpuBackend({ simd });
      const va = upload(cpu, a, n);
      const vb = upload(cpu, b, n);
      const ms = time(repeats, () => cpu.free(cpu.matmul(va, vb)));
      rows.push(row(`foxgate cpu (${cpu.matmulKernel})`, ms));
      cpu.free(va.storage);
      cpu.free(vb.storage);
    }
    if (tf) {
      const ta = tf.tensor2d(a, [n, n]);
      const tb = tf.tensor2d(b, [n, n]);
      const ms = time(repeats, () => {
        const c = tf.matMul(ta, tb);
        c.dataSync();
        c.dispose();
      });
      rows.push(row('tfjs-backend-cpu 4.22.0', ms));
      ta.dispose();
      tb.dispose();
    }
  }
  return rows;
}

type Tfjs = typeof import('@tensorflow/tfjs-core');

async function loadTfjs(): Promise<Tfjs | null> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    await tf.ready();
    return tf;
  } catch {
    console.warn('cpu-matmul: @tensorflow/tfjs-core / tfjs-backend-cpu not installed; skipping the tfjs rows');
    return null;
  }
}

function upload(cpu: CpuBackend, data: Float32Array, n: number): View {
  return { storage: cpu.upload(data, 'float32'), dtype: 'float32', shape: [n, n], strides: contiguousStrides([n, n]), offset: 0 };
}

/** Deterministic values in [-1, 1). */
function randomMatrix(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * n);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Milliseconds of `repeats` calls of `fn` after two warm-up calls. */
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
