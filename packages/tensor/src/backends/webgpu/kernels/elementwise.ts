import type { BinaryOp, UnaryOp, View } from '../../../backend.js';
import type { DType } from '../../../dtype.js';
import { sizeOf } from '../../../shape.js';
import type { Binding, Engine, GpuStorage } from '../engine.js';
import {
  collapse,
  ENTRY_ARGS,
  Params,
  storageBinding,
  stridedOffsets,
  stridedParams,
  WG,
  WG_LINEAR,
  type WgslScalar,
  wgslType,
} from '../wgsl.js';
import { allocElems, gpuOf, grid1d } from './common.js';

/**
 * Elementwise kernels from one generator: a loop over `shape`, each named input loaded through
 * its strides as `x_<name>`, one WGSL expression for the output. Dimensions are collapsed first;
 * when every input is flat (or a broadcast scalar) and offsets are 4-aligned, a vec4 path moves
 * four elements per thread. Used by unary, binary, where, cast, copy and concat.
 */

export interface EwInput {
  name: string;
  view: View;
  type: WgslScalar;
}

export interface EwSpec {
  /** Kernel name (errors) and cache-key prefix. */
  name: string;
  inputs: EwInput[];
  shape: readonly number[];
  outType: WgslScalar;
  /** WGSL expression of type `outType` over `x_<name>` values. */
  expr: string;
  /** Extra WGSL functions the expression calls. */
  helpers?: string;
  /** Write into a region of an existing storage instead of a fresh contiguous one. */
  into?: { storage: GpuStorage; strides: readonly number[]; offset: number };
}

export function elementwise(e: Engine, spec: EwSpec): GpuStorage {
  const n = sizeOf(spec.shape);
  const out = spec.into?.storage ?? allocElems(e, n);
  if (n === 0) return out;
  const outStrides = spec.into ? [...spec.into.strides] : contiguous(spec.shape);
  const outOffset = spec.into?.offset ?? 0;
  const c = collapse(spec.shape, [...spec.inputs.map((i) => i.view), { strides: outStrides }]);
  const rank = c.shape.length;
  const names = spec.inputs.map((i) => i.name);
  // vec4 path: the loop as [R, C] (rank ≤ 2); every input either steps by 1 along C from a
  // 4-aligned start ('v') or is constant along C ('c'); rows never split a vec4.
  const C = c.shape[rank - 1];
  const R = rank === 2 ? c.shape[0] : 1;
  const outer = (k: number) => (rank === 2 ? c.strides[k][0] : 0);
  const kindOf = (k: number, off: number): 'v' | 'c' | null => {
    const inner = c.strides[k][rank - 1];
    if (inner === 1 && off % 4 === 0 && outer(k) % 4 === 0) return 'v';
    if (inner === 0) return 'c';
    return null;
  };
  const kinds = spec.inputs.map((inp, k) => kindOf(k, inp.view.offset));
  const vec4 =
    !spec.into && n >= 4 && rank <= 2 && (R === 1 || C % 4 === 0) && kinds.every((k) => k !== null) && kinds.some((k) => k === 'v');

  const p = new Params().u32('n', n);
  const bindings: Binding[] = spec.inputs.map((inp) => ({ buffer: gpuOf(spec.name, inp.view).buffer, access: 'read' }));
  bindings.push({ buffer: out.buffer, access: 'read_write' });
  let key: string;
  let code: () => string;
  if (vec4) {
    p.u32('C', C);
    spec.inputs.forEach((inp, k) => {
      p.u32(`${inp.name}_o`, inp.view.offset).u32(`${inp.name}_r`, outer(k));
    });
    key = `ew4:${spec.name}:${spec.outType}:${spec.inputs.map((i, k) => `${i.type}${kinds[k]}`).join(',')}:${spec.expr}`;
    code = () => {
      let s = spec.helpers ?? '';
      spec.inputs.forEach((inp, k) => {
        s += storageBinding(k, inp.name, kinds[k] === 'v' ? `vec4<${inp.type}>` : inp.type, 'read');
      });
      s += storageBinding(spec.inputs.length, 'out', `vec4<${spec.outType}>`, 'read_write');
      s += p.declare(spec.inputs.length + 1);
      s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let t = ${WG_LINEAR} * ${WG}u + lid;\n  if (t * 4u >= P.n) { return; }\n`;
      s += '  let row = (t * 4u) / P.C;\n  let col = (t * 4u) % P.C;\n';
      spec.inputs.forEach((inp, k) => {
        const base = `P.${inp.name}_o + row * P.${inp.name}_r`;
        s +=
          kinds[k] === 'v' ? `  let v_${inp.name} = ${inp.name}[(${base} + col) / 4u];\n` : `  let x_${inp.name} = ${inp.name}[${base}];\n`;
      });
      s += `  var r: vec4<${spec.outType}>;\n`;
      for (let j = 0; j < 4; j++) {
        s += '  {\n';
        spec.inputs.forEach((inp, k) => {
          if (kinds[k] === 'v') s += `    let x_${inp.name} = v_${inp.name}[${j}];\n`;
        });
        s += `    r[${j}] = ${spec.expr};\n  }\n`;
      }
      s += '  out[t] = r;\n}\n';
      return s;
    };
    const g = grid1d(Math.ceil(n / 4));
    e.dispatch({ name: spec.name, key, code, bindings, params: p, workgroups: g.workgroups });
    return out;
  }

  const operands: Record<string, { strides: number[]; offset: number }> = {};
  spec.inputs.forEach((inp, k) => {
    operands[inp.name] = { strides: c.strides[k], offset: inp.view.offset };
  });
  operands.out = { strides: c.strides[spec.inputs.length], offset: outOffset };
  stridedParams(p, 'sh', c.shape, operands);
  const flat = new Set<string>();
  [...names, 'out'].forEach((nm, k) => {
    if (rank === 1 && c.strides[k][0] === 1) flat.add(nm);
  });
  key = `ew:${spec.name}:${rank}:${spec.outType}:${spec.inputs.map((i) => i.type).join(',')}:${[...flat].join(',')}:${spec.expr}`;
  code = () => {
    let s = spec.helpers ?? '';
    spec.inputs.forEach((inp, k) => {
      s += storageBinding(k, inp.name, inp.type, 'read');
    });
    s += storageBinding(spec.inputs.length, 'out', spec.outType, 'read_write');
    s += p.declare(spec.inputs.length + 1);
    s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let i = ${WG_LINEAR} * ${WG}u + lid;\n  if (i >= P.n) { return; }\n`;
    s += stridedOffsets('i', rank, 'sh', [...names, 'out'], flat);
    for (const inp of spec.inputs) s += `  let x_${inp.name} = ${inp.name}[o_${inp.name}];\n`;
    s += `  out[o_out] = ${spec.expr};\n}\n`;
    return s;
  };
  e.dispatch({ name: spec.name, key, code, bindings, params: p, workgroups: grid1d(n).workgroups });
  return out;
}

function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

// ---- op expressions ----------------------------------------------------------------------------

/** Float helpers: accurate log1p/tanh near 0, stable sigmoid, JS-compatible pow. */
export const FLOAT_HELPERS = `
fn log1p_f(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.0625) {
    // x − x²/2 + x³/3 − … to x^8 (error < 0.0625^9/9 relative)
    return x * (1.0 - x * (0.5 - x * (0.33333334 - x * (0.25 - x * (0.2 - x * (0.16666667 - x * (0.14285715 - x * 0.125)))))));
  }
  return log(1.0 + x);
}
fn tanh_f(x: f32) -> f32 {
  let a = abs(x);
  var r: f32;
  if (a < 0.0625) {
    let s = a * a;
    r = a * (1.0 - s * (0.33333334 - s * (0.13333334 - s * 0.05396825)));
  } else {
    let t = exp(-2.0 * a);
    r = (1.0 - t) / (1.0 + t);
  }
  return select(r, -r, x < 0.0);
}
fn sigmoid_f(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn logsigmoid_f(x: f32) -> f32 {
  return select(0.0, x, x < 0.0) - log1p_f(exp(-abs(x)));
}
fn pow_f(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (is_nan(a) || is_nan(b)) { return f32_nan(); }
  let inf = f32_inf();
  let ab = abs(a);
  if (abs(b) == inf) {
    if (ab == 1.0) { return f32_nan(); }
    return select(0.0, inf, (ab > 1.0) == (b > 0.0));
  }
  if (a == 0.0) {
    let oddInt = floor(b) == b && abs(b) < 16777216.0 && (i32(b) & 1) == 1;
    let mag = select(0.0, inf, b < 0.0);
    return select(mag, select(mag, -mag, a < 0.0 || bitcast<u32>(a) == 0x80000000u), oddInt);
  }
  if (a < 0.0) {
    if (floor(b) != b) { return f32_nan(); }
    let odd = abs(b) < 16777216.0 && (i32(b) & 1) == 1;
    let m = exp2(b * log2(ab));
    return select(m, -m, odd);
  }
  if (floor(b) == b && abs(b) <= 64.0) {
    // exact-as-possible integer powers by squaring
    var e = u32(abs(b));
    var base = a;
    var acc = 1.0;
    loop {
      if ((e & 1u) == 1u) { acc = acc * base; }
      e = e >> 1u;
      if (e == 0u) { break; }
      base = base * base;
    }
    return select(acc, 1.0 / acc, b < 0.0);
  }
  return exp2(b * log2(a));
}
fn max_f(a: f32, b: f32) -> f32 {
  if (is_nan(a) || is_nan(b)) { return f32_nan(); }
  return select(b, a, a > b);
}
fn min_f(a: f32, b: f32) -> f32 {
  if (is_nan(a) || is_nan(b)) { return f32_nan(); }
  return select(b, a, a < b);
}
fn f2i(x: f32) -> i32 {
  if (is_nan(x)) { return 0i; }
  if (x >= 2147483648.0) { return 2147483647i; }
  if (x <= -2147483648.0) { return i32(-2147483648); }
  return i32(x);
}
fn f2u(x: f32) -> u32 {
  if (is_nan(x) || x <= 0.0) { return 0u; }
  if (x >= 4294967296.0) { return 4294967295u; }
  return u32(x);
}
`;

function unaryExpr(op: UnaryOp, t: WgslScalar): string {
  const x = 'x_x';
  switch (op) {
    case 'neg':
      return t === 'u32' ? `0u - ${x}` : `-${x}`;
    case 'abs':
      return t === 'u32' ? x : `abs(${x})`;
    case 'sign':
      if (t === 'f32') return `select(select(${x}, -1.0, ${x} < 0.0), 1.0, ${x} > 0.0)`;
      if (t === 'i32') return `select(select(0i, -1i, ${x} < 0i), 1i, ${x} > 0i)`;
      return `select(0u, 1u, ${x} > 0u)`;
    case 'exp':
      return `exp(${x})`;
    case 'log':
      return `log(${x})`;
    case 'log1p':
      return `log1p_f(${x})`;
    case 'sqrt':
      return `sqrt(${x})`;
    case 'rsqrt':
      return `1.0 / sqrt(${x})`;
    case 'sin':
      return `sin(${x})`;
    case 'cos':
      return `cos(${x})`;
    case 'tanh':
      return `tanh_f(${x})`;
    case 'sigmoid':
      return `sigmoid_f(${x})`;
    case 'logsigmoid':
      return `logsigmoid_f(${x})`;
    case 'relu':
      if (t === 'f32') return `select(${x}, 0.0, ${x} <= 0.0)`;
      return t === 'i32' ? `max(${x}, 0i)` : x;
    case 'silu':
      return `${x} * sigmoid_f(${x})`;
    case 'floor':
      return t === 'f32' ? `floor(${x})` : x;
    case 'not':
      return `select(0u, 1u, ${x} == 0u)`;
  }
}

export function unary(e: Engine, op: UnaryOp, x: View, outDtype: DType): GpuStorage {
  const t = wgslType(x.dtype, op);
  const ot = wgslType(outDtype, op);
  return elementwise(e, {
    name: op,
    inputs: [{ name: 'x', view: x, type: t }],
    shape: x.shape,
    outType: ot,
    expr: unaryExpr(op, t),
    helpers: t === 'f32' ? FLOAT_HELPERS : undefined,
  });
}

function binaryExpr(op: BinaryOp, t: WgslScalar): string {
  const a = 'x_a';
  const b = 'x_b';
  const z = t === 'i32' ? '0i' : '0u';
  switch (op) {
    case 'add':
      return `${a} + ${b}`;
    case 'sub':
      return `${a} - ${b}`;
    case 'mul':
      return `${a} * ${b}`;
    case 'div':
      return t === 'f32' ? `${a} / ${b}` : `select(${a} / ${b}, ${z}, ${b} == ${z})`;
    case 'pow':
      return `pow_f(${a}, ${b})`;
    case 'maximum':
      return t === 'f32' ? `max_f(${a}, ${b})` : `max(${a}, ${b})`;
    case 'minimum':
      return t === 'f32' ? `min_f(${a}, ${b})` : `min(${a}, ${b})`;
    case 'lt':
      return `select(0u, 1u, ${a} < ${b})`;
    case 'le':
      return `select(0u, 1u, ${a} <= ${b})`;
    case 'gt':
      return `select(0u, 1u, ${a} > ${b})`;
    case 'ge':
      return `select(0u, 1u, ${a} >= ${b})`;
    case 'eq':
      return `select(0u, 1u, ${a} == ${b})`;
    case 'ne':
      // `!(a == b)`: true for NaN operands (a plain `!=` may be compiled as an ordered compare)
      return `select(0u, 1u, !(${a} == ${b}))`;
    case 'and':
      return t === 'f32' ? `select(0u, 1u, !(${a} == 0.0) && !(${b} == 0.0))` : `${a} & ${b}`;
    case 'or':
      return t === 'f32' ? `select(0u, 1u, !(${a} == 0.0) || !(${b} == 0.0))` : `${a} | ${b}`;
  }
}

export function binary(e: Engine, op: BinaryOp, a: View, b: View, outShape: readonly number[], outDtype: DType): GpuStorage {
  const t = wgslType(a.dtype, op);
  let expr = binaryExpr(op, t);
  // Arithmetic on bool must stay 0/1.
  if (outDtype === 'bool' && (op === 'add' || op === 'sub' || op === 'mul' || op === 'div' || op === 'maximum' || op === 'minimum')) {
    expr = `select(0u, 1u, (${expr}) != 0u)`;
  }
  return elementwise(e, {
    name: op,
    inputs: [
      { name: 'a', view: a, type: t },
      { name: 'b', view: b, type: t },
    ],
    shape: outShape,
    outType: wgslType(outDtype, op),
    expr,
    helpers: t === 'f32' ? FLOAT_HELPERS : undefined,
  });
}

export function where(e: Engine, cond: View, a: View, b: View, outShape: readonly number[]): GpuStorage {
  const t = wgslType(a.dtype, 'where');
  return elementwise(e, {
    name: 'where',
    inputs: [
      { name: 'c', view: cond, type: 'u32' },
      { name: 'a', view: a, type: t },
      { name: 'b', view: b, type: t },
    ],
    shape: outShape,
    outType: t,
    expr: 'select(x_b, x_a, x_c != 0u)',
  });
}

function castExpr(from: DType, to: DType): string {
  const x = 'x_x';
  const ft = wgslType(from, 'cast');
  // float → bool on the bits: ±0 is false, NaN is true
  if (to === 'bool')
    return ft === 'f32'
      ? `select(0u, 1u, (bitcast<u32>(${x}) & 0x7fffffffu) != 0u)`
      : `select(0u, 1u, ${x} != ${ft === 'i32' ? '0i' : '0u'})`;
  const tt = wgslType(to, 'cast');
  if (ft === tt) return x;
  if (ft === 'f32') return tt === 'i32' ? `f2i(${x})` : `f2u(${x})`;
  if (tt === 'f32') return `f32(${x})`;
  if (from === 'bool') return `${tt}(${x})`;
  return `bitcast<${tt}>(${x})`;
}

export function cast(e: Engine, x: View, dtype: DType): GpuStorage {
  const ft = wgslType(x.dtype, 'cast');
  return elementwise(e, {
    name: 'cast',
    inputs: [{ name: 'x', view: x, type: ft }],
    shape: x.shape,
    outType: wgslType(dtype, 'cast'),
    expr: castExpr(x.dtype, dtype),
    helpers: ft === 'f32' ? FLOAT_HELPERS : undefined,
  });
}

/** Strided → contiguous copy of the raw 32-bit words (every GPU dtype is 32-bit). */
export function copy(e: Engine, x: View, into?: EwSpec['into']): GpuStorage {
  wgslType(x.dtype, 'copy');
  return elementwise(e, { name: 'copy', inputs: [{ name: 'x', view: x, type: 'u32' }], shape: x.shape, outType: 'u32', expr: 'x_x', into });
}

/** Concatenation: one strided copy per input into its slice of the output. */
export function concat(e: Engine, xs: readonly View[], axis: number, outShape: readonly number[]): GpuStorage {
  const out = allocElems(e, sizeOf(outShape));
  const strides = contiguous(outShape);
  let at = 0;
  for (const x of xs) {
    if (sizeOf(x.shape) > 0) copy(e, x, { storage: out, strides, offset: at * strides[axis] });
    at += x.shape[axis];
  }
  return out;
}

/** `size` elements with the 32-bit pattern of `value` in `dtype`. */
export function fill(e: Engine, size: number, value: number, dtype: DType): GpuStorage {
  const out = allocElems(e, size);
  if (size === 0) return out;
  const bits = new Uint32Array(1);
  if (dtype === 'float32') new Float32Array(bits.buffer)[0] = value;
  else if (dtype === 'int32') new Int32Array(bits.buffer)[0] = value;
  else if (dtype === 'bool') bits[0] = value ? 1 : 0;
  else if (dtype === 'uint32') bits[0] = value;
  else wgslType(dtype, 'fill');
  const p = new Params().u32('n', size).u32('v', bits[0]);
  const code = () =>
    storageBinding(0, 'out', 'vec4<u32>', 'read_write') +
    p.declare(1) +
    `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let t = ${WG_LINEAR} * ${WG}u + lid;\n  if (t * 4u >= P.n) { return; }\n  out[t] = vec4<u32>(P.v);\n}\n`;
  e.dispatch({
    name: 'fill',
    key: 'fill',
    code,
    bindings: [{ buffer: out.buffer, access: 'read_write' }],
    params: p,
    workgroups: grid1d(Math.ceil(size / 4)).workgroups,
  });
  return out;
}
