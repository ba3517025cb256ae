import { fail, type WebGPUBackend } from '@foxgate/tensor';
import { type FoxTileConfig, foxSmemBytes, threadsOf } from './wgsl-tiled.js';
import { type FoxWideConfig, wideFit, wideThreads } from './wgsl-wide.js';

/**
 * Which WGSL kernel configuration runs, per adapter class and head dim. The library picks one
 * default (`foxTilesFor`); `setFoxTiles` (exported from `@foxgate/attention/dev` only, for
 * benchmarks, GPU scripts and tests) overrides it process-wide. Measurements behind each
 * default are in BENCHMARKS.md.
 */

/** Per-kernel overrides; each falls back to the default when it does not fit the device. */
export interface FoxTileOverrides {
  fwd?: FoxTileConfig;
  dkv?: FoxTileConfig;
  dq?: FoxTileConfig;
  /**
   * The wide forward kernel (`wgsl-wide.ts`; the hardware default for head dims D ≤ 128 that are
   * multiples of 4, where it fits the workgroup memory), or `false` for the tiled one (`fwd`).
   * Overriding `fwd` alone selects the tiled kernel too.
   */
  wide?: FoxWideConfig | false;
  /** The wide dQ kernel; overriding `dq` alone selects the tiled one. */
  wideDq?: FoxWideConfig | false;
  /** The wide dK/dV kernel (keys as rows); overriding `dkv` alone selects the tiled one. */
  wideDkv?: FoxWideConfig | false;
}

/** The configurations in use for one call (`foxTilesFor`). */
export interface FoxTiles {
  fwd: FoxTileConfig;
  dkv: FoxTileConfig;
  dq: FoxTileConfig;
  wide: FoxWideConfig | false;
  wideDq: FoxWideConfig | false;
  wideDkv: FoxWideConfig | false;
}

/**
 * Tiled-kernel configurations on hardware in order of preference: the first that fits the
 * device's workgroup memory and invocation limits for the head dim is used (the later ones only
 * for large D or small limits). The first (4×2 micro-tiles, register-pipelined) measured fastest.
 */
const TILED: Record<'fwd' | 'dkv' | 'dq', FoxTileConfig[]> = {
  fwd: [
    { bq: 64, bk: 32, tm: 4, tn: 2, pf: true },
    { bq: 64, bk: 32, tm: 4, tn: 4 },
    { bq: 32, bk: 32, tm: 4, tn: 4 },
    { bq: 32, bk: 16, tm: 4, tn: 4 },
    { bq: 16, bk: 16, tm: 4, tn: 4 },
    { bq: 16, bk: 8, tm: 4, tn: 4 },
    { bq: 8, bk: 8, tm: 4, tn: 4 },
    { bq: 4, bk: 4, tm: 4, tn: 4 },
  ],
  dkv: [
    { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
    { bq: 32, bk: 32, tm: 4, tn: 4 },
    { bq: 16, bk: 32, tm: 4, tn: 4 },
    { bq: 16, bk: 16, tm: 4, tn: 4 },
    { bq: 8, bk: 16, tm: 4, tn: 4 },
    { bq: 8, bk: 8, tm: 4, tn: 4 },
    { bq: 8, bk: 4, tm: 4, tn: 4 },
    { bq: 4, bk: 4, tm: 4, tn: 4 },
  ],
  dq: [
    { bq: 32, bk: 32, tm: 4, tn: 2, pf: true },
    { bq: 32, bk: 32, tm: 4, tn: 4 },
    { bq: 32, bk: 16, tm: 4, tn: 4 },
    { bq: 16, bk: 16, tm: 4, tn: 4 },
    { bq: 16, bk: 8, tm: 4, tn: 4 },
    { bq: 8, bk: 8, tm: 4, tn: 4 },
    { bq: 4, bk: 8, tm: 4, tn: 4 },
    { bq: 4, bk: 4, tm: 4, tn: 4 },
  ],
};

/**
 * Software adapters (lavapipe): one score column per thread keeps the unrolled code, and so the
 * LLVM compile time, small; speed does not matter there.
 */
const SOFTWARE_TILED: FoxTileConfig[] = [
  { bq: 16, bk: 16, tm: 4, tn: 1 },
  { bq: 8, bk: 8, tm: 4, tn: 1 },
  { bq: 4, bk: 4, tm: 4, tn: 1 },
];

type Limits = { maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number };

/** The first tiled configuration that fits the device limits (or `override`, if it fits). */
export function chooseTiles(
  kind: 'fwd' | 'dkv' | 'dq',
  D: number,
  limits: Limits,
  override?: FoxTileConfig,
  software = false,
): FoxTileConfig {
  const fits = (t: FoxTileConfig) =>
    foxSmemBytes(kind, D, t) <= limits.maxComputeWorkgroupStorageSize && threadsOf(kind, t) <= limits.maxComputeInvocationsPerWorkgroup;
  if (override) {
    if (!validTiles(override))
      fail('setFoxTiles', `tiles ${JSON.stringify(override)}: bq, bk must divide 64 and be multiples of tm ∈ {4, 8}, tn ∈ {1, 2, 4, 8}`);
    if (fits(override)) return override;
  }
  const t = (software ? SOFTWARE_TILED : TILED[kind]).find(fits);
  if (!t)
    fail(
      'forgettingAttention',
      `no ${kind} kernel tiles fit head dim D=${D} in ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`,
    );
  return t;
}

function validTiles(t: FoxTileConfig): boolean {
  const ok = (b: number, m: number, sizes: number[]) => sizes.includes(m) && 64 % b === 0 && b % m === 0 && b >= m;
  return ok(t.bq, t.tm, [4, 8]) && ok(t.bk, t.tn, [1, 2, 4, 8]);
}

/** The wide kernels' base configuration on hardware: 64-column tiles, 4 rows per thread, pipelined. */
const DEFAULT_WIDE: FoxWideConfig = { bk: 64, tm: 4, pf: true };

/**
 * The default wide configurations for head dim D ≤ 128 (`false` above: the tiled kernels): row
 * maxima by subgroup shuffles where the subgroups allow it; 128-key forward tiles at D ≤ 64
 * where they fit; dQ fused into the dK/dV kernel where its dS tile fits, unless `deterministic`.
 */
function defaultWide(backend: WebGPUBackend, D: number, deterministic: boolean): Pick<FoxTiles, 'wide' | 'wideDq' | 'wideDkv'> {
  if (D > 128) return { wide: false, wideDq: false, wideDkv: false };
  const base = subgroupsWith(backend, 8, wideThreads(DEFAULT_WIDE)) ? { ...DEFAULT_WIDE, sg: true } : DEFAULT_WIDE;
  const fits = (c: FoxWideConfig) => wideFit(D, c, backend.device.limits.maxComputeWorkgroupStorageSize);
  const fused = { ...base, fuseDq: true };
  const wide = { ...base, bk: 128 };
  return { wide: D <= 64 && fits(wide) ? wide : base, wideDq: base, wideDkv: !deterministic && fits(fused) ? fused : base };
}

let overrides: FoxTileOverrides = {};

/** Sets the kernel configurations for tuning (process-wide); `{}` restores the defaults. */
export function setFoxTiles(t: FoxTileOverrides): void {
  if (t === null || typeof t !== 'object') fail('setFoxTiles', `expects an object of overrides, got ${String(t)}`);
  const known = ['fwd', 'dkv', 'dq', 'wide', 'wideDq', 'wideDkv'];
  for (const k of Object.keys(t))
    if (!known.includes(k))
      fail('setFoxTiles', `unknown key '${k}' (known: ${known.join(', ')}; deterministic is an option of forgettingAttention now)`);
  const fuses = (c: FoxWideConfig | false | undefined) => c !== undefined && c !== false && c.fuseDq === true;
  for (const k of ['wide', 'wideDq'] as const)
    if (fuses(t[k])) fail('setFoxTiles', `fuseDq applies to the dK/dV kernel (wideDkv), not to ${k}`);
  overrides = { ...t };
}

/**
 * Head dim the kernels are generated for: D itself on hardware; on software adapters the class
 * bound (64, 128 or 256) of the dynamic kernels, which read the actual D from a uniform.
 */
export function kernelD(backend: WebGPUBackend, D: number): number {
  return backend.software ? (D <= 64 ? 64 : D <= 128 ? 128 : 256) : D;
}

/**
 * The kernel configurations for head dim D on this device. `deterministic` excludes the fused
 * dQ (its atomic float adds land in a different order on every run); an overridden
 * `wideDkv.fuseDq` is dropped then too.
 */
export function foxTilesFor(backend: WebGPUBackend, D: number, deterministic = false): FoxTiles {
  const lim = backend.device.limits;
  const kd = kernelD(backend, D);
  const def = defaultWide(backend, D, deterministic);
  const dkvWide = overrides.wideDkv ?? (overrides.dkv ? false : def.wideDkv);
  return {
    fwd: chooseTiles('fwd', kd, lim, overrides.fwd, backend.software),
    dkv: chooseTiles('dkv', kd, lim, overrides.dkv, backend.software),
    dq: chooseTiles('dq', kd, lim, overrides.dq, backend.software),
    wide: wideFor(backend, D, overrides.wide ?? (overrides.fwd ? false : def.wide)),
    wideDq: wideFor(backend, D, overrides.wideDq ?? (overrides.dq ? false : def.wideDq)),
    wideDkv: wideFor(backend, D, deterministic && dkvWide && dkvWide.fuseDq === true ? { ...dkvWide, fuseDq: false } : dkvWide),
  };
}

function wideFor(backend: WebGPUBackend, D: number, c: FoxWideConfig | false): FoxWideConfig | false {
  if (!c || backend.software) return false;
  if (c.sg && !subgroupsWith(backend, 8, wideThreads(c))) return false;
  return wideFit(D, c, backend.device.limits.maxComputeWorkgroupStorageSize) ? c : false;
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
