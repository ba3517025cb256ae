import type { DType } from '../../dtype.js';
import { fail } from '../../errors.js';

/**
 * The one place for shared WGSL scaffolding: dtype → WGSL scalar type, binding declarations,
 * the uniform parameter block, folded-grid ids, float constants that WGSL cannot spell as
 * literals, and strided index arithmetic. Every kernel generator (and `runKernel`) builds its
 * source from these pieces.
 */

export type WgslScalar = 'f32' | 'i32' | 'u32';

/** Storage type of a dtype on the GPU: bool is stored as u32 0/1. float64 has no GPU type. */
export function wgslType(dtype: DType, op = 'webgpu'): WgslScalar {
  switch (dtype) {
    case 'float32':
      return 'f32';
    case 'int32':
      return 'i32';
    case 'uint32':
    case 'bool':
      return 'u32';
    default:
      return fail(op, 'float64 is only supported on the cpu backend');
  }
}

/** Threads per workgroup of the 1-D kernels. */
export const WG = 256;

/** Largest workgroup count per grid dimension (WebGPU's minimum limit, also Dawn's default). */
export const MAX_GRID_DIM = 65535;

/**
 * Splits `n` workgroups into a grid `[x, y, z]` with every dimension ≤ 65535 (x·y·z ≥ n).
 * Kernels recover the linear id with `WG_LINEAR` and must skip ids ≥ n.
 */
export function foldGrid(n: number): [number, number, number] {
  if (n <= MAX_GRID_DIM) return [Math.max(n, 1), 1, 1];
  const x = MAX_GRID_DIM;
  const rest = Math.ceil(n / x);
  if (rest <= MAX_GRID_DIM) return [x, rest, 1];
  const y = MAX_GRID_DIM;
  const z = Math.ceil(rest / y);
  if (z > MAX_GRID_DIM) fail('webgpu', `grid of ${n} workgroups is too large`);
  return [x, y, z];
}

/**
 * Entry-point builtins every generated kernel declares, and the linear workgroup id over a
 * folded grid. Use as `fn main(${ENTRY_ARGS}) { let wg = ${WG_LINEAR}; ... }`.
 */
export const ENTRY_ARGS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';
export const WG_LINEAR = '(wid.x + nwg.x * (wid.y + nwg.y * wid.z))';

/**
 * Helpers prepended to every kernel. WGSL rejects infinities and NaNs in constant expressions,
 * so they are made at run time from private variables.
 */
export const PRELUDE = `
var<private> F32_INF_BITS: u32 = 0x7f800000u;
var<private> F32_NAN_BITS: u32 = 0x7fc00000u;
fn f32_inf() -> f32 { return bitcast<f32>(F32_INF_BITS); }
fn f32_nan() -> f32 { return bitcast<f32>(F32_NAN_BITS); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
`;

/** The largest finite value / the identity of max/min for each scalar type, as WGSL code. */
export function lowest(t: WgslScalar): string {
  return t === 'f32' ? '(-f32_inf())' : t === 'i32' ? 'i32(-2147483648)' : '0u';
}
export function highest(t: WgslScalar): string {
  return t === 'f32' ? 'f32_inf()' : t === 'i32' ? '2147483647i' : '4294967295u';
}
export function zero(t: WgslScalar): string {
  return t === 'f32' ? '0.0' : t === 'i32' ? '0i' : '0u';
}

/** How a kernel may use a buffer binding. */
export type Access = 'read' | 'read_write';

/** `@group(0) @binding(i) var<storage, access> name: array<elem>;` */
export function storageBinding(index: number, name: string, elem: string, access: Access): string {
  return `@group(0) @binding(${index}) var<storage, ${access}> ${name}: array<${elem}>;\n`;
}

/**
 * A uniform parameter block made of named 4-byte scalars. Kernels read `P.name`; the struct and
 * the packed bytes come from the same field list, so they cannot disagree. Field order is the
 * insertion order; the binding is the last one of the kernel.
 */
export class Params {
  readonly fields: { name: string; type: WgslScalar }[] = [];
  private readonly values: number[] = [];

  u32(name: string, value: number): this {
    return this.add(name, 'u32', value);
  }
  i32(name: string, value: number): this {
    return this.add(name, 'i32', value);
  }
  f32(name: string, value: number): this {
    return this.add(name, 'f32', value);
  }
  /** `name0..name{n-1}` as u32 (shapes, strides). */
  u32s(name: string, values: readonly number[]): this {
    values.forEach((v, i) => {
      this.u32(`${name}${i}`, v);
    });
    return this;
  }

  add(name: string, type: WgslScalar, value: number): this {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail('runKernel', `uniform name '${name}' is not a WGSL identifier`);
    if (this.fields.some((f) => f.name === name)) fail('runKernel', `uniform '${name}' is declared twice`);
    this.fields.push({ name, type });
    this.values.push(value);
    return this;
  }

  get isEmpty(): boolean {
    return this.fields.length === 0;
  }

  /** Bytes of the block, padded to 16. */
  get byteLength(): number {
    return Math.max(16, Math.ceil((this.fields.length * 4) / 16) * 16);
  }

  /** WGSL declaration of the block at `binding`. */
  declare(binding: number): string {
    const body = this.fields.length ? this.fields.map((f) => `  ${f.name}: ${f.type},`).join('\n') : '  _pad: u32,';
    return `struct Params {\n${body}\n};\n@group(0) @binding(${binding}) var<uniform> P: Params;\n`;
  }

  /** Packs the values into `dst` (u32 words) at word offset `at`. */
  write(dst: Uint32Array, f32: Float32Array, i32: Int32Array, at: number): void {
    for (let i = 0; i < this.fields.length; i++) {
      const v = this.values[i];
      switch (this.fields[i].type) {
        case 'f32':
          f32[at + i] = v;
          break;
        case 'i32':
          i32[at + i] = v;
          break;
        default:
          dst[at + i] = v >>> 0;
      }
    }
  }
}

/**
 * A strided operand of an n-d loop, after dimension collapsing: shape is shared by all operands
 * of the loop, each operand has its own strides and offset (in elements).
 */
export interface StridedOperand {
  strides: number[];
  offset: number;
}

/**
 * Merges adjacent dimensions of a loop over `shape` where every operand steps uniformly, and
 * drops size-1 dimensions. Returns rank ≥ 1 (a rank-0 loop becomes shape [1]).
 */
export function collapse(
  shape: readonly number[],
  operands: readonly { strides: readonly number[] }[],
): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  for (let d = 0; d < shape.length; d++) if (shape[d] !== 1) dims.push(d);
  const outShape: number[] = [];
  const outStrides: number[][] = operands.map(() => []);
  for (const d of dims) {
    const last = outShape.length - 1;
    const mergeable = last >= 0 && operands.every((op, k) => outStrides[k][last] === op.strides[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      operands.forEach((op, k) => {
        outStrides[k][last] = op.strides[d];
      });
    } else {
      outShape.push(shape[d]);
      operands.forEach((op, k) => {
        outStrides[k].push(op.strides[d]);
      });
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    for (const s of outStrides) s.push(0);
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * WGSL statements that turn the linear row-major index `idx` over a loop of rank `rank` (dims
 * `P.{shapeName}{d}`) into element offsets `o_<name>` for each named operand (strides
 * `P.{name}_s{d}`, base offset `P.{name}_o`). Operands whose name is in `contiguous` use
 * `idx + offset` directly. The caller declares matching fields with `stridedParams`.
 */
export function stridedOffsets(
  idx: string,
  rank: number,
  shapeName: string,
  names: readonly string[],
  contiguous: ReadonlySet<string> = new Set(),
): string {
  const strided = names.filter((n) => !contiguous.has(n));
  let s = '';
  for (const n of names) s += `  var o_${n}: u32 = P.${n}_o${contiguous.has(n) ? ` + ${idx}` : ''};\n`;
  if (strided.length === 0) return s;
  if (rank === 1) {
    for (const n of strided) s += `  o_${n} += ${idx} * P.${n}_s0;\n`;
    return s;
  }
  const rem = `rem_${shapeName}`;
  s += `  var ${rem}: u32 = ${idx};\n`;
  for (let d = rank - 1; d >= 1; d--) {
    s += `  { let c = ${rem} % P.${shapeName}${d}; ${rem} = ${rem} / P.${shapeName}${d};`;
    for (const n of strided) s += ` o_${n} += c * P.${n}_s${d};`;
    s += ' }\n';
  }
  for (const n of strided) s += `  o_${n} += ${rem} * P.${n}_s0;\n`;
  return s;
}

/** Declares the loop shape and each operand's strides/offset for `stridedOffsets`. */
export function stridedParams(p: Params, shapeName: string, shape: readonly number[], operands: Record<string, StridedOperand>): Params {
  p.u32s(shapeName, shape);
  for (const [name, op] of Object.entries(operands)) {
    p.u32(`${name}_o`, op.offset);
    p.u32s(`${name}_s`, op.strides);
  }
  return p;
}

/** True when a collapsed operand is plain row-major over the loop (rank 1, stride 1). */
export function isFlat(shape: readonly number[], strides: readonly number[]): boolean {
  return shape.length === 1 && (strides[0] === 1 || shape[0] === 1);
}
