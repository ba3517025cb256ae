import { fail, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import { ACP_TILE, type FoxDims } from '../tiles.js';
import { cachedWGSL } from '../wgsl/cache.js';
import { rowElem, rowInput } from '../wgsl/rows.js';
import { foxTilesFor, kernelD } from './tuning.js';
import { foxF16Config, foxForwardF16 } from './webgpu-f16.js';
import { foxBackwardF16, foxF16BwdConfig } from './webgpu-f16-bwd.js';
import { acpBoundsWGSL, foxDeltaWGSL, foxDlogfWGSL } from './wgsl-small.js';
import { type FoxKernelSpec, type FoxTileConfig, foxBwdKVWGSL, foxBwdQWGSL, foxForwardWGSL } from './wgsl-tiled.js';
import { type FoxWideConfig, foxBwdKVWideWGSL, foxBwdQWideWGSL, foxForwardWideWGSL, WIDE_ROWS } from './wgsl-wide.js';

/**
 * Launches the WGSL kernels (`wgsl-tiled.ts`, `wgsl-wide.ts`, `wgsl-small.ts`) through the WebGPU
 * backend's `runKernelTensors`. Tensors in and out are float32 on the WebGPU backend; q, k, v, dO
 * in `[B,T,H,D]` (any view; strided ones are copied by `runKernel`), Λ in `[B,Tk,H]`.
 */

function specOf(
  backend: WebGPUBackend,
  D: number,
  gated: boolean,
  acp: boolean,
  tiles: FoxTileConfig,
  window: number | null,
): FoxKernelSpec {
  return { D: kernelD(backend, D), gated, acp, tiles, dynamic: backend.software, ...(window !== null ? { window: true } : {}) };
}

function tiledCode(kind: 'fwd' | 'dkv' | 'dq', spec: FoxKernelSpec): string {
  return cachedWGSL(`fox-${kind}`, [spec], () => TILED_GEN[kind](spec));
}

function wideCode(kind: 'fwd' | 'dkv' | 'dq', spec: FoxKernelSpec, c: FoxWideConfig): string {
  return cachedWGSL(`fox-wide-${kind}`, [spec, c], () => WIDE_GEN[kind](spec, c));
}

const TILED_GEN = { fwd: foxForwardWGSL, dq: foxBwdQWGSL, dkv: foxBwdKVWGSL };
const WIDE_GEN = { fwd: foxForwardWideWGSL, dq: foxBwdQWideWGSL, dkv: foxBwdKVWideWGSL };

/** The kernels' uniforms; `win` (the sliding window) only for the windowed kernels. */
function uniforms(dims: FoxDims, scale: number, tiles?: FoxTileConfig, window: number | null = null) {
  return {
    u32: {
      ...(tiles ? { Dr: dims.D, loopDV: Math.ceil(dims.D / 4), loopBK: tiles.bk, loopBQ: tiles.bq } : {}),
      ...(window !== null ? { win: window } : {}),
      Tq: dims.Tq,
      Tk: dims.Tk,
      H: dims.H,
      nqb64: Math.ceil(dims.Tq / ACP_TILE),
      nkb64: Math.ceil(dims.Tk / ACP_TILE),
      BH: dims.B * dims.H,
    },
    f32: { scale2: scale * Math.LOG2E, scale },
  };
}

function checkDevice(backend: WebGPUBackend, dims: FoxDims, bindings: number): void {
  const lim = backend.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < bindings) {
    fail(
      'forgettingAttention',
      `the WebGPU device allows ${lim.maxStorageBuffersPerShaderStage} storage buffers per stage; the fused kernels need ${bindings} (use impl: 'reference')`,
    );
  }
  if (dims.B * dims.H > 65535) fail('forgettingAttention', `B·H = ${dims.B * dims.H} exceeds 65535 (one workgroup row per head)`);
}

/** ACP bounds on the device: `first [B·H, ⌈Tq/64⌉]`, `lastq [B·H, ⌈Tk/64⌉]` (int32), `count [B·H]` (uint32). */
export interface DeviceBounds {
  first: Tensor;
  lastq: Tensor;
  count: Tensor;
}

/** `count` leaves out the tiles wholly before a sliding `window` (`first` and `lastq` do not). */
export function acpBoundsWebGPU(
  backend: WebGPUBackend,
  lam: Tensor,
  delta: Tensor,
  dims: FoxDims,
  window: number | null = null,
): DeviceBounds {
  const BH = dims.B * dims.H;
  const u = uniforms(dims, 1, undefined, window);
  const [first, lastq, count] = backend.runKernelTensors({
    name: 'fox_acp_bounds',
    code: acpBoundsWGSL(window !== null),
    inputs: [
      { name: 'lam', data: lam },
      { name: 'dlt', data: delta },
    ],
    outputs: [
      { name: 'first', shape: [BH, u.u32.nqb64], dtype: 'int32' },
      { name: 'lastq', shape: [BH, u.u32.nkb64], dtype: 'int32' },
      { name: 'count', shape: [BH], dtype: 'uint32' },
    ],
    uniforms: { u32: u.u32 },
    workgroups: [Math.ceil(BH / 64), 1],
  });
  return { first, lastq, count };
}

/** Forward: `o [B,Tq,H,D]` and the base-2 log-normaliser `lse2 [B,H,Tq]`. */
export function foxForwardWebGPU(
  backend: WebGPUBackend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lam: Tensor | null,
  bounds: DeviceBounds | null,
  dims: FoxDims,
  scale: number,
  window: number | null = null,
): { o: Tensor; lse2: Tensor } {
  const { B, Tq, H, D } = dims;
  checkDevice(backend, dims, 7);
  const f16 = foxF16Config(backend, D, window); // precision 'high' on the tensor cores (webgpu-f16.ts)
  if (f16) return foxForwardF16(backend, q, k, v, lam, bounds, dims, scale, f16);
  const chosen = foxTilesFor(backend, D);
  const tiles = chosen.fwd;
  const wideCfg = chosen.wide;
  const spec = specOf(backend, D, lam !== null, bounds !== null, tiles, window);
  const temps: Tensor[] = [];
  const inputs: KernelInput[] = [rowInput('q', q, spec, temps), rowInput('k', k, spec, temps), rowInput('v', v, spec, temps)];
  if (lam) inputs.push({ name: 'lam', data: lam });
  if (bounds) inputs.push({ name: 'first', data: bounds.first });
  const [o, lse2] = backend.runKernelTensors({
    name: 'fox_forward',
    code: wideCfg ? wideCode('fwd', spec, wideCfg) : tiledCode('fwd', spec),
    inputs,
    outputs: [
      { name: 'o', shape: [B, Tq, H, D], dtype: 'float32', elem: rowElem(spec) },
      { name: 'lse2', shape: [B, H, Tq], dtype: 'float32' },
    ],
    uniforms: uniforms(dims, scale, tiles, window),
    workgroups: [Math.ceil(Tq / (wideCfg ? WIDE_ROWS : tiles.bq)), B * H],
  });
  for (const t of temps) t.dispose();
  return { o, lse2 };
}

export interface FoxDeviceGrads {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  /** Σ_i dS_ij per key position `[B,Tk,H]` (gated only). */
  colsum: Tensor | null;
  /** Σ_j dS_ij per query `[B,Tq,H]` (gated, from the dQ kernel; 0 up to rounding, so the fused path leaves it out). */
  rowsum: Tensor | null;
}

/** Backward kernels. `delta [B,Tq,H]` = Σ_d o·dO. */
export function foxBackwardWebGPU(
  backend: WebGPUBackend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dO: Tensor,
  lse2: Tensor,
  delta: Tensor,
  lam: Tensor | null,
  bounds: Pick<DeviceBounds, 'first' | 'lastq'> | null,
  dims: FoxDims,
  scale: number,
  deterministic = false,
  window: number | null = null,
): FoxDeviceGrads {
  const { B, Tq, Tk, H, D } = dims;
  const gated = lam !== null;
  checkDevice(backend, dims, 11);
  const f16 = foxF16BwdConfig(backend, D, window); // precision 'high' on the tensor cores, when opted in (webgpu-f16-bwd.ts)
  if (f16) return foxBackwardF16(backend, q, k, v, dO, lse2, delta, lam, bounds, dims, scale, f16);
  const tiles = foxTilesFor(backend, D, deterministic);
  const temps: Tensor[] = [];
  const kvSpec = specOf(backend, D, gated, bounds !== null, tiles.dkv, window);
  const qSpec = specOf(backend, D, gated, bounds !== null, tiles.dq, window);
  const common: KernelInput[] = [
    rowInput('q', q, kvSpec, temps),
    rowInput('k', k, kvSpec, temps),
    rowInput('v', v, kvSpec, temps),
    rowInput('dout', dO, kvSpec, temps),
    { name: 'lse2', data: lse2 },
    { name: 'delta', data: delta },
  ];
  if (lam) common.push({ name: 'lam', data: lam });
  // the fused dK/dV kernel adds dQ itself (atomically, into a zeroed buffer); Σ_j dS_ij = 0 for
  // every query (softmax rows are shift invariant), so dlogF needs only the column sums
  const fused = tiles.wideDkv !== false && tiles.wideDkv.fuseDq === true;
  const kv = backend.runKernelTensors({
    name: 'fox_backward_dkdv',
    code: tiles.wideDkv ? wideCode('dkv', kvSpec, tiles.wideDkv) : tiledCode('dkv', kvSpec),
    inputs: bounds ? [...common, { name: 'lastq', data: bounds.lastq }] : common,
    outputs: [
      { name: 'dk', shape: [B, Tk, H, D], dtype: 'float32', elem: rowElem(kvSpec) },
      { name: 'dv', shape: [B, Tk, H, D], dtype: 'float32', elem: rowElem(kvSpec) },
      ...(gated ? [{ name: 'colsum', shape: [B, Tk, H], dtype: 'float32' as const }] : []),
      ...(fused ? [{ name: 'dq', shape: [B, Tq, H, D], dtype: 'float32' as const, zero: true, elem: 'atomic<u32>' }] : []),
    ],
    uniforms: uniforms(dims, scale, tiles.dkv, window),
    workgroups: [Math.ceil(Tk / (tiles.wideDkv ? WIDE_ROWS : tiles.dkv.bk)), B * H],
  });
  const qg = fused
    ? null
    : backend.runKernelTensors({
        name: 'fox_backward_dq',
        code: tiles.wideDq ? wideCode('dq', qSpec, tiles.wideDq) : tiledCode('dq', qSpec),
        inputs: bounds ? [...common, { name: 'first', data: bounds.first }] : common,
        outputs: [
          { name: 'dq', shape: [B, Tq, H, D], dtype: 'float32', elem: rowElem(qSpec) },
          ...(gated ? [{ name: 'rowsum', shape: [B, Tq, H], dtype: 'float32' as const }] : []),
        ],
        uniforms: uniforms(dims, scale, tiles.dq, window),
        workgroups: [Math.ceil(Tq / (tiles.wideDq ? WIDE_ROWS : tiles.dq.bq)), B * H],
      });
  for (const t of temps) t.dispose();
  const dq = qg ? qg[0] : kv[gated ? 3 : 2];
  return { dq, dk: kv[0], dv: kv[1], colsum: gated ? kv[2] : null, rowsum: gated && qg ? qg[1] : null };
}

/** `δ [B,Tq,H]` = Σ_d o·dO (the backward's row terms), for o and dO `[B,Tq,H,D]`. */
export function foxDeltaWebGPU(backend: WebGPUBackend, o: Tensor, dO: Tensor, dims: FoxDims): Tensor {
  const rows = dims.B * dims.Tq * dims.H;
  const [delta] = backend.runKernelTensors({
    name: 'fox_delta',
    code: foxDeltaWGSL(),
    inputs: [
      { name: 'o', data: o },
      { name: 'dout', data: dO },
    ],
    outputs: [{ name: 'delta', shape: [dims.B, dims.Tq, dims.H], dtype: 'float32' }],
    uniforms: { u32: { rows, Dr: dims.D } },
    workgroups: Math.ceil(rows / 16),
  });
  return delta;
}

/** `dlogF [B,Tk,H]` from the column sums of dS and, when given, the row sums (compensated reverse scan). */
export function foxDlogfWebGPU(backend: WebGPUBackend, rowsum: Tensor | null, colsum: Tensor, dims: FoxDims): Tensor {
  const BH = dims.B * dims.H;
  const [dlogf] = backend.runKernelTensors({
    name: 'fox_dlogf',
    code: foxDlogfWGSL(rowsum !== null),
    inputs: [...(rowsum ? [{ name: 'rowsum', data: rowsum }] : []), { name: 'colsum', data: colsum }],
    outputs: [{ name: 'dlogf', shape: [dims.B, dims.Tk, dims.H], dtype: 'float32' }],
    uniforms: uniforms(dims, 1),
    workgroups: [BH, 1],
  });
  return dlogf;
}
