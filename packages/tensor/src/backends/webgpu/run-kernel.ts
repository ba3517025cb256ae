import type { Storage, View } from '../../backend.js';
import type { DType } from '../../dtype.js';
import { fail } from '../../errors.js';
import { isContiguous } from '../../shape.js';
import type { Engine, GpuStorage } from './engine.js';
import { checkGpuDType, gpuOf } from './kernels/common.js';
import { copy, fill } from './kernels/elementwise.js';
import { foldGrid, Params, storageBinding, wgslType } from './wgsl.js';

/**
 * # runKernel: the generic launch API for custom WGSL kernels (fused attention, optimizers, ...)
 *
 * ```ts
 * const [o, lse] = backend.runKernel({
 *   name: 'fox_fwd',                          // named in every error message
 *   inputs: [{ name: 'q', data: q }, { name: 'k', data: k }],   // Views (tensors) or Storages
 *   outputs: [{ name: 'o', size: B*T*H*D, dtype: 'float32' }, { name: 'lse', size: B*T*H, dtype: 'float32' }],
 *   uniforms: { u32: { T, D }, f32: { scale } },
 *   workgroups: nBlocks,                      // a number (folded 1-D grid) or [x, y, z]
 *   code: `
 *     @compute @workgroup_size(64)
 *     fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
 *             @builtin(local_invocation_index) lid: u32) {
 *       let blk = wg_linear(wid, nwg);
 *       if (blk >= P.num_wg) { return; }
 *       o[...] = q[...] * P.scale;
 *     }`,
 * });
 * ```
 *
 * What the engine generates in front of `code` (so kernels never declare bindings themselves):
 * - the shared prelude (`f32_inf()`, `f32_nan()`, `is_nan(x)`), and `enable` lines from `enable`
 *   (e.g. `['subgroups']` or `['f16']`; a FoxgateError when the device lacks the feature: check
 *   `backend.features` first and pass a fallback kernel); directives that open `code` itself
 *   (`enable subgroups;`, `diagnostic(off, subgroup_uniformity);`) are moved up there too;
 * - one binding per input, `var<storage, read> NAME: array<T>` in input order, then one per
 *   output, `var<storage, read_write> NAME: array<T>`; T is the dtype's GPU type (float32 → f32,
 *   int32 → i32, uint32 and bool → u32) unless `elem` overrides it (e.g. `'vec4<f32>'`,
 *   `'atomic<u32>'`);
 * - `var<uniform> P` holding the uniforms as scalar fields (`P.T`, `P.scale`; u32 fields first,
 *   then i32, then f32, each in key order), plus `P.num_wg`: the number of workgroups asked
 *   for (a folded grid may launch a few more: skip ids ≥ `P.num_wg`);
 * - `fn wg_linear(wid, nwg) -> u32`: the linear workgroup id over a folded grid.
 *
 * Inputs: a contiguous view is bound as its storage and its element offset is passed as the
 * u32 uniform `<name>_offset` (add it to your indices); a non-contiguous view is first copied
 * to a fresh contiguous storage (offset 0), freed after the dispatch. A bare `Storage` needs
 * `dtype`.
 * Outputs: `{ size, dtype }` allocates a fresh storage (contents undefined unless `zero: true`);
 * `{ storage, dtype }` writes into an existing storage in place (the caller owns that choice).
 * The returned storages are in output order; wrap them as tensors with `runKernelTensors` or
 * `new Tensor(backend, storage, dtype, shape)`. Pipelines are cached by the generated source,
 * so call sites that build `code` once per configuration pay compilation once.
 * Errors (WGSL syntax, binding mismatches, device loss) surface as FoxgateErrors naming `name`
 * at the next op or readback.
 */
export interface KernelInput {
  name: string;
  data: View | Storage;
  /** Required when `data` is a bare Storage. */
  dtype?: DType;
  /** WGSL element type override for the binding, e.g. 'vec4<f32>'. */
  elem?: string;
}

export type KernelOutput =
  | { name: string; size: number; dtype: DType; zero?: boolean; elem?: string }
  | { name: string; storage: Storage; dtype: DType; elem?: string };

export interface KernelSpec {
  name: string;
  code: string;
  inputs: KernelInput[];
  outputs: KernelOutput[];
  uniforms?: { u32?: Record<string, number>; i32?: Record<string, number>; f32?: Record<string, number> };
  workgroups: number | readonly [number, number?, number?];
  enable?: string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A leading WGSL directive of a kernel's code (hoisted above the generated bindings). */
const DIRECTIVE = /^\s*((?:enable|requires|diagnostic)\b[^;]*;)/;

export function runKernel(e: Engine, spec: KernelSpec, features: ReadonlySet<string>): GpuStorage[] {
  const op = spec.name;
  if (!spec.name || typeof spec.code !== 'string') fail('runKernel', 'needs a name and WGSL code');
  const names = new Set<string>();
  const checkName = (n: string) => {
    if (!IDENT.test(n)) fail(op, `binding name '${n}' is not a WGSL identifier`);
    if (names.has(n)) fail(op, `binding name '${n}' is used twice`);
    names.add(n);
  };
  const temps: GpuStorage[] = [];
  const p = new Params();
  const decls: string[] = [];
  const bindings: { buffer: GPUBuffer; access: 'read' | 'read_write' }[] = [];
  const offsets: [string, number][] = [];
  for (const inp of spec.inputs) {
    checkName(inp.name);
    let storage: GpuStorage;
    let dtype: DType;
    if ('storage' in inp.data) {
      const v = inp.data as View;
      dtype = v.dtype;
      checkGpuDType(op, dtype);
      if (isContiguous(v.shape, v.strides)) {
        storage = gpuOf(op, v);
        offsets.push([`${inp.name}_offset`, v.offset]);
      } else {
        storage = copy(e, v);
        temps.push(storage);
        offsets.push([`${inp.name}_offset`, 0]);
      }
    } else {
      if (!inp.dtype) fail(op, `input '${inp.name}' is a bare Storage: give its dtype`);
      dtype = inp.dtype;
      checkGpuDType(op, dtype);
      storage = gpuOf(op, inp.data);
      offsets.push([`${inp.name}_offset`, 0]);
    }
    decls.push(storageBinding(bindings.length, inp.name, inp.elem ?? wgslType(dtype, op), 'read'));
    bindings.push({ buffer: storage.buffer, access: 'read' });
  }
  const outs: GpuStorage[] = [];
  for (const out of spec.outputs) {
    checkName(out.name);
    checkGpuDType(op, out.dtype);
    let s: GpuStorage;
    if ('storage' in out) s = gpuOf(op, out.storage);
    else {
      if (!Number.isInteger(out.size) || out.size < 0) fail(op, `output '${out.name}' needs a non-negative integer size, got ${out.size}`);
      s = out.zero ? fill(e, out.size, 0, out.dtype) : e.alloc(out.size * 4);
    }
    outs.push(s);
    decls.push(storageBinding(bindings.length, out.name, out.elem ?? wgslType(out.dtype, op), 'read_write'));
    bindings.push({ buffer: s.buffer, access: 'read_write' });
  }
  const grid: [number, number, number] =
    typeof spec.workgroups === 'number'
      ? foldGrid(spec.workgroups)
      : [spec.workgroups[0], spec.workgroups[1] ?? 1, spec.workgroups[2] ?? 1];
  const total = typeof spec.workgroups === 'number' ? spec.workgroups : grid[0] * grid[1] * grid[2];
  if (grid.some((g) => !Number.isInteger(g) || g < 0 || g > 65535))
    fail(op, `workgroups ${JSON.stringify(spec.workgroups)} out of range (each ≤ 65535; pass a number to fold)`);
  for (const [n, v] of offsets) if (!names.has(n)) p.u32(n, v);
  p.u32('num_wg', total);
  const u = spec.uniforms ?? {};
  for (const [k, v] of Object.entries(u.u32 ?? {})) p.u32(k, v);
  for (const [k, v] of Object.entries(u.i32 ?? {})) p.i32(k, v);
  for (const [k, v] of Object.entries(u.f32 ?? {})) p.f32(k, v);
  // directives at the top of `code` (enable / requires / diagnostic) must precede the bindings
  const directives: string[] = [];
  let body = spec.code;
  for (let m = DIRECTIVE.exec(body); m; m = DIRECTIVE.exec(body)) {
    directives.push(m[1].trim());
    body = body.slice(m[0].length);
  }
  const enables = [
    ...(spec.enable ?? []),
    ...directives
      .filter((d) => d.startsWith('enable '))
      .flatMap((d) =>
        d
          .slice(7, -1)
          .split(',')
          .map((x) => x.trim()),
      ),
  ];
  for (const ext of enables) {
    // WGSL extensions are spelt with underscores, device features with dashes (chromium_experimental_subgroup_matrix)
    const feature = ext === 'f16' ? 'shader-f16' : ext.replace(/_/g, '-');
    if (!features.has(feature))
      fail(op, `needs the device feature '${feature}' (for \`enable ${ext};\`), which this adapter does not offer`);
  }
  const header = (spec.enable ?? []).map((f) => `enable ${f};\n`).join('') + directives.map((d) => `${d}\n`).join('');
  const code = `${header}${decls.join('')}${p.declare(bindings.length)}fn wg_linear(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + nwg.x * (wid.y + nwg.y * wid.z); }\n${body}\n`;
  if (total > 0) e.dispatch({ name: op, code: () => code, bindings, params: p, workgroups: grid });
  for (const t of temps) e.free(t);
  return outs;
}
