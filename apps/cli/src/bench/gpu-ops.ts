import {
  add,
  cast,
  initWebGPU,
  randomUniform,
  softmax,
  type Tensor,
  matmul as tmatmul,
  type WebGPUBackend,
  webgpuInstance,
} from '@foxgate/tensor';
import { type MatmulConfig, setMatmulConfig } from '@foxgate/tensor/dev';
import type { BenchRow } from './types.js';

/**
 * `foxgate bench ops`: WebGPU primitives of @foxgate/tensor, and the same work in
 * @tensorflow/tfjs-backend-webgpu on the same device instance.
 * - f32 matmul n×n·n×n (TFLOP/s = 2n³·iterations / time),
 * - elementwise add of two 2^26-element vectors (GB/s counting 3 arrays),
 * - device-to-device copy of the same 2^26 floats (GB/s counting 2 arrays; foxgate only: the
 *   copy primitive through `cast` to the same dtype), the bandwidth the others are measured
 *   against,
 * - row softmax of a [4096, 16384] matrix (GB/s counting 2 arrays; ours is the fused softmax
 *   primitive, one kernel).
 * Each case is warmed up, then timed over many iterations that are queued back to back and
 * closed by one `queue.onSubmittedWorkDone()`; the result is checked against a float64 dot
 * product at a few entries so a broken kernel cannot post a fast number.
 */
export interface GpuOpsOptions {
  sizes?: number[];
  tfjs?: boolean;
  /** Extra matmul tile configurations to time besides the automatic choice (`foxgate bench --tiles FILE`). */
  matmulConfigs?: Record<string, MatmulConfig>;
  /** Seconds of GPU time to aim for per timed case (default 0.5). */
  seconds?: number;
  /** Skip the elementwise/copy/softmax cases. */
  matmulOnly?: boolean;
}

type TfModule = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

const now = () => performance.now();

async function timeLoop(
  run: () => void,
  done: () => Promise<void>,
  seconds: number,
  costGuess: number,
): Promise<{ ms: number; iters: number }> {
  // warm-up (compiles pipelines, fills pools), then a short probe to size the timed loop
  for (let i = 0; i < 2; i++) run();
  await done();
  const t0 = now();
  const probe = Math.max(1, Math.min(20, Math.round(0.05 / costGuess)));
  for (let i = 0; i < probe; i++) run();
  await done();
  const per = (now() - t0) / 1000 / probe;
  const iters = Math.max(3, Math.min(2000, Math.round(seconds / Math.max(per, 1e-6))));
  const t1 = now();
  for (let i = 0; i < iters; i++) run();
  await done();
  return { ms: now() - t1, iters };
}

/** What the memory-bound benchmarks need from an implementation (foxgate or tfjs). */
interface MemoryBoundImpl<T extends { dispose(): void }> {
  impl: string;
  softmaxNote: string;
  maxBinding: number;
  uniform(seed: number, shape: number[], low: number, high: number): T;
  add(x: T, y: T): T;
  /** A plain copy (reads and writes each element once); rows without it skip the copy case. */
  copy?(x: T): T;
  /** The same copy as one `copyBufferToBuffer` command (the device's own copy path). */
  copyBuffer?(x: T): { dispose(): void };
  softmax(x: T): T;
  sync(): Promise<void>;
}

/** Elementwise add and copy over 2^26 floats and a row softmax over [4096, 16384], in GB/s moved. */
async function benchMemoryBound<T extends { dispose(): void }>(m: MemoryBoundImpl<T>, seconds: number, dev: string): Promise<BenchRow[]> {
  const maxElems = Math.floor(m.maxBinding / 4);
  const n = Math.min(2 ** 26, maxElems);
  const x = m.uniform(1, [n], 0, 1);
  const y = m.uniform(2, [n], 0, 1);
  const t = await timeLoop(() => m.add(x, y).dispose(), m.sync, seconds, (12 * n) / 2e12);
  const copy = m.copy;
  const tc = copy ? await timeLoop(() => copy(x).dispose(), m.sync, seconds, (8 * n) / 2e12) : null;
  const copyBuffer = m.copyBuffer;
  const tb = copyBuffer ? await timeLoop(() => copyBuffer(x).dispose(), m.sync, seconds, (8 * n) / 2e12) : null;
  x.dispose();
  y.dispose();
  const C = 16384;
  const R = Math.min(4096, Math.floor(maxElems / C));
  const s = m.uniform(3, [R, C], -5, 5);
  const ts = await timeLoop(() => m.softmax(s).dispose(), m.sync, seconds, (8 * R * C) / 5e11);
  s.dispose();
  return [
    {
      bench: 'add',
      case: `f32 n=2^${Math.log2(n).toFixed(0)}`,
      impl: m.impl,
      value: (12 * n * t.iters) / (t.ms / 1000) / 1e9,
      unit: 'GB/s',
      note: `3 arrays, ${t.iters} it; ${dev}`,
    },
    ...(tc
      ? [
          {
            bench: 'copy',
            case: `f32 n=2^${Math.log2(n).toFixed(0)}`,
            impl: m.impl,
            value: (8 * n * tc.iters) / (tc.ms / 1000) / 1e9,
            unit: 'GB/s',
            note: `2 arrays, device-to-device, ${tc.iters} it; ${dev}`,
          },
        ]
      : []),
    ...(tb
      ? [
          {
            bench: 'copy',
            case: `f32 n=2^${Math.log2(n).toFixed(0)}`,
            impl: `${m.impl} copyBufferToBuffer`,
            value: (8 * n * tb.iters) / (tb.ms / 1000) / 1e9,
            unit: 'GB/s',
            note: `2 arrays, one copy command, ${tb.iters} it; ${dev}`,
          },
        ]
      : []),
    {
      bench: 'softmax',
      case: `f32 [${R},${C}] rows`,
      impl: m.impl,
      value: (8 * R * C * ts.iters) / (ts.ms / 1000) / 1e9,
      unit: 'GB/s',
      note: `2 arrays, ${m.softmaxNote}${ts.iters} it; ${dev}`,
    },
  ];
}

/** Max relative error of a few entries of C = A·B against float64 dot products. */
async function checkMatmul(a: Float32Array, b: Float32Array, c: Float32Array, n: number): Promise<number> {
  let worst = 0;
  for (const [i, j] of [
    [0, 0],
    [n - 1, n - 1],
    [Math.floor(n / 3), Math.floor((2 * n) / 3)],
    [7 % n, Math.max(n - 2, 0)],
  ]) {
    let s = 0;
    let mag = 0;
    for (let k = 0; k < n; k++) {
      s += a[i * n + k] * b[k * n + j];
      mag += Math.abs(a[i * n + k] * b[k * n + j]);
    }
    worst = Math.max(worst, Math.abs(c[i * n + j] - s) / mag);
  }
  return worst;
}

function deviceName(gpu: WebGPUBackend): string {
  const i = gpu.info;
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' / ');
}

export async function benchGpuOps(opts: GpuOpsOptions = {}): Promise<BenchRow[]> {
  const sizes = opts.sizes ?? [1024, 2048, 4096, 8192];
  const seconds = opts.seconds ?? 0.5;
  const gpu = await initWebGPU();
  const dev = deviceName(gpu);
  const rows: BenchRow[] = [];
  const sync = () => gpu.sync();

  // ---- matmul ----------------------------------------------------------------------------
  const extra = opts.matmulConfigs ?? {};
  const variants: [string, MatmulConfig | null][] = [['auto', null], ...Object.entries(extra)];
  for (const n of sizes) {
    const a = randomUniform([1, n], [n, n], { backend: gpu, low: -1, high: 1 });
    const b = randomUniform([2, n], [n, n], { backend: gpu, low: -1, high: 1 });
    const flops = 2 * n ** 3;
    let hostA: Float32Array | null = null;
    let hostB: Float32Array | null = null;
    for (const [label, cfg] of variants) {
      setMatmulConfig(cfg);
      try {
        const c0 = tmatmul(a, b);
        hostA ??= (await a.data()) as Float32Array;
        hostB ??= (await b.data()) as Float32Array;
        const err = await checkMatmul(hostA, hostB, (await c0.data()) as Float32Array, n);
        c0.dispose();
        const { ms, iters } = await timeLoop(() => tmatmul(a, b).dispose(), sync, seconds, flops / 20e12);
        const impl = label === 'auto' ? 'foxgate-webgpu' : `foxgate-webgpu[${label}]`;
        rows.push({
          bench: 'matmul',
          case: `f32 n=${n}`,
          impl,
          value: (flops * iters) / (ms / 1000) / 1e12,
          unit: 'TFLOP/s',
          note: `${iters} it, max rel err ${err.toExponential(1)}; ${dev}`,
        });
      } catch (e) {
        rows.push({
          bench: 'matmul',
          case: `f32 n=${n}`,
          impl: `foxgate-webgpu[${label}]`,
          value: Number.NaN,
          unit: 'TFLOP/s',
          note: `failed: ${(e as Error).message.slice(0, 200)}`,
        });
      }
    }
    setMatmulConfig(null);
    a.dispose();
    b.dispose();
  }

  // ---- elementwise add and row softmax -----------------------------------------------------
  if (!opts.matmulOnly) {
    rows.push(
      ...(await benchMemoryBound<Tensor>(
        {
          impl: 'foxgate-webgpu',
          softmaxNote: 'fused, ',
          maxBinding: gpu.info.limits.maxStorageBufferBindingSize,
          uniform: (seed, shape, low, high) => randomUniform([3, seed], shape, { backend: gpu, low, high }),
          add,
          copy: (x) => cast(x, x.dtype),
          copyBuffer: (x) => {
            const bytes = x.size * 4;
            const dst = gpu.engine.alloc(bytes);
            const src = (x.storage as unknown as { buffer: Parameters<WebGPUBackend['engine']['copyBuffer']>[0] }).buffer;
            gpu.engine.copyBuffer(src, x.offset * 4, dst.buffer, 0, bytes);
            return { dispose: () => gpu.engine.free(dst) };
          },
          softmax: (x) => softmax(x, -1),
          sync,
        },
        seconds,
        dev,
      )),
    );
  }

  // ---- tfjs-backend-webgpu on the same GPU instance ---------------------------------------
  if (opts.tfjs !== false) {
    try {
      rows.push(...(await benchTfjs(sizes, seconds, !opts.matmulOnly, dev)));
    } catch (e) {
      rows.push({
        bench: 'matmul',
        case: 'tfjs',
        impl: 'tfjs-webgpu',
        value: Number.NaN,
        unit: 'TFLOP/s',
        note: `tfjs-webgpu failed: ${(e as Error).message.slice(0, 300)}`,
      });
    }
  }
  await gpu.destroy();
  return rows;
}

async function benchTfjs(sizes: number[], seconds: number, withOps: boolean, dev: string): Promise<BenchRow[]> {
  const { gpu, globals } = await webgpuInstance();
  // tfjs-backend-webgpu registers itself only when navigator.gpu exists at import time, and
  // uses the GPUBufferUsage/GPUMapMode/... globals.
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(globals)) if (!(k in g)) g[k] = v;
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  if (!nav.gpu) Object.defineProperty(globalThis, 'navigator', { value: { ...nav, gpu }, configurable: true, writable: true });
  const tf: TfModule = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") returned false');
  await tf.ready();
  const backend = tf.backend() as unknown as {
    submitQueue(): void;
    endComputePassEncoder(): void;
    commandEncoder: GPUCommandEncoder | null;
    device: GPUDevice;
  };
  const done = async () => {
    // tfjs submits every 15 dispatches; submit the rest the way its own readback does
    // (end the open compute pass, then submit), then wait for the queue
    backend.endComputePassEncoder();
    if (backend.commandEncoder) backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };
  const rows: BenchRow[] = [];
  for (const n of sizes) {
    const a = tf.randomUniform([n, n], -1, 1);
    const b = tf.randomUniform([n, n], -1, 1);
    const flops = 2 * n ** 3;
    const c0 = tf.matMul(a, b);
    const err = await checkMatmul((await a.data()) as Float32Array, (await b.data()) as Float32Array, (await c0.data()) as Float32Array, n);
    c0.dispose();
    const { ms, iters } = await timeLoop(() => tf.matMul(a, b).dispose(), done, seconds, flops / 10e12);
    rows.push({
      bench: 'matmul',
      case: `f32 n=${n}`,
      impl: 'tfjs-webgpu 4.22.0',
      value: (flops * iters) / (ms / 1000) / 1e12,
      unit: 'TFLOP/s',
      note: `${iters} it, max rel err ${err.toExponential(1)}; ${dev}`,
    });
    a.dispose();
    b.dispose();
  }
  if (withOps) {
    rows.push(
      ...(await benchMemoryBound<TfTensor>(
        {
          impl: 'tfjs-webgpu 4.22.0',
          softmaxNote: '',
          maxBinding: backend.device.limits.maxStorageBufferBindingSize,
          uniform: (_seed, shape, low, high) => tf.randomUniform(shape, low, high),
          add: (x, y) => tf.add(x, y),
          softmax: (x) => tf.softmax(x),
          sync: done,
        },
        seconds,
        dev,
      )),
    );
  }
  backend.device.destroy();
  return rows;
}
