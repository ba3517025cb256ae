import type { Backend, BackendMemory, BinaryOp, RandomKind, ReduceOp, Storage, UnaryOp, View } from '../../backend.js';
import type { DType, TypedArray } from '../../dtype.js';
import { fail } from '../../errors.js';
import { checkPrecision, type MatmulOptions, type MatmulPrecision } from '../../precision.js';
import type { Shape } from '../../shape.js';
import { Tensor } from '../../tensor.js';
import type { Engine, GpuStorage } from './engine.js';
import { checkGpuDType, gpuOf } from './kernels/common.js';
import * as ew from './kernels/elementwise.js';
import { take, takeAdjoint } from './kernels/indexing.js';
import { matmul } from './kernels/matmul.js';
import { matmulHigh } from './kernels/matmul-sgmat.js';
import { random } from './kernels/random.js';
import { reduce } from './kernels/reduce.js';
import { cumsum } from './kernels/scan.js';
import { softmax } from './kernels/softmax.js';
import { type DispatchProfile, type ProfileOptions, startProfile, stopProfile } from './profiler.js';
import { type KernelSpec, runKernel } from './run-kernel.js';

/** What `describeAdapter()` / `foxgate info` reports about the device. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Features enabled on the device (of those foxgate requests). */
  features: string[];
  /** Every feature the adapter offers. */
  adapterFeatures: string[];
  /** WGSL language features of the instance. */
  wgslFeatures: string[];
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  limits: Record<string, number>;
  /** Subgroup-matrix configurations the adapter lists (`f16→f32 16x16x16`, ...). */
  subgroupMatrixConfigs?: string[];
  /** Whether precision 'high' runs on the tensor cores here, or why not. */
  tensorCores?: { available: boolean; reason?: string };
}

/**
 * The WebGPU backend: every primitive of `Backend` as WGSL kernels (no CPU fallback). Create it
 * with `initWebGPU()`; release it with `destroy()` (or `destroyWebGPU`).
 */
export class WebGPUBackend implements Backend {
  readonly name = 'webgpu';
  private readonly subgroupReduce: boolean;

  constructor(
    /** The execution engine (buffer pool, pipeline cache, batching); for kernels and tests. */
    readonly engine: Engine,
    readonly info: AdapterDescription,
    private readonly onDestroy: () => void,
  ) {
    this.subgroupReduce = info.features.includes('subgroups') && info.wgslFeatures.includes('subgroup_id');
    this.tensorCores = info.tensorCores?.available === true;
    this.software = info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.description} ${info.device}`);
  }

  /** A CPU (software) adapter such as lavapipe: kernels skip compile-heavy variants. */
  readonly software: boolean;
  /** Whether 'high' products run on the tensor cores (f16 subgroup matrices); else they are f32. */
  readonly tensorCores: boolean;
  #precision: MatmulPrecision = 'highest';

  /** Default precision of float32 matmuls on this backend ('highest' unless set). */
  get precision(): MatmulPrecision {
    return this.#precision;
  }
  /** Sets the default matmul precision (`matmul(a, b, { precision })` overrides it per call). */
  setPrecision(p: MatmulPrecision): void {
    this.#precision = checkPrecision('setPrecision', 'precision', p) ?? 'highest';
  }

  get device(): GPUDevice {
    return this.engine.device;
  }
  /** Device features foxgate enabled (`subgroups`, `timestamp-query`, `shader-f16`). */
  get features(): ReadonlySet<string> {
    return new Set(this.info.features);
  }

  // ---- memory ------------------------------------------------------------------------------
  upload(data: TypedArray, dtype: DType): Storage {
    checkGpuDType('upload', dtype);
    const n = data.length;
    const s = this.engine.alloc(n * 4);
    let words: ArrayBufferView;
    // plain loops / typed-array constructors: `TypedArray.from(x, mapFn)` costs ~200 ns per element
    if (dtype === 'bool') {
      const w = new Uint32Array(n);
      for (let i = 0; i < n; i++) w[i] = data[i] ? 1 : 0;
      words = w;
    } else if (dtype === 'float32') words = data instanceof Float32Array ? data : new Float32Array(data as ArrayLike<number>);
    else if (dtype === 'int32') words = data instanceof Int32Array ? data : new Int32Array(data as ArrayLike<number>);
    else words = data instanceof Uint32Array ? data : new Uint32Array(data as ArrayLike<number>);
    this.engine.write(s.buffer, words);
    return s;
  }

  async read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    checkGpuDType('read', dtype);
    const s = gpuOf('read', storage);
    const bytes = await this.engine.read(s.buffer, size * 4);
    switch (dtype) {
      case 'float32':
        return new Float32Array(bytes);
      case 'int32':
        return new Int32Array(bytes);
      case 'uint32':
        return new Uint32Array(bytes);
      default: {
        const words = new Uint32Array(bytes);
        const out = new Uint8Array(words.length);
        for (let i = 0; i < words.length; i++) out[i] = words[i] ? 1 : 0;
        return out;
      }
    }
  }

  free(storage: Storage): void {
    this.engine.free(storage as GpuStorage);
  }

  memory(): BackendMemory {
    const e = this.engine;
    return {
      bytesInUse: e.bytesInUse,
      storages: e.storages,
      pooledBytes: e.pool.pooledBytes,
      pooledBuffers: e.pool.pooledBuffers,
      deviceBuffers: e.pool.deviceBuffers,
      buffersCreated: e.pool.created,
      deviceBytes: e.pool.deviceBytes,
      peakBytes: e.peakSinceReset,
    };
  }

  resetPeak(): void {
    this.engine.resetPeak();
  }

  /**
   * Times every dispatch from now on with timestamp queries, until `stopProfile()` (see
   * `profiler.ts`; `initWebGPU({ profiling: true })` for unrounded timestamps). Off by default.
   * `{ detail: true }` keys the times by kernel name and detail (a matmul's shape, layouts and tiles).
   */
  startProfile(opts: ProfileOptions = {}): void {
    startProfile(this.engine, this.engine.batchSize, opts);
  }

  /** Ends the profile: GPU milliseconds per kernel name and per family (attention, matmul, other). */
  stopProfile(): Promise<DispatchProfile> {
    return stopProfile(this.engine);
  }

  sync(): Promise<void> {
    return this.engine.sync();
  }

  emptyCache(): void {
    this.engine.emptyCache();
  }

  // ---- primitives --------------------------------------------------------------------------
  fill(size: number, value: number, dtype: DType): Storage {
    checkGpuDType('fill', dtype);
    return ew.fill(this.engine, size, value, dtype);
  }
  copy(x: View): Storage {
    return ew.copy(this.engine, x);
  }
  unary(op: UnaryOp, x: View, outDtype: DType): Storage {
    return ew.unary(this.engine, op, x, outDtype);
  }
  binary(op: BinaryOp, a: View, b: View, outShape: Shape, outDtype: DType): Storage {
    return ew.binary(this.engine, op, a, b, outShape, outDtype);
  }
  where(cond: View, a: View, b: View, outShape: Shape): Storage {
    return ew.where(this.engine, cond, a, b, outShape);
  }
  cast(x: View, dtype: DType): Storage {
    checkGpuDType('cast', dtype);
    return ew.cast(this.engine, x, dtype);
  }
  reduce(op: ReduceOp, x: View, axes: readonly number[]): Storage {
    if (op === 'argmax' && axes.length !== 1) fail('argmax', `takes exactly one axis, got [${axes.join(',')}]`);
    return reduce(this.engine, op, x, axes, this.subgroupReduce);
  }
  matmul(a: View, b: View, opts?: MatmulOptions): Storage {
    if (a.dtype !== 'float32' || b.dtype !== 'float32') {
      checkGpuDType('matmul', a.dtype === 'float32' ? b.dtype : a.dtype);
      fail('matmul', `the webgpu backend multiplies float32 only, got ${a.dtype} and ${b.dtype}`);
    }
    const precision = checkPrecision('matmul', 'opts.precision', opts?.precision) ?? this.#precision;
    if (precision === 'high' && this.tensorCores) return matmulHigh(this.engine, a, b);
    return matmul(this.engine, a, b, this.device.limits.maxComputeWorkgroupStorageSize, this.software);
  }
  cumsum(x: View, axis: number, reverse: boolean): Storage {
    return cumsum(this.engine, x, axis, reverse);
  }
  softmax(x: View, axis: number): Storage {
    return softmax(this.engine, x, axis, this.subgroupReduce);
  }
  take(x: View, index: View, axis: number): Storage {
    return take(this.engine, x, index, axis);
  }
  takeAdjoint(shape: Shape, index: View, src: View, axis: number): Storage {
    return takeAdjoint(this.engine, shape, index, src, axis);
  }
  concat(xs: readonly View[], axis: number, outShape: Shape): Storage {
    if (xs.length) checkGpuDType('concat', xs[0].dtype);
    return ew.concat(this.engine, xs, axis, outShape);
  }
  random(kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): Storage {
    return random(this.engine, kind, key, size, dtype);
  }

  // ---- custom kernels ----------------------------------------------------------------------
  /** Launches a custom WGSL kernel; see the API comment in `run-kernel.ts`. */
  runKernel(spec: KernelSpec): Storage[] {
    return runKernel(this.engine, spec, this.features);
  }

  /**
   * `runKernel` whose outputs are returned as tensors of the given shapes (each output's
   * `size` is the product of its shape).
   */
  runKernelTensors(
    spec: Omit<KernelSpec, 'outputs'> & { outputs: { name: string; shape: Shape; dtype: DType; zero?: boolean; elem?: string }[] },
  ): Tensor[] {
    const outputs = spec.outputs.map((o) => ({
      name: o.name,
      size: o.shape.reduce((n, d) => n * d, 1),
      dtype: o.dtype,
      zero: o.zero,
      elem: o.elem,
    }));
    const storages = runKernel(this.engine, { ...spec, outputs }, this.features);
    return storages.map((s, i) => new Tensor(this, s, spec.outputs[i].dtype, spec.outputs[i].shape));
  }

  /**
   * A deferred device-side check (like a CUDA device assert): `flag` is a one-element tensor on
   * this backend computed by the caller's kernels, nonzero (or NaN) when its input was invalid.
   * Nothing waits now; the flag is read together with the next readback of any tensor on this
   * backend (or at `sync()`), which then throws the FoxgateError `op: message` instead of
   * returning. Each check is read once; the flag's value is taken at this call (dispose the
   * flag when you like).
   */
  checkLater(flag: Tensor, op: string, message: string): void {
    flag.assertAlive('checkLater');
    if (flag.backend !== this) fail('checkLater', `the flag lives on the ${flag.backend.name} backend, not on this webgpu backend`);
    this.engine.deviceChecks.add(flag, op, message);
  }

  /** Submits queued work now (ops submit in batches on their own; readback submits too). */
  flush(): void {
    this.engine.flush();
  }

  /** Waits for queued work, destroys the device and unregisters the backend. Idempotent. */
  async destroy(): Promise<void> {
    if (this.engine.destroyed) return;
    await this.engine.destroy();
    this.onDestroy();
  }

  get isDestroyed(): boolean {
    return this.engine.destroyed;
  }
}
