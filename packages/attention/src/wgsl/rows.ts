import { cast, contiguousStrides, type KernelInput, type Tensor } from '@foxgate/tensor';
import { comp, dv, lines } from './util.js';

/**
 * How a kernel reads the rows of a `[B,T,H,D]` tensor: with `D` a compile-time constant (vec4
 * bindings when D is a multiple of 4), or, `dynamic`, with the head dim from the uniform `P.Dr`
 * and scalar bindings (`D` is then the largest head dim the kernel takes).
 */
export interface RowLayout {
  D: number;
  dynamic?: boolean;
}

/** Whether rows are bound as `vec4<f32>`. */
export function vec4Rows(l: RowLayout): boolean {
  return l.dynamic !== true && l.D % 4 === 0;
}

/**
 * `fn <fn>(b, t, h, c) -> vec4<f32>` (or, `write`, `fn <fn>(b, t, h, c, v)`): vec4 group `c` of
 * row (b, t, h) of the `[B,T,H,D]` binding `buf` with `T` rows per batch (a WGSL expression);
 * scalar bindings read and write the group element by element, zero past D.
 */
export function rowAccessor(l: RowLayout, buf: string, T: string, fn: string, write: boolean): string {
  const dyn = l.dynamic === true;
  const D = dyn ? 'P.Dr' : `${l.D}u`;
  const vec = vec4Rows(l);
  const base0 = write ? '' : vec ? ` + P.${buf}_offset / 4u` : ` + P.${buf}_offset`;
  const idx = (unit: string) => `((b * ${T} + t) * P.H + h) * ${unit}${base0}`;
  if (vec) {
    return write
      ? `fn ${fn}(b: u32, t: u32, h: u32, c: u32, v: vec4<f32>) { ${buf}[${idx(`${dv(l.D)}u`)} + c] = v; }`
      : `fn ${fn}(b: u32, t: u32, h: u32, c: u32) -> vec4<f32> { return ${buf}[${idx(`${dv(l.D)}u`)} + c]; }`;
  }
  const base = `let base = ${idx(D)} + c * 4u;`;
  if (write) {
    return `fn ${fn}(b: u32, t: u32, h: u32, c: u32, v: vec4<f32>) {
  ${base}
  ${buf}[base] = v.x;
${lines(3, (x) => `  if (c * 4u + ${x + 1}u < ${D}) { ${buf}[base + ${x + 1}u] = v.${comp[x + 1]}; }`)}
}`;
  }
  return `fn ${fn}(b: u32, t: u32, h: u32, c: u32) -> vec4<f32> {
  ${base}
  var r = vec4<f32>(${buf}[base], 0.0, 0.0, 0.0);
${lines(3, (x) => `  if (c * 4u + ${x + 1}u < ${D}) { r.${comp[x + 1]} = ${buf}[base + ${x + 1}u]; }`)}
  return r;
}`;
}

/**
 * The kernel input for a `[B,T,H,D]` tensor read through `rowAccessor`. vec4 bindings need an
 * element offset that is a multiple of 4: dense views at other offsets are copied (into `temps`,
 * which the caller disposes after the dispatch); strided views are copied by `runKernel` anyway.
 */
export function rowInput(name: string, x: Tensor, l: RowLayout, temps: Tensor[]): KernelInput {
  if (!vec4Rows(l)) return { name, data: x };
  let t = x;
  const dense = contiguousStrides(x.shape);
  const strided = x.strides.some((s, i) => x.shape[i] !== 1 && s !== dense[i]);
  if (!strided && x.offset % 4 !== 0) {
    t = cast(x, 'float32');
    temps.push(t);
  }
  return { name, data: t, elem: 'vec4<f32>' };
}

/** The element type of a `[B,T,H,D]` output written through `rowAccessor`. */
export function rowElem(l: RowLayout): string | undefined {
  return vec4Rows(l) ? 'vec4<f32>' : undefined;
}
