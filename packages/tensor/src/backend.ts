import type { DType, TypedArray } from './dtype.js';
import type { MatmulOptions } from './precision.js';
import type { Shape } from './shape.js';

/** Opaque, backend-owned memory holding the elements of one or more tensors (views share it). */
export interface Storage {
  /** Bytes the backend holds for this storage (for memory statistics). */
  readonly byteLength: number;
}

/**
 * A strided view of a storage: what every kernel reads. Element (i0..in) lives at
 * `offset + Σ ik·strides[k]` (in elements). Strides may be 0 (broadcast) but never negative.
 * A `Tensor` is a View.
 */
export interface View {
  readonly storage: Storage;
  readonly dtype: DType;
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

export const UNARY_OPS = [
  'neg',
  'abs',
  'sign',
  'exp',
  'log',
  'log1p',
  'sqrt',
  'rsqrt',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'logsigmoid',
  'relu',
  'silu',
  'floor',
  'not',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

export const BINARY_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'maximum',
  'minimum',
  'lt',
  'le',
  'gt',
  'ge',
  'eq',
  'ne',
  'and',
  'or',
] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];
export const COMPARE_OPS: readonly BinaryOp[] = ['lt', 'le', 'gt', 'ge', 'eq', 'ne'];

export const REDUCE_OPS = ['sum', 'max', 'min', 'argmax'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

export type RandomKind = 'uniform' | 'normal' | 'bits';

/** Memory counters a backend reports in `memoryStats()`. */
export interface BackendMemory {
  /** Bytes held by live storages. */
  bytesInUse: number;
  /** Live storages. */
  storages: number;
  /** Bytes kept in the reuse pool (WebGPU), not in use. */
  pooledBytes?: number;
  /** Buffers kept in the pool. */
  pooledBuffers?: number;
  /** Buffers the device has allocated in total (pool + in use). */
  deviceBuffers?: number;
  /** Buffers created since the start (WebGPU; a steady-state loop keeps this flat). */
  buffersCreated?: number;
  /** Bytes of the buffers the device holds (in use and pooled; WebGPU). */
  deviceBytes?: number;
  /** The most bytes held by live storages at once since `resetPeakMemory()` (or since the start). */
  peakBytes?: number;
}

/**
 * The closed primitive set every backend implements. All kernels take strided views and return
 * a fresh, contiguous (row-major) storage of the documented shape; inputs are never modified.
 * The frontend (`ops/`) has already checked shapes and dtypes and resolved broadcasting, so
 * kernels may assume valid arguments.
 */
export interface Backend {
  readonly name: string;

  // ---- memory ------------------------------------------------------------------------------
  /** Copies host data into a new storage of `data.length` elements of `dtype`. */
  upload(data: TypedArray, dtype: DType): Storage;
  /** Reads `size` contiguous elements starting at element 0 (the frontend makes views contiguous first). */
  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray>;
  /** Synchronous read; backends that cannot (WebGPU) leave it undefined. */
  readSync?(storage: Storage, dtype: DType, size: number): TypedArray;
  /** Releases a storage (to a pool or to the system). Called exactly once per storage. */
  free(storage: Storage): void;
  memory(): BackendMemory;
  /** Starts a new peak of `memory().peakBytes` at the bytes in use now. */
  resetPeak?(): void;
  /**
   * Returns cached free memory (the WebGPU buffer pool) to the device; live tensors are kept.
   * Backends without a cache leave it undefined.
   */
  emptyCache?(): void;
  /** Waits until all queued work is done. */
  sync(): Promise<void>;

  // ---- primitives --------------------------------------------------------------------------
  /** A contiguous storage of `size` elements, all `value`. */
  fill(size: number, value: number, dtype: DType): Storage;
  /** Strided → contiguous copy of `x` (shape `x.shape`). */
  copy(x: View): Storage;
  /** Elementwise unary; `outDtype` is `x.dtype` except for `not` (bool). */
  unary(op: UnaryOp, x: View, outDtype: DType): Storage;
  /**
   * Elementwise binary over `outShape`; `a` and `b` are already broadcast views of `outShape`
   * (same rank, stride 0 on broadcast axes) and of the same dtype. Comparisons give `bool`.
   */
  binary(op: BinaryOp, a: View, b: View, outShape: Shape, outDtype: DType): Storage;
  /** `cond ? a : b`, all three already broadcast views of `outShape`; cond is bool. */
  where(cond: View, a: View, b: View, outShape: Shape): Storage;
  /** Converts elements to `dtype` (float→int truncates toward zero; →bool is `!= 0`). */
  cast(x: View, dtype: DType): Storage;
  /**
   * Reduces over the sorted `axes`; the result has `x.shape` without those axes.
   * `sum` of float32 must stay within 1e-5 relative on 1e6+ elements (tree/compensated sum);
   * `sum` of int32/uint32/bool gives int32 (bool, int32) or uint32. `argmax` takes exactly one
   * axis and gives int32 (first maximal index).
   */
  reduce(op: ReduceOp, x: View, axes: readonly number[]): Storage;
  /**
   * Batched matmul: `a: [...batch, M, K]`, `b: [...batch, K, N]`, same rank ≥ 2 and equal batch
   * dims (broadcast batch dims have stride 0); any strides, so transposed operands are views.
   * Result `[...batch, M, N]`. `opts.precision` ('highest' | 'high') may lower the product's
   * operand precision where the backend has a faster path (WebGPU tensor cores); others ignore it.
   */
  matmul(a: View, b: View, opts?: MatmulOptions): Storage;
  /** Inclusive cumulative sum along `axis`; `reverse` sums from the end. */
  cumsum(x: View, axis: number, reverse: boolean): Storage;
  /**
   * `exp(x − max) / Σ exp(x − max)` along `axis` (the row max is subtracted first, so large
   * magnitudes do not overflow); result shape `x.shape`, dtype `x.dtype`. float32 (and float64
   * on the CPU) only. Any strides. Same special values as the composed max/sub/exp/sum/div:
   * a row holding NaN or +Infinity, or made only of −Infinity, is all NaN; other −Infinity
   * entries give 0. Empty tensors give empty results.
   */
  softmax(x: View, axis: number): Storage;
  /**
   * `take`: `out[i..., j..., k...] = x[i..., index[j...], k...]` along `axis`; result shape
   * `x.shape[:axis] + index.shape + x.shape[axis+1:]`. `index` is int32 and in range.
   */
  take(x: View, index: View, axis: number): Storage;
  /**
   * The adjoint of `take`: a zero tensor of `shape` to which each `src` element is added at its
   * `take` position (repeated indices accumulate). `src.shape` is the `take` result shape.
   */
  takeAdjoint(shape: Shape, index: View, src: View, axis: number): Storage;
  /** Concatenates views (same dtype and rank, equal except on `axis`) along `axis`. */
  concat(xs: readonly View[], axis: number, outShape: Shape): Storage;
  /**
   * Counter-based random numbers (Philox-4x32-10, see `rng/philox.ts`): element i uses counter
   * `(i div 4, 0, 0, 0)`... exactly as `philoxStream` defines, so every backend gives the same
   * bits. `uniform`/`normal` give float32 or float64; `bits` gives uint32.
   */
  random(kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): Storage;
}
