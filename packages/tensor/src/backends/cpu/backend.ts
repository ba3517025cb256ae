import type { Backend, BackendMemory, BinaryOp, RandomKind, ReduceOp, Storage, UnaryOp, View } from '../../backend.js';
import { arrayFor, type DType, type TypedArray } from '../../dtype.js';
import { philoxRandom } from '../../rng/philox.js';
import type { Shape } from '../../shape.js';
import { binary, cast, unary, where } from './elementwise.js';
import { concat, take, takeAdjoint } from './indexing.js';
import { gemmEngine, matmul } from './matmul.js';
import { reduce } from './reduce.js';
import { cumsum } from './scan.js';
import { softmax } from './softmax.js';
import { CpuStorage, dataOf, holds } from './storage.js';
import { copyOf } from './strided.js';

export interface CpuBackendOptions {
  /**
   * Use the WebAssembly SIMD matmul kernel where the engine has one (default true); false
   * forces the plain-JS kernel (slower; for comparisons and tests).
   */
  simd?: boolean;
}

/**
 * The CPU backend: storages are typed arrays (`bool` as 0/1 bytes), kernels are synchronous
 * loops over strided views, matmul is blocked with a SIMD micro-kernel. float32 results are
 * computed in doubles and rounded on store; int32/uint32 arithmetic wraps.
 */
export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly #simd: boolean;
  #bytes = 0;
  #peak = 0;
  #storages = 0;

  constructor(opts: CpuBackendOptions = {}) {
    this.#simd = opts.simd ?? true;
  }

  /** Which matmul micro-kernel float32 uses: 'wasm-simd-f32' or 'js'. */
  get matmulKernel(): string {
    return gemmEngine('float32', this.#simd).name;
  }

  #wrap(data: TypedArray): CpuStorage {
    this.#bytes += data.byteLength;
    if (this.#bytes > this.#peak) this.#peak = this.#bytes;
    this.#storages++;
    return new CpuStorage(data);
  }

  // ---- memory ------------------------------------------------------------------------------

  upload(data: TypedArray, dtype: DType): Storage {
    if (dtype === 'bool') {
      const out = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = data[i] !== 0 ? 1 : 0;
      return this.#wrap(out);
    }
    if (holds(data, dtype)) return this.#wrap(data.slice());
    const out = arrayFor(dtype, data.length);
    out.set(data);
    return this.#wrap(out);
  }

  read(storage: Storage, dtype: DType, size: number): Promise<TypedArray> {
    return Promise.resolve(this.readSync(storage, dtype, size));
  }

  readSync(storage: Storage, _dtype: DType, size: number): TypedArray {
    return dataOf('read', storage).slice(0, size);
  }

  free(storage: Storage): void {
    if (!(storage instanceof CpuStorage) || storage.freed) return;
    storage.freed = true;
    this.#bytes -= storage.byteLength;
    this.#storages--;
  }

  memory(): BackendMemory {
    return { bytesInUse: this.#bytes, storages: this.#storages, peakBytes: this.#peak };
  }

  resetPeak(): void {
    this.#peak = this.#bytes;
  }

  sync(): Promise<void> {
    return Promise.resolve();
  }

  // ---- primitives --------------------------------------------------------------------------

  fill(size: number, value: number, dtype: DType): Storage {
    const out = arrayFor(dtype, size);
    out.fill(dtype === 'bool' ? (value !== 0 ? 1 : 0) : value);
    return this.#wrap(out);
  }

  copy(x: View): Storage {
    return this.#wrap(copyOf('copy', x));
  }

  unary(op: UnaryOp, x: View, outDtype: DType): Storage {
    return this.#wrap(unary(op, x, outDtype));
  }

  binary(op: BinaryOp, a: View, b: View, outShape: Shape, outDtype: DType): Storage {
    return this.#wrap(binary(op, a, b, outShape, outDtype));
  }

  where(cond: View, a: View, b: View, outShape: Shape): Storage {
    return this.#wrap(where(cond, a, b, outShape));
  }

  cast(x: View, dtype: DType): Storage {
    return this.#wrap(cast(x, dtype));
  }

  reduce(op: ReduceOp, x: View, axes: readonly number[]): Storage {
    return this.#wrap(reduce(op, x, axes));
  }

  matmul(a: View, b: View): Storage {
    return this.#wrap(matmul(a, b, this.#simd));
  }

  cumsum(x: View, axis: number, reverse: boolean): Storage {
    return this.#wrap(cumsum(x, axis, reverse));
  }

  softmax(x: View, axis: number): Storage {
    return this.#wrap(softmax(x, axis));
  }

  take(x: View, index: View, axis: number): Storage {
    return this.#wrap(take(x, index, axis));
  }

  takeAdjoint(shape: Shape, index: View, src: View, axis: number): Storage {
    return this.#wrap(takeAdjoint(shape, index, src, axis));
  }

  concat(xs: readonly View[], axis: number, outShape: Shape): Storage {
    return this.#wrap(concat(xs, axis, outShape));
  }

  random(kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): Storage {
    return this.#wrap(philoxRandom(kind, key, size, dtype));
  }
}
