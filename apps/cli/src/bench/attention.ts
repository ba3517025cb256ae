import { forgettingAttention } from '@foxgate/attention';
import { type FoxTileOverrides, setFoxTiles } from '@foxgate/attention/dev';
import { valueAndGrad } from '@foxgate/autograd';
import {
  add,
  type Backend,
  emptyCache,
  initWebGPU,
  logsigmoid,
  memoryStats,
  mul,
  randomNormal,
  randomUniform,
  slice,
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
 * back to back and closed by one `sync()`. Before timing, every fused case is checked against
 * float64 on the host at every size (`checkCase`: output rows, and the four gradients on sampled
 * rows); a failed check or an exception makes the row FAILED (value NaN, `failed: true`), and
 * `foxgate bench` then exits non-zero.
 */

/** A kernel variant to time: WGSL configuration overrides, and optionally the deterministic backward. */
export type AttentionVariant = FoxTileOverrides & { deterministic?: boolean };

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
  /** Extra variants to time besides the defaults, by label (`foxgate bench --tiles FILE`). */
  tiles?: Record<string, AttentionVariant>;
  /** Unused (the CLI passes it to every suite). */
  tfjs?: boolean;
}

/** Largest relative error a check accepts (float32 kernels measure ≈ 1e-5). */
export const CHECK_TOL = 2e-3;

const now = () => performance.now();

/** Milliseconds per call of `run`: two warm-up calls, one to size the loop, then `iters` queued back to back. */
export async function timeLoop(run: () => void, sync: () => Promise<void>, seconds: number): Promise<{ ms: number; iters: number }> {
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

/**
 * Relative error of a fused case against float64 forgetting attention on the host, at two (b, h)
 * pairs (a long-memory and a short-memory head): output rows and dq at four query rows, and dk,
 * dv and dlogF at key rows in the last 70 positions (which need only the score rows after them).
 * Per quantity: the largest error over the largest sum of term magnitudes among the checked
 * entries; with ACP the pruned mass (< ε = e^−10 per row) is allowed on top. NaN counts as ∞.
 */
export async function checkCase(
  x: { q: Tensor; k: Tensor; v: Tensor; logF: Tensor; dO: Tensor },
  got: { o: Tensor; dq: Tensor; dk: Tensor; dv: Tensor; dlogF: Tensor },
  acp: boolean,
): Promise<Record<string, number>> {
  const [B, T, H, D] = x.q.shape;
  const scale = 1 / Math.sqrt(D);
  const eps = acp ? 2 * Math.exp(-10) : 0;
  // per quantity: the largest |got − want| (less the ACP allowance) over the largest magnitude of
  // the checked entries (norm-wise: a value that cancels to ~0, such as dq at the first query, is
  // held to the scale of its neighbours, not to its own)
  const err: Record<string, number> = { o: 0, dq: 0, dk: 0, dv: 0, dlogF: 0 };
  const scaleOf: Record<string, number> = { o: 0, dq: 0, dk: 0, dv: 0, dlogF: 0 };
  const note = (what: string, g: number, want: number, mag: number) => {
    const e = Math.abs(g - want) - eps * mag;
    err[what] = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(err[what], e);
    scaleOf[what] = Math.max(scaleOf[what], mag);
  };
  const head = async (t: Tensor, b: number, h: number) => {
    const s = slice(t, [b, null, h]);
    const d = Float64Array.from(await s.data());
    s.dispose();
    return d;
  };
  for (const [b, h] of [
    [0, 0],
    [B - 1, H - 1],
  ]) {
    const [q, k, v, f, dO, o, dq, dk, dv, dlf] = await Promise.all(
      [x.q, x.k, x.v, x.logF, x.dO, got.o, got.dq, got.dk, got.dv, got.dlogF].map((t) => head(t, b, h)),
    );
    const lam = new Float64Array(T);
    let acc = 0;
    for (let t = 0; t < T; t++) lam[t] = acc += f[t];
    const dot = (a: Float64Array, i: number, c: Float64Array, j: number) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += a[i * D + d] * c[j * D + d];
      return s;
    };
    // P and dS of row i over keys 0..i, float64
    const row = (i: number) => {
      const p = new Float64Array(i + 1);
      let m = Number.NEGATIVE_INFINITY;
      for (let j = 0; j <= i; j++) {
        p[j] = scale * dot(q, i, k, j) + lam[i] - lam[j];
        m = Math.max(m, p[j]);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += p[j] = Math.exp(p[j] - m);
      for (let j = 0; j <= i; j++) p[j] /= z;
      const oi = new Float64Array(D);
      const om = new Float64Array(D);
      for (let j = 0; j <= i; j++)
        for (let d = 0; d < D; d++) {
          oi[d] += p[j] * v[j * D + d];
          om[d] += p[j] * Math.abs(v[j * D + d]);
        }
      let delta = 0;
      for (let d = 0; d < D; d++) delta += oi[d] * dO[i * D + d];
      const ds = new Float64Array(i + 1);
      for (let j = 0; j <= i; j++) ds[j] = p[j] * (dot(dO, i, v, j) - delta);
      return { p, ds, oi, om };
    };
    for (const i of [0, Math.floor(T / 2), T - 3, T - 1]) {
      if (i < 0 || i >= T) continue;
      const r = row(i);
      for (let d = 0; d < D; d++) {
        note('o', o[i * D + d], r.oi[d], r.om[d]);
        let want = 0;
        let mag = 0;
        for (let j = 0; j <= i; j++) {
          want += scale * r.ds[j] * k[j * D + d];
          mag += scale * Math.abs(r.ds[j] * k[j * D + d]);
        }
        note('dq', dq[i * D + d], want, mag);
      }
    }
    const t0 = Math.max(0, T - 70);
    const rows = Array.from({ length: T - t0 }, (_, n) => row(t0 + n));
    const keys = [T - 1, T - 5, t0].filter((j) => j >= t0);
    for (const j of keys)
      for (let d = 0; d < D; d++) {
        let wk = 0;
        let mk = 0;
        let wv = 0;
        let mv = 0;
        for (let i = j; i < T; i++) {
          const r = rows[i - t0];
          wk += scale * r.ds[j] * q[i * D + d];
          mk += scale * Math.abs(r.ds[j] * q[i * D + d]);
          wv += r.p[j] * dO[i * D + d];
          mv += Math.abs(r.p[j] * dO[i * D + d]);
        }
        note('dk', dk[j * D + d], wk, mk);
        note('dv', dv[j * D + d], wv, mv);
      }
    // dlogF_t = Σ_{s ≥ t} (Σ_j dS_sj − Σ_i dS_is)
    for (const t of keys) {
      let want = 0;
      let mag = 0;
      for (let s = t; s < T; s++) {
        const r = rows[s - t0];
        for (let j = 0; j <= s; j++) {
          want += r.ds[j];
          mag += Math.abs(r.ds[j]);
          if (j >= t) {
            want -= r.ds[j];
            mag += Math.abs(r.ds[j]);
          }
        }
      }
      note('dlogF', dlf[t], want, mag);
    }
  }
  return Object.fromEntries(Object.keys(err).map((n) => [n, err[n] / (scaleOf[n] + 1e-30)]));
}

function deviceName(gpu: WebGPUBackend): string {
  const i = gpu.info;
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' / ');
}

/**
 * The benchmark's problem: q, k, v, dO ~ N(0,1) `[B,T,H,D]` (seeded by T), and logF = logsigmoid of
 * logits ~U(5,10) for the first half of the heads and ~U(0,5) for the rest (as a trained model's).
 */
export function benchProblem(gpu: Backend, B: number, T: number, H: number, D: number) {
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
    console.error(`attention: ${r.case} | ${r.impl} | ${r.failed ? 'FAILED' : r.value.toFixed(2)} ${r.unit}`);
  };
  const maxBinding = Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize);
  const variants: [string, AttentionVariant][] = [['auto', {}], ...Object.entries(opts.tiles ?? {})];

  for (const T of sizes) {
    const { q, k, v, dO, logF } = benchProblem(gpu, B, T, H, D);
    const params = { q, k, v, logF };
    // forward flops of causal attention (QKᵀ and PV on the causal half of the square)
    const fwdFlops = 2 * 2 * B * H * D * ((T * (T + 1)) / 2);
    const reference = opts.reference !== false && B * H * T * T * 4 <= maxBinding;
    const impls: [string, 'fused' | 'reference', AttentionVariant][] = [
      ...variants.map(([label, t]): [string, 'fused', AttentionVariant] => [
        label === 'auto' ? 'foxgate-webgpu fused' : `foxgate-webgpu fused[${label}]`,
        'fused',
        t,
      ]),
      ...(reference ? [['foxgate-webgpu reference', 'reference', {}] as [string, 'reference', AttentionVariant]] : []),
    ];
    for (const [implName, impl, variant] of impls) {
      const { deterministic, ...tiles } = variant;
      setFoxTiles(tiles);
      for (const acp of [false, true]) {
        const caseName = (what: string) => `${what} B=${B} T=${T} H=${H} D=${D}${acp ? ' ACP' : ''}`;
        const call = { acp, impl, deterministic: deterministic === true };
        try {
          // correctness first (fused only: the reference is the oracle of the tests)
          let note = '';
          if (impl === 'fused') {
            const { value, aux, grads } = valueAndGrad((p: typeof params) => {
              const r = forgettingAttention(p.q, p.k, p.v, p.logF, { ...call, stats: true });
              return { loss: sum(mul(r.out, dO)), aux: r };
            })(params);
            const frac = (await aux.stats.fraction.data())[0];
            const err = await checkCase(
              { q, k, v, logF, dO },
              { o: aux.out, dq: grads.q, dk: grads.k, dv: grads.v, dlogF: grads.logF },
              acp,
            );
            for (const t of [value, aux.out, aux.stats.fraction, aux.stats.computedBlocks, grads.q, grads.k, grads.v, grads.logF])
              t.dispose();
            const worst = Object.entries(err).sort((a, b) => b[1] - a[1])[0];
            note = `tiles computed ${(100 * frac).toFixed(1)}%, max rel err ${worst[1].toExponential(1)} (${worst[0]}) against float64 on sampled rows`;
            if (!(worst[1] <= CHECK_TOL)) {
              const bad = Object.entries(err).filter(([, e]) => !(e <= CHECK_TOL));
              throw new Error(`check failed: ${bad.map(([n, e]) => `${n} rel err ${e.toExponential(2)}`).join(', ')} > ${CHECK_TOL}`);
            }
          }
          const fwd = await timeLoop(() => forgettingAttention(q, k, v, logF, call).dispose(), sync, seconds);
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
            const { value, grads } = valueAndGrad((p: typeof params) => sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF, call), dO)))(
              params,
            );
            for (const t of [value, grads.q, grads.k, grads.v, grads.logF]) t.dispose();
          };
          const both = await timeLoop(step, sync, seconds);
          push({
            bench: 'attention',
            case: caseName('fwd+bwd'),
            impl: implName,
            value: both.ms,
            unit: 'ms',
            note: `${((3.5 * fwdFlops) / (both.ms / 1000) / 1e12).toFixed(1)} TFLOP/s counted as FlashAttention does (3.5× fwd); ${both.iters} it; ${dev}`,
          });
        } catch (e) {
          push({
            bench: 'attention',
            case: caseName('fwd, fwd+bwd'),
            impl: implName,
            value: Number.NaN,
            unit: 'ms',
            note: `FAILED: ${(e as Error).message.slice(0, 300)}`,
            failed: true,
          });
        }
      }
      setFoxTiles({});
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
