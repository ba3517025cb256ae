import { fail, fmtShape, type KernelInput, type Tensor, type WebGPUBackend } from '@foxgate/tensor';
import { kernelD } from '../forgetting/tuning.js';
import { cachedWGSL } from '../wgsl/cache.js';
import { rowElem, rowInput } from '../wgsl/rows.js';
import type { SkAttrs } from './attention-cpu.js';
import { type SkFwdConfig, type SkFwdSpec, skFwdSmemBytes, skFwdThreads, sparsekForwardWGSL } from './attention-wgsl-forward.js';
import { type SkTauConfig, sparsekTauWGSL } from './attention-wgsl-threshold.js';

/**
 * Launches the WebGPU forward of SPARSEK attention: the τ kernel (`attention-wgsl-threshold.ts`,
 * one workgroup per (b, h), sequential over positions) and the attention kernel
 * (`attention-wgsl-forward.ts`, one workgroup per query block and (b, h)). float32 tensors on the
 * WebGPU backend: q, k, v `[B,T,H,D]`, u `[B,T,H]` (any view; strided ones are copied by
 * `runKernel`).
 */

const OP = 'sparsekAttention';

export interface SkForwardInputs {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  u: Tensor;
}

/** Kernel configuration overrides (tests and tuning): any field left out takes the default. */
export interface SkForwardOverrides {
  tau?: Partial<SkTauConfig>;
  fwd?: Partial<SkFwdConfig>;
  /**
   * The software adapters' code path (head dim from a uniform, scalar row reads, small tiles) or,
   * false, the hardware one (constant D, vec4 rows, the hardware tile list); default: by adapter.
   */
  software?: boolean;
}

/** Subgroups with the `subgroup_id` builtin, each at least 4 lanes wide. */
function hasSubgroups(backend: WebGPUBackend): boolean {
  const i = backend.info;
  return i.features.includes('subgroups') && i.wgslFeatures.includes('subgroup_id') && (i.subgroupMinSize ?? 4) >= 4;
}

function checkF32(name: string, x: Tensor, backend: WebGPUBackend): void {
  if (x.backend !== backend) fail(OP, `${name} lives on the ${x.backend.name} backend, not on this WebGPU device`);
  if (x.dtype !== 'float32')
    fail(OP, `the WebGPU kernels take float32, got ${name} ${x.dtype}${fmtShape(x.shape)} (float64 runs on the CPU backend)`);
}

/** The τ kernel's configuration: 256 threads (64 on software adapters), 4096 active entries in workgroup memory. */
export function tauConfigFor(backend: WebGPUBackend, o?: Partial<SkTauConfig>, software = backend.software): SkTauConfig {
  const sg = o?.sg ?? hasSubgroups(backend);
  const c: SkTauConfig = { nt: o?.nt ?? (software ? 64 : 256), cap: o?.cap ?? 4096, sg: sg && hasSubgroups(backend) };
  if (!Number.isInteger(Math.log2(c.nt)) || c.nt < 4 || c.nt > backend.device.limits.maxComputeInvocationsPerWorkgroup)
    fail(OP, `τ kernel threads must be a power of two in [4, device limit], got ${c.nt}`);
  if (!Number.isInteger(c.cap) || c.cap < 1) fail(OP, `τ kernel cap must be an integer ≥ 1, got ${c.cap}`);
  const smem = c.cap * 4 + c.nt * 4 + (c.sg ? c.nt / 4 : c.nt) * 20 + 16;
  if (smem > backend.device.limits.maxComputeWorkgroupStorageSize)
    fail(OP, `τ kernel needs ${smem} bytes of workgroup memory, the device has ${backend.device.limits.maxComputeWorkgroupStorageSize}`);
  return c;
}

const HARDWARE_FWD: Omit<SkFwdConfig, 'sg'>[] = [
  { bq: 64, bk: 32, tm: 4, tn: 4 },
  { bq: 32, bk: 32, tm: 4, tn: 4 },
  { bq: 32, bk: 16, tm: 4, tn: 4 },
  { bq: 16, bk: 16, tm: 4, tn: 4 },
  { bq: 16, bk: 8, tm: 4, tn: 2 },
  { bq: 8, bk: 8, tm: 4, tn: 2 },
];
// software adapters (lavapipe): one score column per thread keeps the unrolled code small
const SOFTWARE_FWD: Omit<SkFwdConfig, 'sg'>[] = [
  { bq: 16, bk: 16, tm: 4, tn: 1 },
  { bq: 8, bk: 8, tm: 4, tn: 1 },
  { bq: 4, bk: 4, tm: 4, tn: 1 },
];

/** The forward kernel's tiles: the first of the list that fits the device (or the override). */
export function fwdConfigFor(backend: WebGPUBackend, D: number, o?: Partial<SkFwdConfig>, software = backend.software): SkFwdConfig {
  const lim = backend.device.limits;
  const sg = (o?.sg ?? true) && hasSubgroups(backend);
  const fits = (t: SkFwdConfig) =>
    skFwdSmemBytes(D, t) <= lim.maxComputeWorkgroupStorageSize && skFwdThreads(t) <= lim.maxComputeInvocationsPerWorkgroup;
  const list = software ? SOFTWARE_FWD : HARDWARE_FWD;
  const base = list.map((t) => ({ ...t, sg })).find(fits);
  if (!base) fail(OP, `no forward tiles fit head dim D=${D} in ${lim.maxComputeWorkgroupStorageSize} bytes of workgroup memory`);
  const t = { ...base, ...o, sg };
  const ok = (b: number, m: number) => Number.isInteger(b) && b > 0 && b % m === 0;
  if (![4, 8].includes(t.tm) || ![1, 2, 4, 8].includes(t.tn) || !ok(t.bq, t.tm) || !ok(t.bk, t.tn))
    fail(OP, `forward tiles ${JSON.stringify(t)}: bq a multiple of tm ∈ {4, 8}, bk a multiple of tn ∈ {1, 2, 4, 8}`);
  const nt = skFwdThreads(t);
  if (!Number.isInteger(Math.log2(nt)) && !t.sg) fail(OP, `forward tiles ${JSON.stringify(t)}: the scan needs a power-of-two thread count`);
  if (!fits(t)) fail(OP, `forward tiles ${JSON.stringify(t)} do not fit the device for D=${D}`);
  return t;
}

/** Thresholds τ `[B,H,T]` and the entering list (`selp`, `selu` `[B·H·Ls]`, `nsel` `[B·H]`). */
export interface SkThresholds {
  tau: Tensor;
  selp: Tensor;
  selu: Tensor;
  nsel: Tensor;
  /** Row stride of the list. */
  Ls: number;
}

/** The τ kernel: one workgroup per (b, h). */
export function sparsekTauWebGPU(
  backend: WebGPUBackend,
  u: Tensor,
  a: SkAttrs,
  o?: Partial<SkTauConfig>,
  software = backend.software,
): SkThresholds {
  const { B, T, H } = a.dims;
  checkF32('u', u, backend);
  if (u.rank !== 3 || u.shape[0] !== B || u.shape[1] !== T || u.shape[2] !== H)
    fail(OP, `u must have shape ${fmtShape([B, T, H])}, got ${fmtShape(u.shape)}`);
  const c = tauConfigFor(backend, o, software);
  const w = Math.min(a.window, T);
  const Tp = T - w;
  const E0 = Math.min(Math.floor(a.budget), Tp);
  const Ls = Math.max(Tp, 1);
  const Ss = Math.max(Tp - c.cap, 1);
  const BH = B * H;
  const [tau, selp, selu, nsel, scr] = backend.runKernelTensors({
    name: 'sparsek_attention_tau',
    code: cachedWGSL('sparsek-attn-tau', [c], () => sparsekTauWGSL(c)),
    inputs: [{ name: 'u', data: u }],
    outputs: [
      { name: 'tau', shape: [B, H, T], dtype: 'float32' },
      { name: 'selp', shape: [BH * Ls], dtype: 'uint32' },
      { name: 'selu', shape: [BH * Ls], dtype: 'float32' },
      { name: 'nsel_out', shape: [BH], dtype: 'uint32' },
      { name: 'scr', shape: [BH * Ss], dtype: 'float32' },
    ],
    uniforms: { u32: { T, H, w, Tp, E0, Ls, Ss }, f32: { kk: a.budget } },
    workgroups: BH,
  });
  scr.dispose();
  return { tau, selp, selu, nsel, Ls };
}

/**
 * The forward: `o [B,T,H,D]`, the natural-log normaliser `lse [B,H,T]` and the thresholds
 * `tau [B,H,T]` (−3.0e38 for queries whose prefix is empty or has ≤ k entries; NaN from the first
 * projection that sees a non-finite score on). `overrides` pick kernel configurations (tests).
 */
export function sparsekAttnForwardWebGPU(
  backend: WebGPUBackend,
  t: SkForwardInputs,
  a: SkAttrs,
  overrides: SkForwardOverrides = {},
): { o: Tensor; lse: Tensor; tau: Tensor } {
  const { B, T, H, D } = a.dims;
  for (const name of ['q', 'k', 'v'] as const) {
    checkF32(name, t[name], backend);
    const s = t[name].shape;
    if (s.length !== 4 || s[0] !== B || s[1] !== T || s[2] !== H || s[3] !== D)
      fail(OP, `${name} must have shape ${fmtShape([B, T, H, D])}, got ${fmtShape(s)}`);
  }
  const lim = backend.device.limits;
  if (lim.maxStorageBuffersPerShaderStage < 9)
    fail(
      OP,
      `the WebGPU device allows ${lim.maxStorageBuffersPerShaderStage} storage buffers per stage; the forward needs 9 (use impl: 'reference')`,
    );
  const software = overrides.software ?? backend.software;
  const th = sparsekTauWebGPU(backend, t.u, a, overrides.tau, software);
  const kd = software ? kernelD(backend, D) : D;
  const tiles = fwdConfigFor(backend, kd, overrides.fwd, software);
  const nqb = Math.ceil(T / tiles.bq);
  if (B * H > 65535 || nqb > 65535)
    fail(OP, `B·H = ${B * H} and ⌈T/${tiles.bq}⌉ = ${nqb} must each be at most 65535 (one workgroup per query block and head)`);
  const spec: SkFwdSpec = { D: kd, dynamic: software, gate: a.gate, tiles };
  const temps: Tensor[] = [];
  const inputs: KernelInput[] = [
    rowInput('q', t.q, spec, temps),
    rowInput('k', t.k, spec, temps),
    rowInput('v', t.v, spec, temps),
    { name: 'tau', data: th.tau },
    { name: 'selp', data: th.selp },
    { name: 'selu', data: th.selu },
    { name: 'nsel', data: th.nsel },
  ];
  const [o, lse] = backend.runKernelTensors({
    name: 'sparsek_attention_forward',
    code: cachedWGSL('sparsek-attn-fwd', [spec], () => sparsekForwardWGSL(spec)),
    inputs,
    outputs: [
      { name: 'o', shape: [B, T, H, D], dtype: 'float32', elem: rowElem(spec) },
      { name: 'lse', shape: [B, H, T], dtype: 'float32' },
    ],
    uniforms: {
      u32: { T, H, w: Math.min(a.window, T), Ls: th.Ls, Dr: D, loopDV: Math.ceil(D / 4) },
      f32: { scale2: a.scale * Math.LOG2E },
    },
    workgroups: [nqb, B * H],
  });
  for (const x of [...temps, th.selp, th.selu, th.nsel]) x.dispose();
  return { o, lse, tau: th.tau };
}
