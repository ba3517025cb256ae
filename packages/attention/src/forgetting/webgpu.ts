import { cast, contiguousStrides, fail, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import type { FoxDims } from './blocks.js';
import { ACP_TILE, chooseTiles, type FoxKernelSpec, type FoxTileConfig, foxBwdKVWGSL, foxBwdQWGSL, foxForwardWGSL } from './wgsl.js';
import { acpBoundsWGSL, foxDeltaWGSL, foxDlogfWGSL } from './wgsl-small.js';
import { type FoxWideConfig, foxBwdKVWideWGSL, foxBwdQWideWGSL, foxForwardWideWGSL, WIDE_ROWS, wideFit, wideThreads } from './wgsl-wide.js';

/**
 * Launches the WGSL kernels of `wgsl.ts` through the WebGPU backend's `runKernel`. Tensors in
 * and out are float32 on the WebGPU backend; q, k, v, dO in `[B,T,H,D]` (any contiguous view;
 * others are copied by `runKernel`), Λ in `[B,Tk,H]`.
 */

/** Tile overrides for tuning (benchmarks); each falls back to the default when it does not fit. */
export interface FoxTileOverrides {
  fwd?: FoxTileConfig;
  dkv?: FoxTileConfig;
  dq?: FoxTileConfig;
  /**
   * The wide forward kernel (`wgsl-wide.ts`), which hardware adapters use by default for head dims
   * D ≤ 128 that are multiples of 4 (where it fits the workgroup memory), or
   * `false` for the tiled one (`fwd`). Overriding `fwd` alone selects the tiled kernel too.
   */
  wide?: FoxWideConfig | false;
  /** The wide dQ kernel (same scheme and head dims); overriding `dq` alone selects the tiled one. */
  wideDq?: FoxWideConfig | false;
  /** The wide dK/dV kernel (same scheme, keys as rows); overriding `dkv` alone selects the tiled one. */
  wideDkv?: FoxWideConfig | false;
  /**
   * Bitwise reproducible gradients: dQ from the dQ kernel instead of atomic adds in the dK/dV
   * kernel (`fuseDq`, the default where it fits: faster, but its float additions land in a
   * different order on every run).
   */
  deterministic?: boolean;
}

/**
 * The wide kernels' configuration on hardware: 64-column tiles (128 in the forward where they fit
 * the workgroup memory), 4 rows per thread (256 threads), pipelined. On an H200 at T=16k
 * (BENCHMARKS.md): forward 81 ms against 105 for the tiled kernel (8 rows per thread 110–125, not
 * pipelined 87); replacing the tiled dQ kernel took fwd+bwd 442 → 403 ms (8 rows 469, 32 columns
 * 447) and then the dK/dV kernel 404 → 377 ms (32 columns 392–398, 8 rows 461). Reading the row
 * operand when it is staged rather than a stage ahead then gave forward 77 ms and fwd+bwd 351–358 ms; double-buffered stages (one barrier per
 * stage) and direct column reads measured no better. Row maxima through subgroup shuffles (`sg`,
 * taken where the adapter's subgroups allow it) took the forward 77.3 → 75.8 ms in four runs, and
 * 128-key tiles in the forward (4×16 score micro-tiles: more multiply-adds per workgroup-memory
 * read) 75.8 → 73.0 ms; in the dQ and dK/dV kernels 128 columns measured slower (364.6 and 380.9
 * against 357.2 ms fwd+bwd). At D = 128 (fifth session) the wide kernels took fwd 959 → 155 ms and
 * fwd+bwd 11.8 s → 783 ms against the tiled ones (128-key forward tiles: no faster there), and
 * fusing dQ into the dK/dV kernel took fwd+bwd at D = 64 345 → 306 ms (ACP 184 → 173).
 */
const DEFAULT_WIDE: FoxWideConfig = { bk: 64, tm: 4, pf: true };

/**
 * The default wide configurations on this adapter for head dim D ≤ 128 (`false` above: the tiled
 * kernels): with `sg` where subgroups allow it, for the forward at D ≤ 64 128-key tiles where they
 * fit (64 otherwise), and for dK/dV `fuseDq` where its dS tile fits, unless `deterministic`.
 */
type WideDefaults = { fwd: FoxWideConfig | false; dq: FoxWideConfig | false; dkv: FoxWideConfig | false };
function defaultWide(backend: WebGPUBackend, D: number, deterministic: boolean): WideDefaults {
  if (D > 128) return { fwd: false, dq: false, dkv: false };
  const base = subgroupsWith(backend, 8, wideThreads(DEFAULT_WIDE)) ? { ...DEFAULT_WIDE, sg: true } : DEFAULT_WIDE;
  const fits = (c: FoxWideConfig) => wideFit(D, c, backend.device.limits.maxComputeWorkgroupStorageSize);
  const fused = { ...base, fuseDq: true };
  const dkv = !deterministic && fits(fused) ? fused : base;
  const wide = { ...base, bk: 128 };
  return { fwd: D <= 64 && fits(wide) ? wide : base, dq: base, dkv };
}

let overrides: FoxTileOverrides = {};

/** Sets the tile configurations the WebGPU kernels use (for tuning); `{}` restores the defaults. */
export function setFoxTiles(t: FoxTileOverrides): void {
  const fuses = (c: FoxWideConfig | false | undefined) => c !== undefined && c !== false && c.fuseDq === true;
  for (const k of ['wide', 'wideDq'] as const)
    if (fuses(t[k])) fail('setFoxTiles', `fuseDq applies to the dK/dV kernel (wideDkv), not to ${k}`);
  if (t.deterministic && fuses(t.wideDkv))
    fail('setFoxTiles', 'deterministic: true excludes wideDkv.fuseDq (its atomic adds run in a different order every time)');
  overrides = { ...t };
}

/**
 * Head dim the kernels are generated for: D itself on hardware; on software adapters the class
 * bound (64, 128 or 256) of the dynamic kernels, which read the actual D from a uniform.
 */
function kernelD(backend: WebGPUBackend, D: number): number {
  return backend.software ? (D <= 64 ? 64 : D <= 128 ? 128 : 256) : D;
}

/** The tile configurations the kernels use for head dim D on this device. */
export function foxTilesFor(backend: WebGPUBackend, D: number): Required<FoxTileOverrides> {
  const lim = backend.device.limits;
  const kd = kernelD(backend, D);
  const deterministic = overrides.deterministic === true;
  const def = defaultWide(backend, D, deterministic);
  return {
    fwd: chooseTiles('fwd', kd, lim, overrides.fwd, backend.software),
    dkv: chooseTiles('dkv', kd, lim, overrides.dkv, backend.software),
    dq: chooseTiles('dq', kd, lim, overrides.dq, backend.software),
    wide: wideFor(backend, D, overrides.wide ?? (overrides.fwd ? false : def.fwd)),
    wideDq: wideFor(backend, D, overrides.wideDq ?? (overrides.dq ? false : def.dq)),
    wideDkv: wideFor(backend, D, overrides.wideDkv ?? (overrides.dkv ? false : def.dkv)),
    deterministic,
  };
}

function wideFor(backend: WebGPUBackend, D: number, c: FoxWideConfig | false): FoxWideConfig | false {
  if (!c || backend.software) return false;
  if (c.sg && !subgroupsWith(backend, 8, wideThreads(c))) return false;
  return wideFit(D, c, backend.device.limits.maxComputeWorkgroupStorageSize) ? c : false;
}

/**
 * Whether the forward kernel can reduce score rows with subgroup shuffles on this device: the
 * `subgroups` feature with the `subgroup_id` builtin, and every subgroup a multiple of the
 * `bk / tn` threads that share a row (so a row never straddles two subgroups).
 */
function subgroupRows(backend: WebGPUBackend, tiles: FoxTileConfig): boolean {
  const nc = tiles.bk / tiles.tn;
  return tiles.sg === true && subgroupsWith(backend, nc, (tiles.bq / tiles.tm) * nc);
}

/**
 * Subgroups with the `subgroup_id` builtin on a hardware adapter, every subgroup a multiple of the
 * `group` threads that share a row and a divisor of the workgroup's `threads`.
 */
function subgroupsWith(backend: WebGPUBackend, group: number, threads: number): boolean {
  const i = backend.info;
  return (
    !backend.software &&
    i.features.includes('subgroups') &&
    i.wgslFeatures.includes('subgroup_id') &&
    (i.subgroupMinSize ?? 0) >= group &&
    threads % (i.subgroupMaxSize ?? Number.POSITIVE_INFINITY) === 0
  );
}

function specOf(
  backend: WebGPUBackend,
  D: number,
  gated: boolean,
  acp: boolean,
  tiles: FoxTileConfig,
  kind: 'fwd' | 'dkv' | 'dq',
): FoxKernelSpec {
  const subgroups = kind === 'fwd' && subgroupRows(backend, tiles);
  return { D: kernelD(backend, D), gated, acp, tiles, dynamic: backend.software, subgroups };
}

/**
 * Generated WGSL by kernel, spec and configuration. The key holds every field of the tile or wide
 * configuration (JSON), so that configurations differing in any option never share code.
 */
const codeCache = new Map<string, string>();
function memo(key: string, gen: () => string): string {
  let c = codeCache.get(key);
  if (!c) {
    c = gen();
    codeCache.set(key, c);
  }
  return c;
}

function cached(kind: string, spec: FoxKernelSpec, gen: (s: FoxKernelSpec) => string): string {
  return memo(`${kind}:${spec.D}:${spec.gated}:${spec.acp}:${spec.dynamic}:${spec.subgroups}:${JSON.stringify(spec.tiles)}`, () =>
    gen(spec),
  );
}

const WIDE_GEN = { fwd: foxForwardWideWGSL, dq: foxBwdQWideWGSL, dkv: foxBwdKVWideWGSL };
function cachedWide(kind: 'fwd' | 'dq' | 'dkv', spec: FoxKernelSpec, c: FoxWideConfig): string {
  return memo(`wide-${kind}:${spec.D}:${spec.gated}:${spec.acp}:${JSON.stringify(c)}`, () => WIDE_GEN[kind](spec, c));
}

/** Inputs read as vec4 need an element offset that is a multiple of 4: copy the rare others. */
function rows(name: string, x: Tensor, spec: FoxKernelSpec, temps: Tensor[]): KernelInput {
  if (spec.dynamic || spec.D % 4 !== 0) return { name, data: x };
  let t = x;
  const dense = contiguousStrides(x.shape);
  const strided = x.strides.some((s, i) => x.shape[i] !== 1 && s !== dense[i]);
  // strided views are copied by runKernel (to offset 0); dense ones keep their offset
  if (!strided && x.offset % 4 !== 0) {
    t = cast(x, 'float32');
    temps.push(t);
  }
  return { name, data: t, elem: 'vec4<f32>' };
}

function elemOf(spec: FoxKernelSpec): string | undefined {
  return !spec.dynamic && spec.D % 4 === 0 ? 'vec4<f32>' : undefined;
}

function uniforms(dims: FoxDims, scale: number, tiles?: FoxTileConfig) {
  return {
    u32: {
      ...(tiles ? { Dr: dims.D, loopDV: Math.ceil(dims.D / 4), loopBK: tiles.bk, loopBQ: tiles.bq } : {}),
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

export function acpBoundsWebGPU(backend: WebGPUBackend, lam: Tensor, delta: Tensor, dims: FoxDims): DeviceBounds {
  const BH = dims.B * dims.H;
  const u = uniforms(dims, 1);
  const [first, lastq, count] = backend.runKernelTensors({
    name: 'fox_acp_bounds',
    code: acpBoundsWGSL(),
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
): { o: Tensor; lse2: Tensor } {
  const { B, Tq, H, D } = dims;
  checkDevice(backend, dims, 7);
  const chosen = foxTilesFor(backend, D);
  const tiles = chosen.fwd;
  const wideCfg = chosen.wide;
  const spec = specOf(backend, D, lam !== null, bounds !== null, tiles, 'fwd');
  const temps: Tensor[] = [];
  const inputs: KernelInput[] = [rows('q', q, spec, temps), rows('k', k, spec, temps), rows('v', v, spec, temps)];
  if (lam) inputs.push({ name: 'lam', data: lam });
  if (bounds) inputs.push({ name: 'first', data: bounds.first });
  const [o, lse2] = backend.runKernelTensors({
    name: 'fox_forward',
    code: wideCfg ? cachedWide('fwd', spec, wideCfg) : cached('fwd', spec, foxForwardWGSL),
    inputs,
    outputs: [
      { name: 'o', shape: [B, Tq, H, D], dtype: 'float32', elem: elemOf(spec) },
      { name: 'lse2', shape: [B, H, Tq], dtype: 'float32' },
    ],
    uniforms: uniforms(dims, scale, tiles),
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
): FoxDeviceGrads {
  const { B, Tq, Tk, H, D } = dims;
  const gated = lam !== null;
  checkDevice(backend, dims, 11);
  const tiles = foxTilesFor(backend, D);
  const temps: Tensor[] = [];
  const kvSpec = specOf(backend, D, gated, bounds !== null, tiles.dkv, 'dkv');
  const qSpec = specOf(backend, D, gated, bounds !== null, tiles.dq, 'dq');
  const common: KernelInput[] = [
    rows('q', q, kvSpec, temps),
    rows('k', k, kvSpec, temps),
    rows('v', v, kvSpec, temps),
    rows('dout', dO, kvSpec, temps),
    { name: 'lse2', data: lse2 },
    { name: 'delta', data: delta },
  ];
  if (lam) common.push({ name: 'lam', data: lam });
  // the fused dK/dV kernel adds dQ itself (atomically, into a zeroed buffer); Σ_j dS_ij = 0 for
  // every query (softmax rows are shift invariant), so dlogF needs only the column sums
  const fused = tiles.wideDkv !== false && tiles.wideDkv.fuseDq === true;
  const kv = backend.runKernelTensors({
    name: 'fox_backward_dkdv',
    code: tiles.wideDkv ? cachedWide('dkv', kvSpec, tiles.wideDkv) : cached('dkv', kvSpec, foxBwdKVWGSL),
    inputs: bounds ? [...common, { name: 'lastq', data: bounds.lastq }] : common,
    outputs: [
      { name: 'dk', shape: [B, Tk, H, D], dtype: 'float32', elem: elemOf(kvSpec) },
      { name: 'dv', shape: [B, Tk, H, D], dtype: 'float32', elem: elemOf(kvSpec) },
      ...(gated ? [{ name: 'colsum', shape: [B, Tk, H], dtype: 'float32' as const }] : []),
      ...(fused ? [{ name: 'dq', shape: [B, Tq, H, D], dtype: 'float32' as const, zero: true, elem: 'atomic<u32>' }] : []),
    ],
    uniforms: uniforms(dims, scale, tiles.dkv),
    workgroups: [Math.ceil(Tk / (tiles.wideDkv ? WIDE_ROWS : tiles.dkv.bk)), B * H],
  });
  const qg = fused
    ? null
    : backend.runKernelTensors({
        name: 'fox_backward_dq',
        code: tiles.wideDq ? cachedWide('dq', qSpec, tiles.wideDq) : cached('dq', qSpec, foxBwdQWGSL),
        inputs: bounds ? [...common, { name: 'first', data: bounds.first }] : common,
        outputs: [
          { name: 'dq', shape: [B, Tq, H, D], dtype: 'float32', elem: elemOf(qSpec) },
          ...(gated ? [{ name: 'rowsum', shape: [B, Tq, H], dtype: 'float32' as const }] : []),
        ],
        uniforms: uniforms(dims, scale, tiles.dq),
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
