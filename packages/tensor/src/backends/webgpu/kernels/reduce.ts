import type { ReduceOp, View } from '../../../backend.js';
import type { Engine, GpuStorage } from '../engine.js';
import {
  collapse,
  ENTRY_ARGS,
  highest,
  lowest,
  Params,
  storageBinding,
  stridedOffsets,
  WG,
  WG_LINEAR,
  type WgslScalar,
  wgslType,
  zero,
} from '../wgsl.js';
import { gpuOf, grid1d } from './common.js';
import { fill } from './elementwise.js';

/**
 * Reductions over any set of axes of a strided view.
 *
 * The kept axes and the reduced axes are collapsed separately; output element `o` starts at the
 * kept-axes offset of `o` and walks the reduced elements `j = 0..L-1` through their strides.
 * Each pass reduces chunks of a row to partials and the next pass reduces the partials, until
 * one value per output remains, so float sums are tree sums (≤ 16 serial adds per thread in a
 * row pass, ≤ 256 in a column pass, then log-depth combines): 1e6-element f32 sums stay well
 * within 1e-5 relative.
 * - Row pass (reduced elements adjacent in memory): one 256-thread workgroup per (output,
 *   chunk of ≤ 4096 elements), coalesced loads, a shared-memory tree, or subgroupAdd plus one
 *   shared-memory step when the device has subgroups (sums only).
 * - Column pass (outputs adjacent in memory, e.g. summing over a leading axis), and rows of
 *   ≤ 32 elements: one thread per (output, chunk of ≤ 256 elements), serial; coalesced across
 *   threads.
 * argmax carries (value, index) pairs; ties keep the lower index and NaN wins, as on the CPU.
 */

const ROW_IPT = 16;
const COL_CHUNK = 256;

interface Source {
  buffer: GPUBuffer;
  /** Indices that travel with the values (argmax partials). */
  idx: GpuStorage | null;
  type: WgslScalar;
  offset: number;
  keptShape: number[];
  keptStrides: number[];
  redShape: number[];
  redStrides: number[];
}

function combineFns(op: ReduceOp, t: WgslScalar): string {
  if (op === 'sum') return `fn comb(a: ${t}, b: ${t}) -> ${t} { return a + b; }\n`;
  if (op === 'max') {
    return t === 'f32'
      ? 'fn comb(a: f32, b: f32) -> f32 { if (is_nan(a) || is_nan(b)) { return f32_nan(); } return select(b, a, a > b); }\n'
      : `fn comb(a: ${t}, b: ${t}) -> ${t} { return max(a, b); }\n`;
  }
  if (op === 'min') {
    return t === 'f32'
      ? 'fn comb(a: f32, b: f32) -> f32 { if (is_nan(a) || is_nan(b)) { return f32_nan(); } return select(b, a, a < b); }\n'
      : `fn comb(a: ${t}, b: ${t}) -> ${t} { return min(a, b); }\n`;
  }
  // argmax: is (va, ia) better than (vb, ib)?
  const nanCase = t === 'f32' ? '  if (is_nan(va)) { return !is_nan(vb) || ia < ib; }\n  if (is_nan(vb)) { return false; }\n' : '';
  return `fn better(va: ${t}, ia: u32, vb: ${t}, ib: u32) -> bool {\n${nanCase}  return va > vb || (va == vb && ia < ib);\n}\n`;
}

function identity(op: ReduceOp, t: WgslScalar): string {
  return op === 'sum' ? zero(t) : op === 'min' ? highest(t) : lowest(t);
}

interface PassSpec {
  op: ReduceOp;
  src: Source;
  accT: WgslScalar;
  /** Type written: the final output type or the partial (accumulator) type. */
  outT: WgslScalar;
  final: boolean;
  mode: 'row' | 'col';
  O: number;
  L: number;
  chunks: number;
  out: GpuStorage;
  outIdx: GpuStorage | null;
  subgroups: boolean;
}

function runPass(e: Engine, s: PassSpec): void {
  const { op, src } = s;
  const argmax = op === 'argmax';
  const idxIn = src.idx !== null;
  const kr = src.keptShape.length;
  const rr = src.redShape.length;
  const p = new Params().u32('O', s.O).u32('L', s.L).u32('chunks', s.chunks);
  p.u32('C', s.mode === 'row' ? ROW_IPT * WG : COL_CHUNK);
  p.u32s('ks', src.keptShape).u32('k_o', src.offset).u32s('k_s', src.keptStrides);
  p.u32s('rs', src.redShape).u32('r_o', 0).u32s('r_s', src.redStrides);
  const bindings: { buffer: GPUBuffer; access: 'read' | 'read_write' }[] = [{ buffer: src.buffer, access: 'read' }];
  if (idxIn) bindings.push({ buffer: (src.idx as GpuStorage).buffer, access: 'read' });
  bindings.push({ buffer: s.out.buffer, access: 'read_write' });
  if (s.outIdx) bindings.push({ buffer: s.outIdx.buffer, access: 'read_write' });
  const useSg = s.subgroups && op === 'sum' && s.mode === 'row';
  const key = `reduce:${op}:${s.mode}:${src.type}:${s.accT}:${s.outT}:${kr}:${rr}:${idxIn}:${s.final}:${useSg}`;
  const conv = src.type === s.accT ? 'v0' : `${s.accT}(v0)`;

  const code = () => {
    let c = useSg ? 'enable subgroups;\n' : '';
    let b = 0;
    c += storageBinding(b++, 'x', src.type, 'read');
    if (idxIn) c += storageBinding(b++, 'xi', 'u32', 'read');
    c += storageBinding(b++, 'out', s.outT, 'read_write');
    if (s.outIdx) c += storageBinding(b++, 'oi', 'u32', 'read_write');
    c += p.declare(b);
    c += combineFns(op, s.accT);
    // load + accumulate the element at reduced index `j`
    let step = `    ${stridedOffsets('j', rr, 'rs', ['r']).trim()}\n`;
    step += `    let v0 = x[o_k + o_r];\n    let v = ${conv};\n`;
    if (argmax) {
      step += `    let ix = ${idxIn ? 'xi[o_k + o_r]' : 'j'};\n    if (better(v, ix, acc, ai)) { acc = v; ai = ix; }\n`;
    } else {
      step += '    acc = comb(acc, v);\n';
    }
    const write = (dst: string) => {
      if (argmax) return s.final ? `out[${dst}] = i32(ai);` : `out[${dst}] = acc; oi[${dst}] = ai;`;
      return `out[${dst}] = acc;`;
    };
    if (s.mode === 'col') {
      c += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n`;
      c += `  let t = ${WG_LINEAR} * ${WG}u + lid;\n  if (t >= P.O * P.chunks) { return; }\n`;
      c += '  let ch = t / P.O;\n  let o = t % P.O;\n';
      c += stridedOffsets('o', kr, 'ks', ['k']);
      c += `  var acc: ${s.accT} = ${identity(op, s.accT)};\n  var ai: u32 = 0xffffffffu;\n`;
      c += '  let j0 = ch * P.C;\n  let j1 = min(P.L, j0 + P.C);\n';
      c += `  for (var j = j0; j < j1; j++) {\n${step}  }\n`;
      c += `  ${write(s.final ? 'o' : 't')}\n}\n`;
      return c;
    }
    c += `var<workgroup> sv: array<${s.accT}, ${WG}>;\n`;
    if (argmax) c += `var<workgroup> si: array<u32, ${WG}>;\n`;
    const sgArgs = useSg
      ? ', @builtin(subgroup_invocation_id) sgl: u32, @builtin(subgroup_size) sgs: u32, @builtin(subgroup_id) sgid: u32, @builtin(num_subgroups) nsg: u32'
      : '';
    c += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}${sgArgs}) {\n`;
    c += `  let wg = ${WG_LINEAR};\n  if (wg >= P.O * P.chunks) { return; }\n`;
    c += '  let o = wg / P.chunks;\n  let ch = wg % P.chunks;\n';
    c += stridedOffsets('o', kr, 'ks', ['k']);
    c += `  var acc: ${s.accT} = ${identity(op, s.accT)};\n  var ai: u32 = 0xffffffffu;\n`;
    // four independent loads in flight per thread, then combined in index order
    const load = (u: number) => {
      let t = `    var w${u}: ${s.accT} = ${identity(op, s.accT)};\n    var wi${u}: u32 = 0xffffffffu;\n`;
      t += `    if (jb + ${u * WG}u < P.L) {\n      let j = jb + ${u * WG}u;\n      ${stridedOffsets('j', rr, 'rs', ['r']).trim().replace(/\n/g, '\n      ')}\n`;
      t += `      let v0 = x[o_k + o_r];\n      w${u} = ${conv};\n      wi${u} = ${argmax ? (idxIn ? 'xi[o_k + o_r]' : 'j') : '0u'};\n    }\n`;
      return t;
    };
    c += `  let j0 = ch * P.C;\n  for (var q = 0u; q < ${ROW_IPT}u; q += 4u) {\n    let jb = j0 + q * ${WG}u + lid;\n    if (jb >= P.L) { break; }\n`;
    for (let u = 0; u < 4; u++) c += load(u);
    for (let u = 0; u < 4; u++) {
      c += argmax ? `    if (better(w${u}, wi${u}, acc, ai)) { acc = w${u}; ai = wi${u}; }\n` : `    acc = comb(acc, w${u});\n`;
    }
    c += '  }\n';
    if (useSg) {
      c += '  let r = subgroupAdd(acc);\n  if (sgl == 0u) { sv[sgid] = r; }\n  workgroupBarrier();\n';
      c += `  if (sgid == 0u) {\n    var tt: ${s.accT} = ${zero(s.accT)};\n    for (var q = sgl; q < nsg; q += sgs) { tt += sv[q]; }\n`;
      c += `    acc = subgroupAdd(tt);\n    if (sgl == 0u) { ${write(s.final ? 'o' : 'wg')} }\n  }\n}\n`;
      return c;
    }
    c += '  sv[lid] = acc;\n';
    if (argmax) c += '  si[lid] = ai;\n';
    c += '  workgroupBarrier();\n';
    c += `  for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {\n    if (lid < h) {\n`;
    if (argmax) {
      c += '      if (better(sv[lid + h], si[lid + h], sv[lid], si[lid])) { sv[lid] = sv[lid + h]; si[lid] = si[lid + h]; }\n';
    } else {
      c += '      sv[lid] = comb(sv[lid], sv[lid + h]);\n';
    }
    c += '    }\n    workgroupBarrier();\n  }\n';
    c += `  if (lid == 0u) {\n    acc = sv[0];\n    ai = ${argmax ? 'si[0]' : '0u'};\n    ${write(s.final ? 'o' : 'wg')}\n  }\n}\n`;
    return c;
  };
  const threads = s.mode === 'col' ? s.O * s.chunks : s.O * s.chunks * WG;
  e.dispatch({ name: `reduce_${op}`, key, code, bindings, params: p, workgroups: grid1d(threads).workgroups });
}

export function reduce(e: Engine, op: ReduceOp, x: View, axes: readonly number[], subgroups: boolean): GpuStorage {
  const inT = wgslType(x.dtype, op);
  const accT: WgslScalar = op === 'sum' && x.dtype === 'bool' ? 'i32' : inT;
  const finalT: WgslScalar = op === 'argmax' ? 'i32' : accT;
  const red = new Set(axes);
  const keptDims = x.shape.map((_, d) => d).filter((d) => !red.has(d));
  const O = keptDims.reduce((n, d) => n * x.shape[d], 1);
  const L = axes.reduce((n, d) => n * x.shape[d], 1);
  if (O === 0) return e.alloc(0);
  if (L === 0) {
    const dtype = finalT === 'f32' ? 'float32' : finalT === 'i32' ? 'int32' : 'uint32';
    const v =
      op === 'sum'
        ? 0
        : op === 'max'
          ? finalT === 'f32'
            ? -Infinity
            : finalT === 'i32'
              ? -2147483648
              : 0
          : finalT === 'f32'
            ? Infinity
            : finalT === 'i32'
              ? 2147483647
              : 0xffffffff;
    return fill(e, O, v, dtype);
  }
  const k = collapse(
    keptDims.map((d) => x.shape[d]),
    [{ strides: keptDims.map((d) => x.strides[d]) }],
  );
  const r = collapse(
    axes.map((d) => x.shape[d]),
    [{ strides: axes.map((d) => x.strides[d]) }],
  );
  let src: Source = {
    buffer: gpuOf(op, x).buffer,
    idx: null,
    type: inT,
    offset: x.offset,
    keptShape: k.shape,
    keptStrides: k.strides[0],
    redShape: r.shape,
    redStrides: r.strides[0],
  };
  let owned: GpuStorage[] = [];
  let len = L;
  for (;;) {
    const rInner = src.redStrides[src.redStrides.length - 1];
    const kInner = src.keptStrides[src.keptStrides.length - 1];
    const col = (rInner !== 1 && kInner === 1 && O > 1) || len <= 32;
    const mode = col ? 'col' : 'row';
    const chunks = Math.ceil(len / (col ? COL_CHUNK : ROW_IPT * WG));
    const final = chunks === 1;
    const out = e.alloc(O * chunks * 4);
    const outIdx = op === 'argmax' && !final ? e.alloc(O * chunks * 4) : null;
    runPass(e, { op, src, accT, outT: final ? finalT : accT, final, mode, O, L: len, chunks, out, outIdx, subgroups });
    for (const s of owned) e.free(s);
    if (final) return out;
    owned = outIdx ? [out, outIdx] : [out];
    // partial layout: [O, chunks] for row passes, [chunks, O] for column passes
    src = {
      buffer: out.buffer,
      idx: outIdx,
      type: accT,
      offset: 0,
      keptShape: [O],
      keptStrides: [col ? 1 : chunks],
      redShape: [chunks],
      redStrides: [col ? O : 1],
    };
    len = chunks;
  }
}
