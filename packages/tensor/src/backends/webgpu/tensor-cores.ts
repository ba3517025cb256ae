/**
 * Tensor cores from WGSL: which adapters offer f16 subgroup matrices, and the Dawn toggles that
 * unlock them. On NVIDIA drivers before 615.71 Dawn hides `shader-f16` (and with it the f16
 * subgroup-matrix configurations) over conformance failures unless `vulkan_enable_f16_on_nvidia`
 * is set; `chromium-experimental-subgroup-matrix` needs `allow_unsafe_apis`. foxgate sets both
 * only when asked (`initWebGPU({ precision: 'high' })` or `tensorCores: true`) and checks every
 * f16 kernel on the hardware itself (scripts/gpu/check-matmul-high.ts).
 */

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';
export const TENSOR_CORE_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] as const;

/**
 * `flags` with `features` added to its `enable-dawn-features=` flag (or `disable-dawn-features=`;
 * one comma-separated flag: Dawn keeps only the last of repeated keys), without duplicates.
 */
export function withDawnFeatures(flags: readonly string[], features: readonly string[], which: 'enable' | 'disable' = 'enable'): string[] {
  const key = `${which}-dawn-features=`;
  const existing = flags.filter((f) => f.startsWith(key)).flatMap((f) => f.slice(key.length).split(','));
  const merged = [...new Set([...existing, ...features].map((f) => f.trim()).filter((f) => f))];
  return [...flags.filter((f) => !f.startsWith(key)), `${key}${merged.join(',')}`];
}

/** One subgroup-matrix configuration as the adapter lists it. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** `f16→f32 16x16x16` */
export function formatConfig(c: SubgroupMatrixConfig): string {
  return `${c.componentType}→${c.resultComponentType} ${c.M}x${c.N}x${c.K}`;
}

/** The adapter's subgroup-matrix configurations (empty when it lists none). */
export function subgroupMatrixConfigs(info: GPUAdapterInfo): SubgroupMatrixConfig[] {
  const list = (info as GPUAdapterInfo & { subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig> }).subgroupMatrixConfigs;
  if (!list) return [];
  return [...list].map((c) => ({
    componentType: String(c.componentType),
    resultComponentType: String(c.resultComponentType),
    M: Number(c.M),
    N: Number(c.N),
    K: Number(c.K),
  }));
}

/**
 * Whether the 'high' matmul can run on the tensor cores: the device has `shader-f16`,
 * `subgroups` and the subgroup-matrix feature, lists f16→f32 at 16×16×16, and its subgroups are
 * exactly 32 wide (the kernel maps subgroups to invocation ranges of 32). Returns the reason when not.
 */
export function tensorCoreSupport(
  deviceFeatures: readonly string[],
  configs: readonly SubgroupMatrixConfig[],
  subgroupMinSize: number | undefined,
  subgroupMaxSize: number | undefined,
): { ok: true } | { ok: false; reason: string } {
  for (const f of ['shader-f16', 'subgroups', SUBGROUP_MATRIX_FEATURE])
    if (!deviceFeatures.includes(f)) return { ok: false, reason: `the device has no '${f}'` };
  if (!configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16))
    return { ok: false, reason: 'the adapter lists no f16→f32 16x16x16 subgroup matrix' };
  if (subgroupMinSize !== 32 || subgroupMaxSize !== 32)
    return { ok: false, reason: `subgroup size ${subgroupMinSize}..${subgroupMaxSize}, the kernel needs exactly 32` };
  return { ok: true };
}
