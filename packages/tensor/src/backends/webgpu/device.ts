import { FoxgateError } from '../../errors.js';
import { checkPrecision, type MatmulPrecision } from '../../precision.js';
import { registerBackend, unregisterBackend } from '../../registry.js';
import { type AdapterDescription, WebGPUBackend } from './backend.js';
import { Engine } from './engine.js';
import { TIMESTAMP_QUANTIZATION_TOGGLE } from './profiler.js';
import {
  formatConfig,
  SUBGROUP_MATRIX_FEATURE,
  subgroupMatrixConfigs,
  TENSOR_CORE_TOGGLES,
  tensorCoreSupport,
  withDawnFeatures,
} from './tensor-cores.js';

/**
 * Device setup. In Node the `webgpu` package (Dawn) provides the GPU object; it is imported
 * dynamically so browser bundles never pull it in. Its `create()` result must stay referenced
 * for as long as any device made from it lives (Dawn frees its instance otherwise), so it is
 * cached at module level.
 */

export interface InitWebGPUOptions {
  /** Substring (case-insensitive) of the adapter's description, vendor, architecture or device; default: env FOXGATE_ADAPTER. */
  adapter?: string;
  powerPreference?: GPUPowerPreference;
  /** Per-dispatch error scopes naming the failing kernel exactly (slow); default: env FOXGATE_DEBUG=1. */
  debug?: boolean;
  /**
   * Extra Dawn flags for `create()` in Node (e.g. 'enable-dawn-features=disable_robustness');
   * default: env FOXGATE_DAWN_FLAGS (space-separated). Used only when the instance is first created.
   */
  dawnFlags?: string[];
  /** Dispatches per submitted command buffer (default 64). */
  batchSize?: number;
  /**
   * Bytes of freed buffers the pool keeps at least (default 2 GiB); it keeps up to the most bytes
   * ever live at once when that is larger, so steady loops reuse their buffers.
   */
  maxPooledBytes?: number;
  /**
   * Precision of float32 matmuls (default 'highest': f32 products). 'high' multiplies f16
   * operands with f32 accumulation on the tensor cores where the adapter offers f16 subgroup
   * matrices, f32 elsewhere; `matmul(a, b, { precision })` overrides it per call. Given again
   * while a device lives, it changes that backend's precision.
   */
  precision?: MatmulPrecision;
  /**
   * Ask Dawn for f16 and subgroup matrices (the toggles `allow_unsafe_apis,
   * vulkan_enable_f16_on_nvidia`, merged into `dawnFlags`); default: true when `precision` is
   * 'high'. Like `dawnFlags`, only used when the instance is first created.
   */
  tensorCores?: boolean;
  /**
   * Unrounded timestamps for `backend.startProfile()` (Dawn's `timestamp_quantization` toggle off,
   * merged into `dawnFlags`); default false. Like `dawnFlags`, only used when the instance is first created.
   */
  profiling?: boolean;
}

const WANTED_FEATURES = ['subgroups', 'timestamp-query', 'shader-f16', SUBGROUP_MATRIX_FEATURE] as const;
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
] as const;
const REPORTED_LIMITS = [
  ...RAISED_LIMITS,
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'minUniformBufferOffsetAlignment',
  'minStorageBufferOffsetAlignment',
] as const;

const LAVAPIPE_HINT =
  'for a software adapter install Mesa lavapipe (Debian: `apt-get install -t bookworm-backports mesa-vulkan-drivers`; bookworm’s own 22.x is too old for Dawn) and set XDG_RUNTIME_DIR (e.g. export XDG_RUNTIME_DIR=/tmp)';

/** The navigator-like GPU object of Node's `webgpu` package; kept for the process lifetime. */
let nodeGpu: GPU | null = null;
let nodeGlobals: Record<string, unknown> = {};
let nodeGpuFlags: string[] | null = null;
let current: WebGPUBackend | null = null;

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name];
}

async function getGpu(flags: string[]): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) {
    if (nav?.gpu) return nav.gpu;
    throw new FoxgateError('initWebGPU: this browser has no WebGPU (navigator.gpu is undefined)');
  }
  if (nodeGpu) return nodeGpu;
  let mod: { create: (flags: string[]) => GPU; globals?: Record<string, unknown> };
  try {
    const name = 'webgpu';
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    throw new FoxgateError(
      `initWebGPU: the 'webgpu' package (Dawn for Node) could not be loaded (${(e as Error).message.split('\n')[0]}); install it with \`pnpm add webgpu@0.6.2\` (an optional dependency of @foxgate/tensor); ${LAVAPIPE_HINT}`,
    );
  }
  nodeGpu = mod.create(flags);
  nodeGlobals = mod.globals ?? {};
  nodeGpuFlags = flags;
  return nodeGpu;
}

/**
 * The GPU object foxgate uses (Node: the `webgpu` package's instance, shared so that other
 * WebGPU libraries in the same process, e.g. tfjs-backend-webgpu for comparisons, can use it as
 * `navigator.gpu`) and, in Node, the WebGPU globals (`GPUBufferUsage`, ...) that package defines.
 */
export async function webgpuInstance(dawnFlags: string[] = []): Promise<{ gpu: GPU; globals: Record<string, unknown> }> {
  const gpu = await getGpu(dawnFlags);
  return { gpu, globals: nodeGlobals };
}

function describe(a: GPUAdapter): string {
  const i = a.info;
  return [i.description, i.vendor, i.architecture, i.device].filter((s) => s).join(' / ') || '(unnamed adapter)';
}

function matches(a: GPUAdapter, want: string): boolean {
  const i = a.info;
  const w = want.toLowerCase();
  return [i.description, i.vendor, i.architecture, i.device].some((s) => (s ?? '').toLowerCase().includes(w));
}

/**
 * Initialises the WebGPU backend: picks an adapter (by `opts.adapter` / FOXGATE_ADAPTER when
 * given), requests the useful features and the adapter's maximal limits, and registers the
 * backend as 'webgpu'. Calling it again while a device lives returns the same backend.
 */
export async function initWebGPU(opts: InitWebGPUOptions = {}): Promise<WebGPUBackend> {
  const precision = checkPrecision('initWebGPU', 'opts.precision', opts.precision);
  if (opts.tensorCores !== undefined && typeof opts.tensorCores !== 'boolean')
    throw new FoxgateError(`initWebGPU: opts.tensorCores must be a boolean, got ${String(opts.tensorCores)}`);
  if (current && !current.isDestroyed) {
    if (precision) current.setPrecision(precision);
    return current;
  }
  const envFlags = env('FOXGATE_DAWN_FLAGS');
  let dawnFlags = opts.dawnFlags ?? (envFlags ? envFlags.split(/\s+/).filter((f) => f) : undefined);
  if (opts.tensorCores ?? precision === 'high') dawnFlags = withDawnFeatures(dawnFlags ?? [], TENSOR_CORE_TOGGLES);
  if (opts.profiling) dawnFlags = withDawnFeatures(dawnFlags ?? [], [TIMESTAMP_QUANTIZATION_TOGGLE], 'disable');
  const gpu = await getGpu(dawnFlags ?? []);
  if (dawnFlags && nodeGpuFlags && dawnFlags.join(',') !== nodeGpuFlags.join(',')) {
    // flags only apply to a fresh instance; say so instead of silently ignoring them
    console.warn(
      `initWebGPU: Dawn flags ${JSON.stringify(dawnFlags)} ignored; the instance was created with ${JSON.stringify(nodeGpuFlags)}`,
    );
  }
  const want = opts.adapter ?? env('FOXGATE_ADAPTER');
  const prefs: (GPUPowerPreference | undefined)[] = opts.powerPreference
    ? [opts.powerPreference]
    : [undefined, 'high-performance', 'low-power'];
  const found: GPUAdapter[] = [];
  for (const powerPreference of prefs) {
    const a = await gpu.requestAdapter(powerPreference ? { powerPreference } : undefined);
    if (a && !found.some((f) => describe(f) === describe(a))) found.push(a);
  }
  if (found.length === 0) {
    throw new FoxgateError(
      `initWebGPU: no WebGPU adapter (requestAdapter() returned null: no Vulkan/Metal/D3D12 driver was found); ${LAVAPIPE_HINT}`,
    );
  }
  const adapter = want ? found.find((a) => matches(a, want)) : found[0];
  if (!adapter) {
    throw new FoxgateError(
      `initWebGPU: no adapter matches '${want}' (from ${opts.adapter ? 'opts.adapter' : 'FOXGATE_ADAPTER'}); found: ${found.map(describe).join('; ')}`,
    );
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const l of RAISED_LIMITS) requiredLimits[l] = adapter.limits[l];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'foxgate' });
  } catch (e) {
    throw new FoxgateError(`initWebGPU: requestDevice failed on ${describe(adapter)}: ${(e as Error).message}`);
  }
  const debug = opts.debug ?? env('FOXGATE_DEBUG') === '1';
  const engine = new Engine(device, { debug, batchSize: opts.batchSize, maxPooledBytes: opts.maxPooledBytes });
  const info = describeDevice(adapter, device, gpu);
  const backend = new WebGPUBackend(engine, info, () => {
    if (current === backend) current = null;
    unregisterBackend('webgpu');
  });
  if (precision) backend.setPrecision(precision);
  current = backend;
  registerBackend(backend);
  return backend;
}

function describeDevice(adapter: GPUAdapter, device: GPUDevice, gpu: GPU): AdapterDescription {
  const i = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const limits: Record<string, number> = {};
  for (const l of REPORTED_LIMITS) limits[l] = device.limits[l];
  const wgsl = (gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  const features = [...device.features].filter((f) => (WANTED_FEATURES as readonly string[]).includes(f)).sort();
  const configs = subgroupMatrixConfigs(adapter.info);
  const tc = tensorCoreSupport(features, configs, i.subgroupMinSize, i.subgroupMaxSize);
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    features,
    adapterFeatures: [...adapter.features].sort(),
    wgslFeatures: wgsl ? [...wgsl].sort() : [],
    subgroupMinSize: i.subgroupMinSize,
    subgroupMaxSize: i.subgroupMaxSize,
    limits,
    subgroupMatrixConfigs: configs.map(formatConfig),
    tensorCores: tc.ok ? { available: true } : { available: false, reason: tc.reason },
  };
}

/** Adapter/device facts of the live backend (for `foxgate info`), or null when none is initialised. */
export function describeAdapter(backend: WebGPUBackend | null = current): AdapterDescription | null {
  return backend ? backend.info : null;
}

/** Destroys the backend's device and drops its references so the process can exit. */
export async function destroyWebGPU(backend: WebGPUBackend | null = current): Promise<void> {
  if (backend) await backend.destroy();
}

export type WebGPUProbe = { available: true; adapter: AdapterDescription } | { available: false; reason: string };

/**
 * Whether WebGPU works here, and on what (for `foxgate info`). Uses the live backend when there
 * is one; otherwise initialises a device, describes it and destroys it again.
 */
export async function probeWebGPU(opts: InitWebGPUOptions = {}): Promise<WebGPUProbe> {
  if (current && !current.isDestroyed) return { available: true, adapter: current.info };
  try {
    const b = await initWebGPU(opts);
    const adapter = b.info;
    await b.destroy();
    return { available: true, adapter };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}
