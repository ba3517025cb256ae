import { customOp } from '@foxgate/autograd';
import { type Backend, CpuBackend, fail, type Storage, type Tensor, tensor, type View, WebGPUBackend } from '@foxgate/tensor';

/**
 * The fused-op scaffold: what a fused attention op is.
 *
 * A fused op is declared once with `defineFusedOp`: its name, optional argument checks, the
 * composed `reference` (plain tensor ops, differentiated by autograd; the oracle of the tests and
 * the `impl: 'reference'` route), and one slot per backend with a forward and a backward kernel:
 *
 * - `cpu`: kernels on host arrays. The scaffold reads each input into a contiguous typed array of
 *   its float dtype, turns the arrays the kernel returns back into tensors, and hands the kernel
 *   a `gemm` on the CPU backend's matmul (WebAssembly SIMD where available).
 * - `webgpu`: kernels that dispatch WGSL on the `WebGPUBackend` (code generation helpers in
 *   `wgsl/`).
 *
 * Inputs are positional and may be `null` (an absent optional input: no forget gate, no ACP
 * threshold); kernels see the nulls where they were. Outputs are the result first, then any
 * statistics (`stats` names them; they get no gradient). Calling the op with `impl: 'fused'`
 * dispatches on the backend class of the first input: a backend without a slot is an error,
 * never a silent fallback to the `[T,T]` reference. The op records one autograd node whose VJP is
 * the slot's backward (`customOp`).
 */

export type FloatArray = Float32Array | Float64Array;

/** A tensor's values for a CPU kernel: contiguous, row-major, in the tensor's float dtype. */
export interface HostTensor {
  data: FloatArray;
  shape: readonly number[];
}

/**
 * A batch of strided matrices over a host array: element (n, r, c) at
 * `offset + n·batchStride + r·rowStride + c·colStride` (a transposed view swaps the strides).
 */
export interface HostMatrix {
  data: FloatArray;
  offset: number;
  batch: number;
  batchStride: number;
  rows: number;
  cols: number;
  rowStride: number;
  colStride: number;
}

/**
 * `a · b` per batch entry as a new row-major `[batch, a.rows, b.cols]` array: in float32 when both
 * operands are Float32Arrays (the result then is one too), else in float64. An array passed to
 * `gemm` must not change afterwards within the kernel call (it is uploaded once).
 */
export type Gemm = (a: HostMatrix, b: HostMatrix) => FloatArray;

export interface CpuContext {
  gemm: Gemm;
}

export interface CpuKernels<A> {
  forward(inputs: readonly (HostTensor | null)[], attrs: A, ctx: CpuContext): { outputs: HostTensor[]; saved?: HostTensor[] };
  /** Gradients of the inputs (null: none); entries for null inputs are ignored. */
  backward(
    gradOutputs: readonly (HostTensor | null)[],
    saved: readonly HostTensor[],
    inputs: readonly (HostTensor | null)[],
    outputs: readonly HostTensor[],
    attrs: A,
    ctx: CpuContext,
  ): readonly (HostTensor | null)[];
}

export interface WebGPUKernels<A> {
  forward(backend: WebGPUBackend, inputs: readonly (Tensor | null)[], attrs: A): { outputs: Tensor[]; saved?: Tensor[] };
  backward(
    backend: WebGPUBackend,
    gradOutputs: readonly (Tensor | null)[],
    saved: readonly Tensor[],
    inputs: readonly (Tensor | null)[],
    outputs: readonly Tensor[],
    attrs: A,
  ): readonly (Tensor | null)[];
}

export interface FusedOpSpec<A> {
  /** Names the op in errors (the public function's name). */
  name: string;
  /** Checks that every route needs, run before dispatch (the public function checks its own options). */
  validate?(inputs: readonly (Tensor | null)[], attrs: A): void;
  /** The composed implementation: the result, then the statistics. */
  reference(inputs: readonly (Tensor | null)[], attrs: A): Tensor[];
  cpu?: CpuKernels<A>;
  webgpu?: WebGPUKernels<A>;
  /** Names of the outputs after the result (documentation; they are never differentiated). */
  stats?: readonly string[];
}

export type Impl = 'fused' | 'reference';

/** `op(inputs, attrs, impl)` → `[result, ...stats]`. */
export interface FusedOp<A> {
  (inputs: readonly (Tensor | null)[], attrs: A, impl?: Impl): Tensor[];
  readonly opName: string;
  /** Backends with fused kernels. */
  readonly backends: readonly ('cpu' | 'webgpu')[];
}

type Slot = 'cpu' | 'webgpu';

/** The kernel slot a backend can run, by its class. */
function slotOf(b: Backend): Slot | null {
  if (b instanceof CpuBackend) return 'cpu';
  if (b instanceof WebGPUBackend) return 'webgpu';
  return null;
}

interface Packed<A> {
  attrs: A;
  /** Positions of the non-null inputs in the declared input list, and its length. */
  at: number[];
  n: number;
  slot: Slot;
}

function unpack<T>(xs: readonly T[], at: readonly number[], n: number): (T | null)[] {
  const full: (T | null)[] = new Array(n).fill(null);
  at.forEach((pos, i) => {
    full[pos] = xs[i];
  });
  return full;
}

export function defineFusedOp<A>(spec: FusedOpSpec<A>): FusedOp<A> {
  const { name } = spec;
  const backends = (['cpu', 'webgpu'] as const).filter((s) => spec[s] !== undefined);
  const node = customOp<Packed<A>>({
    name,
    forward(inputs, p) {
      const full = unpack(inputs, p.at, p.n);
      if (p.slot === 'webgpu') {
        const backend = inputs[0].backend as Backend;
        if (!(backend instanceof WebGPUBackend)) fail(name, 'internal: webgpu slot on another backend');
        const r = (spec.webgpu as WebGPUKernels<A>).forward(backend, full, p.attrs);
        return { outputs: r.outputs, saved: r.saved ?? [] };
      }
      const cpu = cpuOf(name, inputs[0]);
      const r = withGemm(cpu, (ctx) => (spec.cpu as CpuKernels<A>).forward(full.map(toHost), p.attrs, ctx));
      return { outputs: r.outputs.map((h) => fromHost(h, cpu)), saved: (r.saved ?? []).map((h) => fromHost(h, cpu)) };
    },
    backward(gout, saved, inputs, outputs, p) {
      const full = unpack(inputs, p.at, p.n);
      let grads: readonly (Tensor | null)[];
      if (p.slot === 'webgpu') {
        const backend = inputs[0].backend as WebGPUBackend;
        grads = (spec.webgpu as WebGPUKernels<A>).backward(backend, gout, saved, full, outputs, p.attrs);
      } else {
        const cpu = cpuOf(name, inputs[0]);
        const host = withGemm(cpu, (ctx) =>
          (spec.cpu as CpuKernels<A>).backward(
            gout.map(toHost),
            saved.map(toHost) as HostTensor[],
            full.map(toHost),
            outputs.map(toHost) as HostTensor[],
            p.attrs,
            ctx,
          ),
        );
        grads = host.map((h) => (h ? fromHost(h, cpu) : null));
      }
      return p.at.map((pos) => grads[pos] ?? null);
    },
  });

  const op = ((inputs: readonly (Tensor | null)[], attrs: A, impl: Impl = 'fused'): Tensor[] => {
    spec.validate?.(inputs, attrs);
    if (impl === 'reference') return spec.reference(inputs, attrs);
    const first = inputs.find((x): x is Tensor => x !== null);
    if (!first) fail(name, 'needs at least one tensor input');
    const slot = slotOf(first.backend as Backend);
    if (!slot || !spec[slot]) {
      fail(
        name,
        `the ${first.backend.name} backend has no fused kernel (fused kernels: ${backends.join(', ') || 'none'}); pass impl: 'reference' for the composed ops, which materialise the [T,T] scores`,
      );
    }
    const at: number[] = [];
    const present: Tensor[] = [];
    inputs.forEach((x, i) => {
      if (x) {
        at.push(i);
        present.push(x);
      }
    });
    return node(present, { attrs, at, n: inputs.length, slot });
  }) as FusedOp<A>;
  Object.defineProperty(op, 'opName', { value: name });
  Object.defineProperty(op, 'backends', { value: backends });
  return op;
}

function cpuOf(name: string, t: Tensor): CpuBackend {
  const b = t.backend as Backend;
  if (!(b instanceof CpuBackend)) fail(name, 'internal: cpu slot on another backend');
  return b;
}

function toHost(t: Tensor | null): HostTensor | null {
  if (!t) return null;
  if (t.dtype !== 'float32' && t.dtype !== 'float64') fail('fusedOp', `CPU kernels take float tensors, got ${t.dtype}`);
  return { data: t.dataSync() as FloatArray, shape: t.shape };
}

function fromHost(h: HostTensor, backend: CpuBackend): Tensor {
  return tensor(h.data, [...h.shape], { dtype: h.data instanceof Float32Array ? 'float32' : 'float64', backend });
}

/** Runs `fn` with a `gemm` on the CPU backend's matmul, freeing what it uploaded. */
function withGemm<T>(cpu: CpuBackend, fn: (ctx: CpuContext) => T): T {
  const uploaded = new Map<string, Storage>();
  const ids = new Map<FloatArray, number>();
  const view = (m: HostMatrix, dtype: 'float32' | 'float64'): View => {
    let id = ids.get(m.data);
    if (id === undefined) {
      id = ids.size;
      ids.set(m.data, id);
    }
    let storage = uploaded.get(`${id}:${dtype}`);
    if (!storage) {
      storage = cpu.upload(m.data, dtype);
      uploaded.set(`${id}:${dtype}`, storage);
    }
    return { storage, dtype, shape: [m.batch, m.rows, m.cols], strides: [m.batchStride, m.rowStride, m.colStride], offset: m.offset };
  };
  const gemm: Gemm = (a, b) => {
    const dtype = a.data instanceof Float32Array && b.data instanceof Float32Array ? 'float32' : 'float64';
    const out = cpu.matmul(view(a, dtype), view(b, dtype));
    const r = cpu.readSync(out, dtype, a.batch * a.rows * b.cols) as FloatArray;
    cpu.free(out);
    return r;
  };
  try {
    return fn({ gemm });
  } finally {
    for (const s of uploaded.values()) cpu.free(s);
  }
}

/** `a · b` in plain loops (the default `gemm` of the CPU kernels when called directly). */
export const jsGemm: Gemm = (a, b) => {
  const { batch, rows: M, cols: K } = a;
  const N = b.cols;
  const c =
    a.data instanceof Float32Array && b.data instanceof Float32Array ? new Float32Array(batch * M * N) : new Float64Array(batch * M * N);
  for (let n = 0; n < batch; n++)
    for (let i = 0; i < M; i++) {
      const co = (n * M + i) * N;
      for (let k = 0; k < K; k++) {
        const x = a.data[a.offset + n * a.batchStride + i * a.rowStride + k * a.colStride];
        if (x === 0) continue;
        const bo = b.offset + n * b.batchStride + k * b.rowStride;
        for (let j = 0; j < N; j++) c[co + j] += x * b.data[bo + j * b.colStride];
      }
    }
  return c;
};
