import { type FoxTileOverrides, forgettingAttention, setFoxTiles } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import {
  add,
  emptyCache,
  initWebGPU,
  logsigmoid,
  memoryStats,
  mul,
  randomNormal,
  randomUniform,
  sum,
  type Tensor,
  tensor,
  type WebGPUBackend,
} from '@foxgate/tensor';
import type { BenchRow } from './types.js';

/**
 * `foxgate bench attention`: forgetting attention on WebGPU, milliseconds per call.
 * B=4, H=16, D=64, T ∈ {2048, 8192, 16384} (`sizes`), forward and forward+backward (gradients of
 * Σ o·dO for q, k, v, logF through `valueAndGrad`), with and without ACP. The gates look like a
 * trained model's: half the heads have logits ~U(5,10) (long memory), half ~U(0,5), and
 * logF = logsigmoid(logits). q, k, v ~ N(0,1). The composed reference (materialising [T,T]) is
 * timed where its score tensor fits one storage binding. Each case is warmed up, then queued
 * back to back and closed by one `sync()`; the fused output is checked against a float64
 * computation at a few rows first, so a broken kernel cannot post a fast number.
 */
export interface AttentionBenchOptions {
  /** Sequence lengths (default 2048, 8192, 16384). */
  sizes?: number[];
  B?: number;
  H?: number;
  D?: number;
  /** Seconds of GPU time to aim for per timed case (default 1). */
  seconds?: number;
  /** Also time the composed reference where it fits (default true). */
  reference?: boolean;
  /**
   * Extra tile configurations of the WGSL kernels to time (tuning), by label. Default: the JSON
   * in env FOXGATE_BENCH_FOX_TILES, e.g.
   * `{"8x8":{"fwd":{"bq":64,"bk":64,"tm":8,"tn":8}},"dq8":{"dq":{"bq":32,"bk":32,"tm":8,"tn":4}}}`.
   */
  tiles?: Record<string, FoxTileOverrides>;
  /** Unused (the CLI passes it to every suite). */
  tfjs?: boolean;
}

const now = () => performance.now();

async function timeLoop(run: () => void, sync: () => Promise<void>, seconds: number): Promise<{ ms: number; iters: number }> {
  run(); // warm-up: pipelines, buffer pool
  run();
  await sync();
  const t0 = now();
  run();
  await sync();
  const per = Math.max((now() - t0) / 1000, 1e-5);
  const iters = Math.max(2, Math.min(200, Math.round(seconds / per)));
  const t1 = now();
  for (let i = 0; i < iters; i++) run();
  await sync();
  return { ms: (now() - t1) / iters, iters };
}

/** Max relative error of a few output rows against float64 forgetting attention on the host. */
async function checkRows(q: Tensor, k: Tensor, v: Tensor, logF: Tensor, o: Tensor, acp: boolean): Promise<number> {
  const [B, T, H, D] = q.shape;
  const [hq, hk, hv, hf, ho] = (await Promise.all([q, k, v, logF, o].map((t) => t.data()))) as Float32Array[];
  const scale = 1 / Math.sqrt(D);
  let worst = 0;
  for (const [b, i, h] of [
    [0, 0, 0],
    [B - 1, T - 1, H - 1],
    [0, Math.floor(T / 2), Math.floor(H / 2)],
    [B - 1, T - 3, 0],
  ]) {
    const lam = new Float64Array(T);
    let acc = 0;
    for (let t = 0; t < T; t++) lam[t] = acc += hf[(b * T + t) * H + h];
    const s = new Float64Array(i + 1);
    let m = Number.NEGATIVE_INFINITY;
    for (let j = 0; j <= i; j++) {
      let d = 0;
      for (let c = 0; c < D; c++) d += hq[((b * T + i) * H + h) * D + c] * hk[((b * T + j) * H + h) * D + c];
      s[j] = scale * d + lam[i] - lam[j];
      m = Math.max(m, s[j]);
    }
    let z = 0;
    for (let j = 0; j <= i; j++) z += Math.exp(s[j] - m);
    for (let c = 0; c < D; c++) {
      let val = 0;
      let mag = 0;
      for (let j = 0; j <= i; j++) {
        const p = Math.exp(s[j] - m) / z;
        val += p * hv[((b * T + j) * H + h) * D + c];
        mag += p * Math.abs(hv[((b * T + j) * H + h) * D + c]);
      }
      const got = ho[((b * T + i) * H + h) * D + c];
      // ACP may drop up to ε = e^-10 of the mass of a row
      const tol = acp ? 2 * Math.exp(-10) * mag : 0;
      worst = Math.max(worst, Math.max(0, Math.abs(got - val) - tol) / (mag + 1e-6));
    }
  }
  return worst;
}

function deviceName(gpu: WebGPUBackend): string {
  const i = gpu.info;
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' / ');
}

/**
 * The benchmark's problem: q, k, v, dO ~ N(0,1) `[B,T,H,D]` (seeded by T), and logF = logsigmoid of
 * logits ~U(5,10) for the first half of the heads and ~U(0,5) for the rest (as a trained model's).
 */
export function benchProblem(gpu: WebGPUBackend, B: number, T: number, H: number, D: number) {
  const shape = [B, T, H, D];
  const q = randomNormal([11, T], shape, { backend: gpu });
  const k = randomNormal([12, T], shape, { backend: gpu });
  const v = randomNormal([13, T], shape, { backend: gpu });
  const dO = randomNormal([14, T], shape, { backend: gpu });
  const u = randomUniform([15, T], [B, T, H], { backend: gpu, low: 0, high: 5 });
  const offsets = tensor(
    Float32Array.from({ length: H }, (_, h) => (h < H / 2 ? 5 : 0)),
    [H],
    { backend: gpu },
  );
  const logits = add(u, offsets);
  const logF = logsigmoid(logits);
  for (const t of [u, offsets, logits]) t.dispose();
  return { q, k, v, dO, logF };
}

export async function benchAttention(opts: AttentionBenchOptions = {}): Promise<BenchRow[]> {
  const sizes = opts.sizes ?? [2048, 8192, 16384];
  const B = opts.B ?? 4;
  const H = opts.H ?? 16;
  const D = opts.D ?? 64;
  const seconds = opts.seconds ?? 1;
  const gpu = await initWebGPU();
  const dev = deviceName(gpu);
  const sync = () => gpu.sync();
  const rows: BenchRow[] = [];
  // progress on stderr as each case finishes (the table comes at the end)
  const push = (r: BenchRow) => {
    rows.push(r);
    console.error(`attention: ${r.case} | ${r.impl} | ${r.value.toFixed(2)} ${r.unit}`);
  };
  const maxBinding = Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize);
  const extra =
    opts.tiles ??
    (process.env.FOXGATE_BENCH_FOX_TILES ? (JSON.parse(process.env.FOXGATE_BENCH_FOX_TILES) as Record<string, FoxTileOverrides>) : {});
  const variants: [string, FoxTileOverrides][] = [['auto', {}], ...Object.entries(extra)];

  for (const T of sizes) {
    const { q, k, v, dO, logF } = benchProblem(gpu, B, T, H, D);
    const params = { q, k, v, logF };
    // forward flops of causal attention (QKᵀ and PV on the causal half of the square)
    const fwdFlops = 2 * 2 * B * H * D * ((T * (T + 1)) / 2);
    const reference = opts.reference !== false && B * H * T * T * 4 <= maxBinding;
    const impls: [string, 'fused' | 'reference', FoxTileOverrides | null][] = [
      ...variants.map(([label, t]): [string, 'fused', FoxTileOverrides] => [
        label === 'auto' ? 'foxgate-webgpu fused' : `foxgate-webgpu fused[${label}]`,
        'fused',
        t,
      ]),
      ...(reference ? [['foxgate-webgpu reference', 'reference', null] as [string, 'reference', null]] : []),
    ];
    for (const [implName, impl, tiles] of impls) {
      if (tiles) setFoxTiles(tiles);
      for (const acp of [false, true]) {
        const caseName = (what: string) => `${what} B=${B} T=${T} H=${H} D=${D}${acp ? ' ACP' : ''}`;
        try {
          // correctness first (fused only: the reference is the oracle of the tests)
          let note = '';
          if (impl === 'fused') {
            const r = forgettingAttention(q, k, v, logF, { acp, stats: true });
            const frac = (await r.stats.fraction.data())[0];
            const err = T <= 4096 ? await checkRows(q, k, v, logF, r.out, acp) : Number.NaN;
            for (const t of [r.out, r.stats.fraction, r.stats.computedBlocks]) t.dispose();
            note = `tiles computed ${(100 * frac).toFixed(1)}%${Number.isNaN(err) ? '' : `, max rel err ${err.toExponential(1)}`}`;
          }
          const fwd = await timeLoop(() => forgettingAttention(q, k, v, logF, { acp, impl }).dispose(), sync, seconds);
          push({
            bench: 'attention',
            case: caseName('fwd'),
            impl: implName,
            value: fwd.ms,
            unit: 'ms',
            note: [`${(fwdFlops / (fwd.ms / 1000) / 1e12).toFixed(1)} TFLOP/s causal-equiv`, note, `${fwd.iters} it`, dev]
              .filter(Boolean)
              .join('; '),
          });
          const step = () => {
            const { value, grads } = valueAndGrad((p: typeof params) =>
              sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF, { acp, impl }), dO)),
            )(params);
            for (const t of [value, grads.q, grads.k, grads.v, grads.logF]) t.dispose();
          };
          const both = await timeLoop(step, sync, seconds);
          push({
            bench: 'attention',
            case: caseName('fwd+bwd'),
            impl: implName,
            value: both.ms,
            unit: 'ms',
            note: `${((3.5 * fwdFlops) / (both.ms / 1000) / 1e12).toFixed(1)} TFLOP/s counted as FlashAttention does (3.5× fwd; these kernels execute 4.5×: bwd recomputes S and dP for dQ); ${both.iters} it; ${dev}`,
          });
        } catch (e) {
          push({
            bench: 'attention',
            case: caseName('fwd'),
            impl: implName,
            value: Number.NaN,
            unit: 'ms',
            note: `failed: ${(e as Error).message.slice(0, 200)}`,
          });
        }
      }
      if (tiles) setFoxTiles({});
      // release what this implementation left in the buffer pool (the reference's [T,T]
      // buffers): kept cached, they slowed the fused kernels of the later sizes by 8–30% on an H200
      emptyCache();
    }
    for (const t of [q, k, v, dO, logF]) t.dispose();
  }
  const live = memoryStats().backends.webgpu?.tensors ?? 0;
  if (live > 0)
    push({
      bench: 'attention',
      case: 'leak check',
      impl: 'foxgate-webgpu',
      value: live,
      unit: 'tensors',
      note: 'live tensors after the suite (expected 0)',
    });
  await gpu.destroy();
  return rows;
}
