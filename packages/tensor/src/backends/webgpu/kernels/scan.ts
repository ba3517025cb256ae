import type { View } from '../../../backend.js';
import { contiguousStrides, sizeOf } from '../../../shape.js';
import type { Engine, GpuStorage } from '../engine.js';
import { collapse, ENTRY_ARGS, Params, storageBinding, stridedOffsets, WG, WG_LINEAR, wgslType, zero } from '../wgsl.js';
import { allocElems, gpuOf, grid1d } from './common.js';

/**
 * Inclusive cumulative sum along one axis of a strided view (`reverse` sums from the end).
 * The other axes form independent lines. Lines of ≤ 64 elements: one thread per line, serial.
 * Longer lines: one workgroup per line walks it in chunks of 1024 (4 per thread: a serial
 * scan in registers, a Hillis–Steele scan of the 256 thread totals in shared memory, plus the
 * carry of the previous chunks).
 */
const SERIAL_MAX = 64;
const IPT = 4;

export function cumsum(e: Engine, x: View, axis: number, reverse: boolean): GpuStorage {
  const t = wgslType(x.dtype, 'cumsum');
  const n = sizeOf(x.shape);
  const out = allocElems(e, n);
  if (n === 0) return out;
  const L = x.shape[axis];
  const lines = n / L;
  const outStrides = contiguousStrides(x.shape);
  const others = x.shape.map((_, d) => d).filter((d) => d !== axis);
  const c = collapse(
    others.map((d) => x.shape[d]),
    [{ strides: others.map((d) => x.strides[d]) }, { strides: others.map((d) => outStrides[d]) }],
  );
  const lr = c.shape.length;
  const p = new Params().u32('lines', lines).u32('L', L).u32('xs', x.strides[axis]).u32('ys', outStrides[axis]);
  p.u32s('ls', c.shape).u32('x_o', x.offset).u32s('x_s', c.strides[0]).u32('y_o', 0).u32s('y_s', c.strides[1]);
  const serial = L <= SERIAL_MAX;
  const pos = (j: string) => (reverse ? `(P.L - 1u - ${j})` : j);
  const key = `cumsum:${t}:${lr}:${reverse}:${serial}`;
  const code = () => {
    let s = storageBinding(0, 'x', t, 'read') + storageBinding(1, 'y', t, 'read_write') + p.declare(2);
    if (serial) {
      s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let line = ${WG_LINEAR} * ${WG}u + lid;\n  if (line >= P.lines) { return; }\n`;
      s += stridedOffsets('line', lr, 'ls', ['x', 'y']);
      s += `  var acc: ${t} = ${zero(t)};\n  for (var j = 0u; j < P.L; j++) {\n    let q = ${pos('j')};\n    acc += x[o_x + q * P.xs];\n    y[o_y + q * P.ys] = acc;\n  }\n}\n`;
      return s;
    }
    s += `var<workgroup> sh: array<${t}, ${WG}>;\n`;
    s += `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let line = ${WG_LINEAR};\n  if (line >= P.lines) { return; }\n`;
    s += stridedOffsets('line', lr, 'ls', ['x', 'y']);
    s += `  var carry: ${t} = ${zero(t)};\n`;
    s += `  for (var base = 0u; base < P.L; base += ${WG * IPT}u) {\n`;
    s += `    let j0 = base + lid * ${IPT}u;\n`;
    for (let q = 0; q < IPT; q++) {
      s += `    var v${q}: ${t} = ${zero(t)};\n    if (j0 + ${q}u < P.L) { v${q} = x[o_x + ${pos(`(j0 + ${q}u)`)} * P.xs]; }\n`;
    }
    for (let q = 1; q < IPT; q++) s += `    v${q} += v${q - 1};\n`;
    s += `    sh[lid] = v${IPT - 1};\n    workgroupBarrier();\n`;
    s += `    for (var off = 1u; off < ${WG}u; off <<= 1u) {\n      var prev: ${t} = ${zero(t)};\n      if (lid >= off) { prev = sh[lid - off]; }\n      workgroupBarrier();\n      sh[lid] += prev;\n      workgroupBarrier();\n    }\n`;
    s += `    var pre: ${t} = carry;\n    if (lid > 0u) { pre += sh[lid - 1u]; }\n`;
    for (let q = 0; q < IPT; q++) {
      s += `    if (j0 + ${q}u < P.L) { y[o_y + ${pos(`(j0 + ${q}u)`)} * P.ys] = pre + v${q}; }\n`;
    }
    s += `    carry += sh[${WG - 1}];\n    workgroupBarrier();\n  }\n}\n`;
    return s;
  };
  e.dispatch({
    name: 'cumsum',
    key,
    code,
    bindings: [
      { buffer: gpuOf('cumsum', x).buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: grid1d(serial ? lines : lines * WG).workgroups,
  });
  return out;
}
