import { fail, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import type { FoxDims } from '../tiles.js';
import { cachedWGSL } from '../wgsl/cache.js';
import { rowInput } from '../wgsl/rows.js';
import { type FoxF16Config, f16Fit, f16HeadDim, f16Rows, f16SmemBytes, foxForwardF16WGSL, foxMaxAbsWGSL } from './wgsl-f16.js';

/**
 * Precision 'high' for the forward of forgetting attention (`wgsl-f16.ts`): which configuration
 * runs, and the launch. The route needs the backend's precision 'high' (`initWebGPU({ precision:
 * 'high' })` or `setPrecision`), an adapter with f16 subgroup matrices (`backend.tensorCores`; or
 * `emulate`), a head dim that is a multiple of 16 up to 64 and no sliding window; elsewhere the
 * f32 kernels run, as the 'high' matmul runs f32 products where there are no tensor cores. The
 * backward stays f32 (it reads the forward's lse2 and o).
 *
 * On by default under 'high' since it passed every float64 check on the H200 (2026-12-02, after
 * the workgroup-layout fix in wgsl-f16.ts); `setFoxF16` from `@foxgate/attention/dev` picks
 * another configuration (hardware checks, ablations) or turns the route off.
 */

/**
 * The default: 4 subgroups (128 query rows), 16-key tiles, rescaling at 2^8, Q staged through the
 * K/V/P array, the next key tile prefetched into registers (H200, B4 H16 D64 T=16k: 26.8 ms;
 * 29.4 without the prefetch, 49.7 with a resident Q; ≈ 80 for f32).
 */
export const FOX_F16_DEFAULT: FoxF16Config = { bk: 16, sg: 4, tau: 8, qstage: 'shared', prefetch: true };

let override: FoxF16Config | false | null = null;

/**
 * Overrides the f16 forward's configuration, process-wide (GPU scripts, tests); `false` turns the
 * route off (precision 'high' then runs the f32 attention kernels); `null` restores the default
 * (`FOX_F16_DEFAULT` where the adapter has tensor cores). `emulate: true` runs the plain-WGSL
 * emulation, also on adapters without subgroup matrices (then it only needs `shader-f16`); the
 * route still needs precision 'high'.
 */
export function setFoxF16(c: FoxF16Config | false | null): void {
  if (c === null || c === false) {
    override = c;
    return;
  }
  if (typeof c !== 'object') fail('setFoxF16', `expects a configuration, false or null, got ${String(c)}`);
  const known = ['bk', 'sg', 'tau', 'emulate', 'oacc', 'lets', 'pack', 'split', 'qstage', 'debug', 'prefetch'];
  for (const key of Object.keys(c)) if (!known.includes(key)) fail('setFoxF16', `unknown key '${key}' (known: ${known.join(', ')})`);
  if (![16, 32, 64].includes(c.bk)) fail('setFoxF16', `bk must be 16, 32 or 64, got ${c.bk}`);
  if (![1, 2, 4].includes(c.sg)) fail('setFoxF16', `sg must be 1, 2 or 4, got ${c.sg}`);
  if (c.oacc !== undefined && c.oacc !== 'matrix' && c.oacc !== 'lanes')
    fail('setFoxF16', `oacc must be 'matrix' or 'lanes', got ${String(c.oacc)}`);
  if (c.qstage !== undefined && c.qstage !== 'resident' && c.qstage !== 'shared')
    fail('setFoxF16', `qstage must be 'resident' or 'shared', got ${String(c.qstage)}`);
  if (c.tau !== undefined && !(Number.isFinite(c.tau) && c.tau >= 0 && c.tau <= 15))
    fail('setFoxF16', `tau must be in [0, 15] (P ≤ 2^tau is stored as f16), got ${c.tau}`);
  override = { ...c };
}

/** The f16 configuration for this call, or null when the f32 kernels run (see the file comment). */
export function foxF16Config(backend: WebGPUBackend, D: number, window: number | null): FoxF16Config | null {
  if (backend.precision !== 'high' || window !== null || override === false) return null;
  const c = override ?? (backend.tensorCores ? FOX_F16_DEFAULT : null);
  if (!c) return null;
  if (c.emulate ? !backend.features.has('shader-f16') : !backend.tensorCores) return null;
  const lim = backend.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < 8) return null;
  if (!f16Fit(D, c, lim.maxComputeWorkgroupStorageSize)) {
    // an explicit configuration that cannot run at a head dim the kernel takes is an error; the
    // default falls back to the f32 kernels (an adapter with less workgroup memory)
    if (override && f16HeadDim(D))
      fail(
        'forgettingAttention',
        `the f16 configuration ${JSON.stringify(c)} needs ${f16SmemBytes(D, c)} bytes of workgroup memory at D=${D}; the device allows ${lim.maxComputeWorkgroupStorageSize}`,
      );
    return null;
  }
  return c;
}

/**
 * The row inputs of the f16 kernels (vec4 rows of `[B,T,H,D]`; copies go to `temps`), after the
 * one-workgroup-row-per-head limit the f16 kernels share.
 */
export function f16Rows4(dims: FoxDims, xs: Record<string, Tensor>, temps: Tensor[]): KernelInput[] {
  if (dims.B * dims.H > 65535) fail('forgettingAttention', `B·H = ${dims.B * dims.H} exceeds 65535 (one workgroup row per head)`);
  return Object.entries(xs).map(([name, x]) => rowInput(name, x, { D: dims.D }, temps));
}

/**
 * Queues the max-abs pre-pass over `rows` (q, k, v, and dO for the backward; `code` generates it
 * under cache key `key`): a `[4]` uint32 tensor of max |x| bits, read by the f16 kernels.
 */
export function f16MaxAbs(backend: WebGPUBackend, rows: KernelInput[], dims: FoxDims, key: string, code: () => string): Tensor {
  const { B, Tq, Tk, H, D } = dims;
  const n4q = (B * Tq * H * D) / 4;
  const n4k = (B * Tk * H * D) / 4;
  const groups = Math.max(1, Math.min(1024, Math.ceil(Math.max(n4q, n4k) / 256)));
  const [stats] = backend.runKernelTensors({
    name: key.replace(/-/g, '_'),
    code: cachedWGSL(key, [], code),
    inputs: rows,
    outputs: [{ name: 'stats', shape: [4], dtype: 'uint32', zero: true, elem: 'atomic<u32>' }],
    uniforms: { u32: { n4q, n4k, threads: groups * 256 } },
    workgroups: groups,
  });
  return stats;
}

/** Forward at precision 'high': `o [B,Tq,H,D]` and `lse2 [B,H,Tq]`, as `foxForwardWebGPU` returns them. */
export function foxForwardF16(
  backend: WebGPUBackend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Tensor | null,
  bounds: { first: Tensor } | null,
  dims: FoxDims,
  scale: number,
  c: FoxF16Config,
): { o: Tensor; lse2: Tensor } {
  const { B, Tq, Tk, H, D } = dims;
  const temps: Tensor[] = [];
  const rows = f16Rows4(dims, { q, k, v }, temps);
  const stats = f16MaxAbs(backend, rows, dims, 'fox-f16-maxabs', foxMaxAbsWGSL);
  const spec = { D, gated: lam !== null, acp: bounds !== null };
  const inputs: KernelInput[] = [...rows, { name: 'stats', data: stats }];
  if (lam) inputs.push({ name: 'lam', data: lam });
  if (bounds) inputs.push({ name: 'first', data: bounds.first });
  const [o, lse2] = backend.runKernelTensors({
    name: 'fox_forward_f16',
    code: cachedWGSL('fox-f16-fwd', [spec, c], () => foxForwardF16WGSL(spec, c)),
    inputs,
    outputs: [
      { name: 'o', shape: [B, Tq, H, D], dtype: 'float32', elem: 'vec4<f32>' },
      { name: 'lse2', shape: [B, H, Tq], dtype: 'float32' },
    ],
    uniforms: { u32: { Tq, Tk, H, nqb64: Math.ceil(Tq / 64) }, f32: { scale2: scale * Math.LOG2E } },
    workgroups: [Math.ceil(Tq / f16Rows(c)), B * H],
  });
  stats.dispose();
  for (const t of temps) t.dispose();
  return { o, lse2 };
}
