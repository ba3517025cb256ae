import type { View } from '../../../backend.js';
import { fail } from '../../../errors.js';
import { contiguousStrides, sizeOf } from '../../../shape.js';
import type { Engine, GpuStorage } from '../engine.js';
import { collapse, ENTRY_ARGS, lowest, Params, storageBinding, stridedOffsets, WG, WG_LINEAR } from '../wgsl.js';
import { allocElems, checkGpuDType, gpuOf, grid1d } from './common.js';

/**
 * Row softmax along one axis of a strided float32 view, one kernel per call. The other axes
 * form independent rows; row `r` starts at the strided offset of `r` over them, in the input
 * and in the contiguous output, and steps by the axis stride.
 *
 * - Rows of ≤ 32 elements: one thread per row, serial (max, Σ exp, write; the row stays in cache).
 * - Longer rows: one 256-thread workgroup per row (grid folded beyond 65,535 rows). A *unit* is a
 *   vec4 when the row is contiguous in input and output, its length a multiple of 4 and every
 *   row start 4-aligned (the buffers are bound as `array<vec4<f32>>`), else one element
 *   (scalar loads through the strides). Thread `t` owns units `t, t + 256, ...` (coalesced).
 *   - register path (≤ 16 units per thread, e.g. rows ≤ 16384 floats with vec4): the thread
 *     keeps its units in registers (unrolled), so the row is read from memory once: thread max →
 *     workgroup max M → e = exp(x − M) in place, thread sum → workgroup sum S → write e · (1/S).
 *   - streaming path (longer rows): pass 1 keeps an online (max m, Σ exp(x − m)) pair per
 *     thread; the pairs are combined as M = workgroup max of m, S = workgroup sum of
 *     s·exp(m − M); pass 2 reads the row again (from L2) and writes exp(x − M) / S.
 *   Workgroup max/sum use subgroupMax/subgroupAdd plus one shared-memory step when the device
 *   has subgroups, else a shared-memory tree.
 * Special values follow the composed max/sub/exp/sum/div: NaN or +Infinity in a row make S NaN
 * (exp(NaN), exp(∞ − ∞)); a row of only −Infinity has M = −∞ and exp(x − M) = NaN. Threads that
 * saw only −Infinity (or nothing) add 0, not exp(−∞ − (−∞)).
 */

const SERIAL_MAX = 32;
/** Units per thread of the register path (at most; rounded up to a power of two per kernel). */
const REG_UNITS = 16;

type Mode = 'serial' | 'reg' | 'stream';

/** WGSL statements reducing `v` over the workgroup into `let ${out}` (every thread gets it). */
function wgReduce(op: 'max' | 'sum', v: string, out: string, useSg: boolean): string {
  const comb = (a: string, b: string) => (op === 'max' ? `max(${a}, ${b})` : `${a} + ${b}`);
  const id = op === 'max' ? lowest('f32') : '0.0';
  if (useSg) {
    let s = `  let sg_${out} = ${op === 'max' ? 'subgroupMax' : 'subgroupAdd'}(${v});\n`;
    s += `  if (sgl == 0u) { red[sgid] = sg_${out}; }\n  workgroupBarrier();\n`;
    s += `  var acc_${out}: f32 = ${id};\n  for (var q = 0u; q < nsg; q++) { acc_${out} = ${comb(`acc_${out}`, 'red[q]')}; }\n`;
    s += `  let ${out} = acc_${out};\n  workgroupBarrier();\n`;
    return s;
  }
  let s = `  red[lid] = ${v};\n  workgroupBarrier();\n`;
  s += `  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {\n    if (lid < h) { red[lid] = ${comb('red[lid]', 'red[lid + h]')}; }\n    workgroupBarrier();\n  }\n`;
  s += `  let ${out} = red[0];\n  workgroupBarrier();\n`;
  return s;
}

export function softmax(e: Engine, x: View, axis: number, subgroups: boolean): GpuStorage {
  if (x.dtype !== 'float32') {
    checkGpuDType('softmax', x.dtype);
    fail('softmax', `needs a float tensor, got ${x.dtype}`);
  }
  const n = sizeOf(x.shape);
  const out = allocElems(e, n);
  if (n === 0) return out;
  const shape = x.shape.length ? x.shape : [1];
  const xStrides = x.shape.length ? x.strides : [1];
  const yStrides = contiguousStrides(shape);
  const L = shape[axis];
  const rows = n / L;
  // along the axis: a length-1 axis has no meaningful stride
  const xs = L === 1 ? 1 : xStrides[axis];
  const ys = L === 1 ? 1 : yStrides[axis];
  const others = shape.map((_, d) => d).filter((d) => d !== axis);
  const c = collapse(
    others.map((d) => shape[d]),
    [{ strides: others.map((d) => xStrides[d]) }, { strides: others.map((d) => yStrides[d]) }],
  );
  const lr = c.shape.length;
  const serial = L <= SERIAL_MAX;
  const vec4 =
    !serial && xs === 1 && ys === 1 && L % 4 === 0 && x.offset % 4 === 0 && c.strides[0].every((s, d) => s % 4 === 0 || c.shape[d] === 1);
  const U = vec4 ? L / 4 : L;
  const perThread = Math.ceil(U / WG);
  const m: Mode = serial ? 'serial' : perThread <= REG_UNITS ? 'reg' : 'stream';
  const K = m === 'reg' ? 2 ** Math.ceil(Math.log2(perThread)) : 0;
  // every register slot holds a unit (e.g. rows of 16384 floats): no bounds guards
  const full = m === 'reg' && U === K * WG;
  const useSg = subgroups && m !== 'serial';

  const p = new Params().u32('rows', rows).u32('U', U).u32('xs', xs).u32('ys', ys);
  p.u32s('ls', c.shape).u32('x_o', x.offset).u32s('x_s', c.strides[0]).u32('y_o', 0).u32s('y_s', c.strides[1]);
  const key = `softmax:${m}:${vec4}:${K}:${full}:${lr}:${useSg}`;
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const NEG = lowest('f32');

  const code = () => {
    let s = useSg ? 'enable subgroups;\n' : '';
    s += storageBinding(0, 'x', T, 'read') + storageBinding(1, 'y', T, 'read_write') + p.declare(2);
    if (m === 'serial') {
      s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let row = ${WG_LINEAR} * ${WG}u + lid;\n  if (row >= P.rows) { return; }\n`;
      s += stridedOffsets('row', lr, 'ls', ['x', 'y']);
      s += `  var mx: f32 = ${NEG};\n  for (var j = 0u; j < P.U; j++) { mx = max(mx, x[o_x + j * P.xs]); }\n`;
      s += '  var sm: f32 = 0.0;\n  for (var j = 0u; j < P.U; j++) { sm += exp(x[o_x + j * P.xs] - mx); }\n';
      s += '  let inv = 1.0 / sm;\n  for (var j = 0u; j < P.U; j++) { y[o_y + j * P.ys] = exp(x[o_x + j * P.xs] - mx) * inv; }\n}\n';
      return s;
    }
    // unit j of the row: load / store expressions, its max and the sum of a unit
    const ld = vec4 ? (j: string) => `x[bx + ${j}]` : (j: string) => `x[o_x + (${j}) * P.xs]`;
    const st = vec4 ? (j: string, v: string) => `y[by + ${j}] = ${v};` : (j: string, v: string) => `y[o_y + (${j}) * P.ys] = ${v};`;
    const umax = (v: string) => (vec4 ? `max(max(${v}.x, ${v}.y), max(${v}.z, ${v}.w))` : v);
    const usum = (v: string) => (vec4 ? `((${v}.x + ${v}.y) + (${v}.z + ${v}.w))` : v);
    const bc = (v: string) => (vec4 ? `vec4<f32>(${v})` : v);
    s += `var<workgroup> red: array<f32, ${WG}>;\n`;
    const sgArgs = useSg
      ? ', @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_id) sgid: u32, @builtin(num_subgroups) nsg: u32'
      : '';
    s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}${sgArgs}) {\n  let row = ${WG_LINEAR};\n  if (row >= P.rows) { return; }\n`;
    s += stridedOffsets('row', lr, 'ls', ['x', 'y']);
    if (vec4) s += '  let bx = o_x / 4u;\n  let by = o_y / 4u;\n';
    if (m === 'reg') {
      const guard = (k: number, body: string) => (full ? `  ${body}\n` : `  if (j${k} < P.U) { ${body} }\n`);
      s += `  var mt: f32 = ${NEG};\n`;
      for (let k = 0; k < K; k++) {
        s += `  var v${k}: ${T};\n  let j${k} = lid + ${k * WG}u;\n`;
        s += guard(k, `v${k} = ${ld(`j${k}`)}; mt = max(mt, ${umax(`v${k}`)});`);
      }
      s += wgReduce('max', 'mt', 'M', useSg);
      s += '  var st: f32 = 0.0;\n';
      for (let k = 0; k < K; k++) s += guard(k, `v${k} = exp(v${k} - ${bc('M')}); st += ${usum(`v${k}`)};`);
      s += wgReduce('sum', 'st', 'S', useSg);
      s += `  let inv = ${bc('1.0 / S')};\n`;
      for (let k = 0; k < K; k++) s += guard(k, st(`j${k}`, `v${k} * inv`));
      s += '}\n';
      return s;
    }
    // streaming: online (max, sum) per thread, then a second read of the row
    s += `  var mt: f32 = ${NEG};\n  var st: f32 = 0.0;\n`;
    s += `  for (var j = lid; j < P.U; j += ${WG}u) {\n    let v = ${ld('j')};\n    let mn = max(mt, ${umax('v')});\n`;
    s += `    if (mn != ${NEG}) {\n      let ev = exp(v - ${bc('mn')});\n      st = st * exp(mt - mn) + ${usum('ev')};\n      mt = mn;\n    }\n  }\n`;
    s += wgReduce('max', 'mt', 'M', useSg);
    s += `  var sc: f32 = 0.0;\n  if (mt != ${NEG}) { sc = st * exp(mt - M); }\n`;
    s += wgReduce('sum', 'sc', 'S', useSg);
    s += `  let inv = ${bc('1.0 / S')};\n`;
    s += `  for (var j = lid; j < P.U; j += ${WG}u) {\n    ${st('j', `exp(${ld('j')} - ${bc('M')}) * inv`)}\n  }\n}\n`;
    return s;
  };
  e.dispatch({
    name: 'softmax',
    key,
    code,
    bindings: [
      { buffer: gpuOf('softmax', x).buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: grid1d(m === 'serial' ? rows : rows * WG).workgroups,
  });
  return out;
}
