import type { RandomKind } from '../../../backend.js';
import type { DType } from '../../../dtype.js';
import { fail } from '../../../errors.js';
import type { Engine, GpuStorage } from '../engine.js';
import { ENTRY_ARGS, Params, storageBinding, WG, WG_LINEAR } from '../wgsl.js';
import { allocElems, grid1d } from './common.js';

/**
 * Philox-4x32-10 streams, a line-by-line WGSL port of `rng/philox.ts`, `rng/normal.ts` and
 * `rng/u32.ts` (see the stream contract there). Everything is u32 arithmetic with a single
 * exact int→float conversion at the end, so the results are bit-identical to `philoxRandom`.
 * One thread computes one Philox block (four consecutive elements).
 */
const PHILOX_WGSL = `
fn mulhi32(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}
fn philox4x32(c0: u32, k0: u32, k1: u32) -> vec4<u32> {
  var x0 = c0;
  var x1 = 0u;
  var x2 = 0u;
  var x3 = 0u;
  var a = k0;
  var b = k1;
  for (var round = 0u; round < 10u; round++) {
    if (round > 0u) {
      a = a + 0x9e3779b9u;
      b = b + 0xbb67ae85u;
    }
    let hi0 = mulhi32(0xd2511f53u, x0);
    let lo0 = 0xd2511f53u * x0;
    let hi1 = mulhi32(0xcd9e8d57u, x2);
    let lo1 = 0xcd9e8d57u * x2;
    x0 = hi1 ^ x1 ^ a;
    x1 = lo1;
    x2 = hi0 ^ x3 ^ b;
    x3 = lo0;
  }
  return vec4<u32>(x0, x1, x2, x3);
}
fn log2FracQ26(y0: u32) -> u32 {
  var y = y0;
  var f = 0u;
  for (var k = 0u; k < 26u; k++) {
    let h = mulhi32(y, y);
    if (h >= 0x80000000u) {
      f = (f << 1u) | 1u;
      y = h;
    } else {
      f = f << 1u;
      y = (h << 1u) | ((y * y) >> 31u);
    }
  }
  return f;
}
fn minusTwoLnQ26(a: u32) -> u32 {
  let n = a | 1u;
  let lz = countLeadingZeros(n);
  let frac = log2FracQ26(n << lz);
  let l = ((lz + 1u) << 26u) - frac;
  return (mulhi32(l, 2977044472u) << 1u) | ((l * 2977044472u) >> 31u);
}
fn sqrtQ26(rq: u32) -> u32 {
  let hi = rq >> 6u;
  let lo = rq << 26u;
  var rem = 0u;
  var root = 0u;
  for (var k = 0u; k < 29u; k++) {
    var pair: u32;
    if (k < 13u) { pair = (hi >> (24u - 2u * k)) & 3u; } else { pair = (lo >> (30u - 2u * (k - 13u))) & 3u; }
    rem = (rem << 2u) | pair;
    let trial = (root << 2u) | 1u;
    root = root << 1u;
    if (rem >= trial) {
      rem = rem - trial;
      root = root | 1u;
    }
  }
  return root;
}
fn cosQuarterQ30(t: u32) -> u32 {
  let s = mulhi32(t, t);
  var v = 506u;
  v = 27060u - mulhi32(s, v);
  v = 987048u - mulhi32(s, v);
  v = 22401992u - mulhi32(s, v);
  v = 272375560u - mulhi32(s, v);
  v = 1324675879u - mulhi32(s, v);
  return 1073741824u - mulhi32(s, v);
}
fn sinQuarterQ30(t: u32) -> u32 {
  let s = mulhi32(t, t);
  var v = 3864u;
  v = 172272u - mulhi32(s, v);
  v = 5026995u - mulhi32(s, v);
  v = 85569306u - mulhi32(s, v);
  v = 693598668u - mulhi32(s, v);
  v = 1686629713u - mulhi32(s, v);
  return mulhi32(t, v);
}
// cos(2π·phi·2^-32) in Q2.30 as (negative, magnitude)
fn cos2piQ30(phi: u32) -> vec2<u32> {
  let q = phi >> 30u;
  let t = phi << 2u;
  let fold = t > 0x80000000u;
  let u = select(t, 0u - t, fold);
  let wantCos = (q & 1u) == 0u;
  var mag: u32;
  if (wantCos != fold) { mag = cosQuarterQ30(u); } else { mag = sinQuarterQ30(u); }
  return vec2<u32>(select(0u, 1u, (q == 1u || q == 2u) && mag != 0u), mag);
}
fn round24(m: u32) -> u32 {
  let lz = countLeadingZeros(m);
  if (lz >= 8u) { return m; }
  let s = 8u - lz;
  return ((m + (1u << (s - 1u))) >> s) << s;
}
fn normalF32(r: u32, phi: u32) -> f32 {
  let c = cos2piQ30(phi);
  let m = round24(mulhi32(r, c.y));
  let z = select(i32(m), -i32(m), c.x == 1u);
  return f32(z) * 5.9604644775390625e-8;
}
`;

export function random(e: Engine, kind: RandomKind, key: readonly [number, number], size: number, dtype: DType): GpuStorage {
  if (dtype === 'float64') fail('random', 'float64 is only supported on the cpu backend');
  if (kind === 'bits' ? dtype !== 'uint32' : dtype !== 'float32') fail('random', `${kind} cannot produce dtype ${dtype}`);
  if (size > 2 ** 32 - 4) fail('random', `size ${size} is too large for the webgpu backend`);
  const out = allocElems(e, size);
  if (size === 0) return out;
  const blocks = Math.ceil(size / 4);
  const p = new Params().u32('n', size).u32('blocks', blocks).u32('k0', key[0]).u32('k1', key[1]);
  const t = kind === 'bits' ? 'u32' : 'f32';
  let body: string;
  if (kind === 'bits') {
    body = '  for (var j = 0u; j < 4u; j++) { if (base + j < P.n) { out[base + j] = w[j]; } }\n';
  } else if (kind === 'uniform') {
    body = '  for (var j = 0u; j < 4u; j++) { if (base + j < P.n) { out[base + j] = f32(w[j] >> 8u) * 5.9604644775390625e-8; } }\n';
  } else {
    body =
      '  for (var q = 0u; q < 2u; q++) {\n' +
      '    if (base + 2u * q >= P.n) { break; }\n' +
      '    let r = sqrtQ26(minusTwoLnQ26(w[2u * q]));\n' +
      '    let phi = w[2u * q + 1u];\n' +
      '    out[base + 2u * q] = normalF32(r, phi);\n' +
      '    if (base + 2u * q + 1u < P.n) { out[base + 2u * q + 1u] = normalF32(r, phi - 0x40000000u); }\n' +
      '  }\n';
  }
  const code = () =>
    PHILOX_WGSL +
    storageBinding(0, 'out', t, 'read_write') +
    p.declare(1) +
    `@compute @workgroup_size(${WG}) fn main(${ENTRY_ARGS}) {\n  let blk = ${WG_LINEAR} * ${WG}u + lid;\n  if (blk >= P.blocks) { return; }\n  let w = philox4x32(blk, P.k0, P.k1);\n  let base = blk * 4u;\n${body}}\n`;
  e.dispatch({
    name: `random_${kind}`,
    key: `random:${kind}`,
    code,
    bindings: [{ buffer: out.buffer, access: 'read_write' }],
    params: p,
    workgroups: grid1d(blocks).workgroups,
  });
  return out;
}
