import { fail, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import type { FoxDims } from '../tiles.js';
import { cachedWGSL } from '../wgsl/cache.js';
import type { FoxDeviceGrads } from './webgpu.js';
import { f16MaxAbs, f16Rows4 } from './webgpu-f16.js';
import { f16HeadDim } from './wgsl-f16.js';
import { type FoxF16BwdConfig, f16BwdFit, f16BwdRows, f16BwdSmemBytes, foxBwdF16WGSL, foxMaxAbsBwdWGSL } from './wgsl-f16-bwd.js';

/**
 * Precision 'high' for the backward of forgetting attention (`wgsl-f16-bwd.ts`): the route and
 * the launch. Off unless opted in with `setFoxF16Bwd` (`@foxgate/attention/dev`) until it has
 * passed the float64 checks on hardware; then, under precision 'high', on an adapter with f16
 * subgroup matrices (`backend.tensorCores`; or `emulate`), at head dims that are multiples of 16
 * up to 64 and without a sliding window, `foxBackwardWebGPU` runs it instead of the f32 kernels.
 * It reads the forward's lse2 (of whichever forward ran) and δ = Σ o·dO as the f32 kernels do.
 */

/** 2 subgroups (64 keys / 64 queries) per workgroup, 32-query and 32-key tiles, the next tile prefetched into registers: 41 KiB of workgroup memory at D = 64 (H200 T=16k fwd+bwd 336 ms; 729 with 16-wide tiles, no prefetch). */
export const FOX_F16_BWD_DEFAULT: FoxF16BwdConfig = { kvSg: 2, bq: 32, qSg: 2, bk: 32, prefetch: true };

let bwdOverride: FoxF16BwdConfig | null = null;

/**
 * Turns the f16 backward on with a configuration (`FOX_F16_BWD_DEFAULT` or another), process-wide;
 * `null` turns it off (the default). `emulate: true` runs the plain-WGSL emulation, also on
 * adapters without subgroup matrices (it then needs only `shader-f16`).
 */
export function setFoxF16Bwd(c: FoxF16BwdConfig | null): void {
  if (c === null) {
    bwdOverride = null;
    return;
  }
  if (typeof c !== 'object') fail('setFoxF16Bwd', `expects a configuration or null, got ${String(c)}`);
  const known = ['kvSg', 'bq', 'qSg', 'bk', 'emulate', 'hold', 'pkeep', 'split', 'ablate', 'prefetch'];
  for (const key of Object.keys(c)) if (!known.includes(key)) fail('setFoxF16Bwd', `unknown key '${key}' (known: ${known.join(', ')})`);
  if (![1, 2, 4].includes(c.kvSg)) fail('setFoxF16Bwd', `kvSg must be 1, 2 or 4, got ${c.kvSg}`);
  if (![1, 2, 4].includes(c.qSg)) fail('setFoxF16Bwd', `qSg must be 1, 2 or 4, got ${c.qSg}`);
  if (![16, 32].includes(c.bq)) fail('setFoxF16Bwd', `bq must be 16 or 32, got ${c.bq}`);
  if (![16, 32].includes(c.bk)) fail('setFoxF16Bwd', `bk must be 16 or 32, got ${c.bk}`);
  for (const key of ['emulate', 'hold', 'split', 'prefetch'] as const)
    if (c[key] !== undefined && typeof c[key] !== 'boolean') fail('setFoxF16Bwd', `${key} must be a boolean, got ${String(c[key])}`);
  if (c.pkeep !== undefined && c.pkeep !== 'regs' && c.pkeep !== 'shared')
    fail('setFoxF16Bwd', `pkeep must be 'regs' or 'shared', got ${String(c.pkeep)}`);
  bwdOverride = { ...c };
}

/** Storage buffers of the dK/dV kernel: q, k, v, dO, lse2, δ, stats, Λ, lastq; dk, dv, colsum. */
const BWD_BINDINGS = 12;

/** The f16 backward's configuration for this call, or null when the f32 kernels run (see the file comment). */
export function foxF16BwdConfig(backend: WebGPUBackend, D: number, window: number | null): FoxF16BwdConfig | null {
  const c = bwdOverride;
  if (!c || backend.precision !== 'high' || window !== null || !f16HeadDim(D)) return null;
  if (c.emulate ? !backend.features.has('shader-f16') : !backend.tensorCores) return null;
  const lim = backend.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < BWD_BINDINGS)
    fail(
      'forgettingAttention',
      `the f16 backward needs ${BWD_BINDINGS} storage buffers per stage; the device allows ${lim.maxStorageBuffersPerShaderStage} (setFoxF16Bwd(null) runs the f32 kernels)`,
    );
  if (!f16BwdFit(D, c, lim.maxComputeWorkgroupStorageSize))
    fail(
      'forgettingAttention',
      `the f16 backward configuration ${JSON.stringify(c)} needs ${Math.max(f16BwdSmemBytes('dkv', D, c), f16BwdSmemBytes('dq', D, c))} bytes of workgroup memory at D=${D}; the device allows ${lim.maxComputeWorkgroupStorageSize}`,
    );
  return c;
}

/** Backward at precision 'high': what `foxBackwardWebGPU` returns (dq, dk, dv, and colsum and rowsum when gated). */
export function foxBackwardF16(
  backend: WebGPUBackend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dO: Tensor,
  lse2: Tensor,
  delta: Tensor,
  lam: Tensor | null,
  bounds: { first: Tensor; lastq: Tensor } | null,
  dims: FoxDims,
  scale: number,
  c: FoxF16BwdConfig,
): FoxDeviceGrads {
  const { B, Tq, Tk, H, D } = dims;
  const temps: Tensor[] = [];
  const rows = f16Rows4(dims, { q, k, v, dout: dO }, temps);
  const stats = f16MaxAbs(backend, rows, dims, 'fox-f16-bwd-maxabs', foxMaxAbsBwdWGSL);
  const gated = lam !== null;
  const spec = { D, gated, acp: bounds !== null };
  const common: KernelInput[] = [...rows, { name: 'lse2', data: lse2 }, { name: 'delta', data: delta }, { name: 'stats', data: stats }];
  if (lam) common.push({ name: 'lam', data: lam });
  const u = {
    u32: { Tq, Tk, H, nqb64: Math.ceil(Tq / 64), nkb64: Math.ceil(Tk / 64) },
    f32: { scale2: scale * Math.LOG2E, scale },
  };
  const rowOut = (name: string) => ({ name, shape: [B, Tk, H, D], dtype: 'float32' as const, elem: 'vec4<f32>' });
  const colsum = gated ? [{ name: 'colsum', shape: [B, Tk, H], dtype: 'float32' as const }] : [];
  // the dK/dV kernel, or (split) a dK kernel and a dV kernel
  const kvKernel = (kind: 'dkv' | 'dk' | 'dv', outputs: ReturnType<typeof rowOut>[]) =>
    backend.runKernelTensors({
      name: `fox_backward_${kind === 'dkv' ? 'dkdv' : kind}_f16`,
      code: cachedWGSL(`fox-f16-bwd-${kind}`, [spec, c], () => foxBwdF16WGSL(kind, spec, c)),
      inputs: bounds ? [...common, { name: 'lastq', data: bounds.lastq }] : common,
      outputs: [...outputs, ...(kind === 'dv' ? [] : colsum)],
      uniforms: u,
      workgroups: [Math.ceil(Tk / f16BwdRows(kind, c)), B * H],
    });
  let kv: Tensor[]; // dk, dv, colsum (gated)
  if (c.split) {
    const [dk, cs] = kvKernel('dk', [rowOut('dk')]);
    kv = [dk, kvKernel('dv', [rowOut('dv')])[0], ...(cs ? [cs] : [])];
  } else kv = kvKernel('dkv', [rowOut('dk'), rowOut('dv')]);
  const qg = backend.runKernelTensors({
    name: 'fox_backward_dq_f16',
    code: cachedWGSL('fox-f16-bwd-dq', [spec, c], () => foxBwdF16WGSL('dq', spec, c)),
    inputs: bounds ? [...common, { name: 'first', data: bounds.first }] : common,
    outputs: [
      { name: 'dq', shape: [B, Tq, H, D], dtype: 'float32', elem: 'vec4<f32>' },
      ...(gated ? [{ name: 'rowsum', shape: [B, Tq, H], dtype: 'float32' as const }] : []),
    ],
    uniforms: u,
    workgroups: [Math.ceil(Tq / f16BwdRows('dq', c)), B * H],
  });
  stats.dispose();
  for (const t of temps) t.dispose();
  return { dq: qg[0], dk: kv[0], dv: kv[1], colsum: gated ? kv[2] : null, rowsum: gated ? qg[1] : null };
}
