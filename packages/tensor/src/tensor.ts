import type { Backend, Storage, View } from './backend.js';
import type { DType, TypedArray } from './dtype.js';
import { fail, fmtShape } from './errors.js';
import { trackTensor, untrackTensor } from './memory.js';
import * as ops from './ops/index.js';
import type { MatmulOptions } from './precision.js';
import { contiguousStrides, isContiguous, type Shape, sizeOf } from './shape.js';

export type NestedArray = number | boolean | NestedArray[];
type Operand = Tensor | number;

/**
 * An n-dimensional array on one backend: dtype, shape, strides and offset over a shared storage,
 * so views (reshape, permute, slice, expand) never copy. Ops are synchronous and only queue
 * work; reading values (`data`, `toArray`, `item`) is asynchronous and is the only thing that
 * waits for the device.
 */
export class Tensor implements View {
  /** @internal marker used to find tensors inside parameter trees. */
  readonly __isFoxgateTensor = true;
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly size: number;
  #disposed = false;

  /** @internal Use the creation functions (`tensor`, `zeros`, ...) instead. */
  constructor(
    readonly backend: Backend,
    readonly storage: Storage,
    readonly dtype: DType,
    shape: Shape,
    strides?: readonly number[],
    readonly offset = 0,
  ) {
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.size = sizeOf(shape);
    trackTensor(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.#disposed;
  }
  get isContiguous(): boolean {
    return this.offset === 0 && isContiguous(this.shape, this.strides);
  }

  /** Throws if the tensor was disposed; every op calls it on its inputs. */
  assertAlive(op: string): this {
    if (this.#disposed) fail(op, `tensor ${this.dtype}${fmtShape(this.shape)} was used after dispose()`);
    return this;
  }

  /** Releases this tensor's reference to its storage. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    untrackTensor(this);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- readback ------------------------------------------------------------------------------
  /** The elements in row-major order (bool as 0/1 bytes). */
  async data(): Promise<TypedArray> {
    this.assertAlive('data');
    if (this.isContiguous) return this.backend.read(this.storage, this.dtype, this.size);
    using c = ops.contiguous(this);
    // awaited: `using` frees c when this function returns, which must come after the read
    return await this.backend.read(c.storage, c.dtype, c.size);
  }
  /** Synchronous `data()`; only backends that can read synchronously (CPU) support it. */
  dataSync(): TypedArray {
    this.assertAlive('dataSync');
    if (!this.backend.readSync) fail('dataSync', `the ${this.backend.name} backend cannot read synchronously; use await t.data()`);
    if (this.isContiguous) return this.backend.readSync(this.storage, this.dtype, this.size);
    using c = ops.contiguous(this);
    return this.backend.readSync(c.storage, c.dtype, c.size);
  }
  /** Nested JS arrays (booleans for bool tensors). */
  async toArray(): Promise<NestedArray> {
    return nest(await this.data(), this.shape, this.dtype);
  }
  toArraySync(): NestedArray {
    return nest(this.dataSync(), this.shape, this.dtype);
  }
  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) fail('item', `needs a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return (await this.data())[0];
  }
  itemSync(): number {
    if (this.size !== 1) fail('itemSync', `needs a tensor with one element, got shape ${fmtShape(this.shape)}`);
    return this.dataSync()[0];
  }

  toString(): string {
    return `Tensor(${this.dtype}${fmtShape(this.shape)} on ${this.backend.name}${this.#disposed ? ', disposed' : ''})`;
  }

  // ---- method forms of the ops ---------------------------------------------------------------
  add(b: Operand): Tensor {
    return ops.add(this, b);
  }
  sub(b: Operand): Tensor {
    return ops.sub(this, b);
  }
  mul(b: Operand): Tensor {
    return ops.mul(this, b);
  }
  div(b: Operand): Tensor {
    return ops.div(this, b);
  }
  pow(b: Operand): Tensor {
    return ops.pow(this, b);
  }
  maximum(b: Operand): Tensor {
    return ops.maximum(this, b);
  }
  minimum(b: Operand): Tensor {
    return ops.minimum(this, b);
  }
  lt(b: Operand): Tensor {
    return ops.lt(this, b);
  }
  le(b: Operand): Tensor {
    return ops.le(this, b);
  }
  gt(b: Operand): Tensor {
    return ops.gt(this, b);
  }
  ge(b: Operand): Tensor {
    return ops.ge(this, b);
  }
  eq(b: Operand): Tensor {
    return ops.eq(this, b);
  }
  ne(b: Operand): Tensor {
    return ops.ne(this, b);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  silu(): Tensor {
    return ops.silu(this);
  }
  square(): Tensor {
    return ops.mul(this, this);
  }
  cast(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }
  sum(axes?: number | number[], keepdims = false): Tensor {
    return ops.sum(this, axes, keepdims);
  }
  mean(axes?: number | number[], keepdims = false): Tensor {
    return ops.mean(this, axes, keepdims);
  }
  max(axes?: number | number[], keepdims = false): Tensor {
    return ops.max(this, axes, keepdims);
  }
  min(axes?: number | number[], keepdims = false): Tensor {
    return ops.min(this, axes, keepdims);
  }
  argmax(axis = -1, keepdims = false): Tensor {
    return ops.argmax(this, axis, keepdims);
  }
  matmul(b: Tensor, opts?: MatmulOptions): Tensor {
    return ops.matmul(this, b, opts);
  }
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  permute(perm: readonly number[]): Tensor {
    return ops.permute(this, perm);
  }
  transpose(a = -2, b = -1): Tensor {
    return ops.transpose(this, a, b);
  }
  expand(shape: readonly number[]): Tensor {
    return ops.expand(this, shape);
  }
  squeeze(axes?: number | number[]): Tensor {
    return ops.squeeze(this, axes);
  }
  unsqueeze(axis: number): Tensor {
    return ops.unsqueeze(this, axis);
  }
  contiguous(): Tensor {
    return ops.contiguous(this);
  }
  flatten(): Tensor {
    return ops.reshape(this, [this.size]);
  }
}

function nest(data: TypedArray, shape: Shape, dtype: DType): NestedArray {
  const conv = dtype === 'bool' ? (v: number) => v !== 0 : (v: number) => v;
  if (shape.length === 0) return conv(data[0]);
  const build = (dim: number, off: number): NestedArray[] => {
    const n = shape[dim];
    const stride = sizeOf(shape.slice(dim + 1));
    const out: NestedArray[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = dim === shape.length - 1 ? conv(data[off + i]) : build(dim + 1, off + i * stride);
    return out;
  };
  return build(0, 0);
}
