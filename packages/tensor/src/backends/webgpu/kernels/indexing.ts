import type { View } from '../../../backend.js';
import { isContiguous, sizeOf } from '../../../shape.js';
import type { Engine, GpuStorage } from '../engine.js';
import { collapse, ENTRY_ARGS, Params, storageBinding, stridedOffsets, stridedParams, WG, WG_LINEAR, wgslType, zero } from '../wgsl.js';
import { allocElems, gpuOf, grid1d } from './common.js';
import { copy } from './elementwise.js';

/**
 * `take` is a gather over the output: `x` is read through a view whose index axes have stride 0,
 * `index` through a view whose other axes have stride 0, so one strided loop finds both.
 * An out-of-range index reads 0 (checking would need a readback).
 *
 * `takeAdjoint` is deterministic and atomic-free: the index positions are sorted by
 * (index value, position) with a bitonic sort (log²-many tiny passes over a u32 permutation,
 * independent of the payload size); then every output element binary-searches its run of
 * positions and sums their `src` values in ascending position order: the same order, hence the
 * same float32 result, as a serial loop over the positions.
 */

export function take(e: Engine, x: View, index: View, axis: number): GpuStorage {
  const t = wgslType(x.dtype, 'take');
  const pre = x.shape.slice(0, axis);
  const post = x.shape.slice(axis + 1);
  const ir = index.shape.length;
  const outShape = [...pre, ...index.shape, ...post];
  const n = sizeOf(outShape);
  const out = allocElems(e, n);
  if (n === 0) return out;
  const aStrides = [...x.strides.slice(0, axis), ...new Array<number>(ir).fill(0), ...x.strides.slice(axis + 1)];
  const bStrides = [...new Array<number>(pre.length).fill(0), ...index.strides, ...new Array<number>(post.length).fill(0)];
  const c = collapse(outShape, [{ strides: aStrides }, { strides: bStrides }]);
  const rank = c.shape.length;
  const p = new Params().u32('n', n).u32('R', x.shape[axis]).u32('ax', x.strides[axis]);
  stridedParams(p, 'sh', c.shape, { a: { strides: c.strides[0], offset: x.offset }, b: { strides: c.strides[1], offset: index.offset } });
  const code = () =>
    storageBinding(0, 'x', t, 'read') +
    storageBinding(1, 'idx', 'i32', 'read') +
    storageBinding(2, 'out', t, 'read_write') +
    p.declare(3) +
    `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let i = ${WG_LINEAR} * ${WG}u + lid;\n  if (i >= P.n) { return; }\n` +
    stridedOffsets('i', rank, 'sh', ['a', 'b']) +
    `  let j = idx[o_b];\n  var v: ${t} = ${zero(t)};\n  if (j >= 0i && u32(j) < P.R) { v = x[o_a + u32(j) * P.ax]; }\n  out[i] = v;\n}\n`;
  e.dispatch({
    name: 'take',
    key: `take:${t}:${rank}`,
    code,
    bindings: [
      { buffer: gpuOf('take', x).buffer, access: 'read' },
      { buffer: gpuOf('take', index).buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: grid1d(n).workgroups,
  });
  return out;
}

/** A flat (contiguous, offset 0) storage with the view's elements; `owned` if it had to copy. */
function flat(e: Engine, v: View): { s: GpuStorage; owned: boolean } {
  if (v.offset === 0 && isContiguous(v.shape, v.strides)) return { s: gpuOf('takeAdjoint', v), owned: false };
  return { s: copy(e, v), owned: true };
}

/** Sorts positions 0..n-1 by (index[pos], pos); returns a u32 permutation of length ≥ n. */
function sortPositions(e: Engine, idx: GpuStorage, n: number): GpuStorage {
  let np = 1;
  while (np < n) np *= 2;
  const perm = allocElems(e, np);
  const iota = new Params().u32('n', np);
  e.dispatch({
    name: 'takeAdjoint_iota',
    key: 'takeAdjoint_iota',
    code: () =>
      storageBinding(0, 'perm', 'u32', 'read_write') +
      iota.declare(1) +
      `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let i = ${WG_LINEAR} * ${WG}u + lid;\n  if (i < P.n) { perm[i] = i; }\n}\n`,
    bindings: [{ buffer: perm.buffer, access: 'read_write' }],
    params: iota,
    workgroups: grid1d(np).workgroups,
  });
  const code = (p: Params) => () =>
    storageBinding(0, 'idx', 'i32', 'read') +
    storageBinding(1, 'perm', 'u32', 'read_write') +
    p.declare(2) +
    `fn key(q: u32) -> u32 { if (q >= P.n) { return 0xffffffffu; } return bitcast<u32>(idx[q]); }
fn less(a: u32, b: u32) -> bool { let ka = key(a); let kb = key(b); return ka < kb || (ka == kb && a < b); }
@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {
  let t = ${WG_LINEAR} * ${WG}u + lid;
  if (t >= P.half) { return; }
  let lo = (t / P.j) * 2u * P.j + (t % P.j);
  let hi = lo + P.j;
  let asc = (lo & P.k) == 0u;
  let a = perm[lo];
  let b = perm[hi];
  if (less(b, a) == asc) { perm[lo] = b; perm[hi] = a; }
}
`;
  for (let k = 2; k <= np; k *= 2) {
    for (let j = k / 2; j >= 1; j /= 2) {
      const p = new Params()
        .u32('n', n)
        .u32('half', np / 2)
        .u32('j', j)
        .u32('k', k);
      e.dispatch({
        name: 'takeAdjoint_sort',
        key: 'takeAdjoint_sort',
        code: code(p),
        bindings: [
          { buffer: idx.buffer, access: 'read' },
          { buffer: perm.buffer, access: 'read_write' },
        ],
        params: p,
        workgroups: grid1d(np / 2).workgroups,
      });
    }
  }
  return perm;
}

export function takeAdjoint(e: Engine, shape: readonly number[], index: View, src: View, axis: number): GpuStorage {
  const t = wgslType(src.dtype, 'takeAdjoint');
  // bool accumulates as logical or
  const result = src.dtype === 'bool' ? 'select(0u, 1u, acc != 0u)' : 'acc';
  const n = sizeOf(shape);
  const out = allocElems(e, n);
  if (n === 0) return out;
  const nI = sizeOf(index.shape);
  const R = shape[axis];
  const Q = sizeOf(shape.slice(axis + 1));
  const idx = flat(e, index);
  const s = flat(e, src);
  const perm = nI > 0 ? sortPositions(e, idx.s, nI) : allocElems(e, 1);
  const p = new Params().u32('n', n).u32('nI', nI).u32('R', R).u32('Q', Q);
  const code = () =>
    storageBinding(0, 'idx', 'i32', 'read') +
    storageBinding(1, 'perm', 'u32', 'read') +
    storageBinding(2, 'src', t, 'read') +
    storageBinding(3, 'out', t, 'read_write') +
    p.declare(4) +
    `fn key(m: u32) -> u32 { return bitcast<u32>(idx[perm[m]]); }
@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {
  let i = ${WG_LINEAR} * ${WG}u + lid;
  if (i >= P.n) { return; }
  let q = i % P.Q;
  let r = (i / P.Q) % P.R;
  let pre = i / (P.Q * P.R);
  // first sorted slot whose key is >= r
  var lo = 0u;
  var hi = P.nI;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (key(mid) < r) { lo = mid + 1u; } else { hi = mid; }
  }
  var acc: ${t} = ${zero(t)};
  let base = pre * P.nI * P.Q + q;
  for (var m = lo; m < P.nI; m++) {
    let pos = perm[m];
    if (bitcast<u32>(idx[pos]) != r) { break; }
    acc += src[base + pos * P.Q];
  }
  out[i] = ${result};
}
`;
  e.dispatch({
    name: 'takeAdjoint',
    key: `takeAdjoint:${t}:${src.dtype === 'bool'}`,
    code,
    bindings: [
      { buffer: idx.s.buffer, access: 'read' },
      { buffer: perm.buffer, access: 'read' },
      { buffer: s.s.buffer, access: 'read' },
      { buffer: out.buffer, access: 'read_write' },
    ],
    params: p,
    workgroups: grid1d(n).workgroups,
  });
  e.free(perm);
  if (idx.owned) e.free(idx.s);
  if (s.owned) e.free(s.s);
  return out;
}
