import { fail, Tensor, type WebGPUBackend, zeros } from '@foxgate/tensor';

/**
 * `‖g‖₂` over many float32 leaves on WebGPU in `leaves + 1` dispatches and no temporaries of a
 * leaf's size: one dispatch per leaf writes the sums of squares of its (at most
 * `MAX_GROUPS`) workgroups into its slots of one shared `partials` buffer, then one workgroup
 * sums every slot and takes the square root. Threads accumulate with Kahan compensation, so a
 * long grid-stride loop over a large leaf stays at float32 rounding.
 */

const WG = 256;
/** Workgroups per leaf (grid-stride loops beyond `MAX_GROUPS · WG` elements or vec4s). */
export const MAX_GROUPS = 1024;

const TREE_SUM = /* wgsl */ `
  sh[lid] = s;
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {
    if (lid < w) { sh[lid] = sh[lid] + sh[lid + w]; }
    workgroupBarrier();
  }`;

/**
 * Per-leaf partial sums of squares: `partials[slot + k]` for workgroup k; with `vec4`, `g` is
 * read four elements at a time (element offset and size multiples of 4).
 */
export const squaresWGSL = (vec4: boolean): string => (vec4 ? SQUARES_VEC4 : SQUARES_SCALAR);

const squaresCode = (vec4: boolean) => /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let blk = wg_linear(wid, nwg);
  var s = 0.0;
  var c = 0.0;
  var i = blk * ${WG}u + lid;
  let stride = P.num_wg * ${WG}u;
  loop {
    if (i >= P.n) { break; }
    let x = g[P.g_offset${vec4 ? ' / 4u' : ''} + i];
    let y = ${vec4 ? 'dot(x, x)' : 'x * x'} - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
    i = i + stride;
  }
  ${TREE_SUM}
  if (lid == 0u) { partials[P.slot + blk] = sh[0]; }
}
`;
const SQUARES_SCALAR = squaresCode(false);
const SQUARES_VEC4 = squaresCode(true);

/** One workgroup: `norm[0] = √Σ partials`. */
export const NORM_WGSL = /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var c = 0.0;
  for (var i = lid; i < P.count; i = i + ${WG}u) {
    let y = partials[P.partials_offset + i] - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
  }
  ${TREE_SUM}
  if (lid == 0u) { norm[0] = sqrt(sh[0]); }
}
`;

/** Whether every leaf is float32 on one WebGPU backend (then {@link globalNormWebGPU} applies). */
export function fitsNormKernel(leaves: readonly Tensor[]): boolean {
  const b = leaves[0]?.backend;
  return b !== undefined && b.name === 'webgpu' && 'runKernel' in b && leaves.every((t) => t.dtype === 'float32' && t.backend === b);
}

/** `‖leaves‖₂` as a float32 scalar tensor (shape `[]`) on the leaves' WebGPU backend. */
export function globalNormWebGPU(leaves: readonly Tensor[]): Tensor {
  if (!fitsNormKernel(leaves)) fail('globalNorm', 'the WebGPU kernel takes float32 leaves on one WebGPU backend');
  const backend = leaves[0].backend as unknown as WebGPUBackend;
  const vec4 = leaves.map((t) => t.size % 4 === 0 && t.offset % 4 === 0);
  const groups = leaves.map((t, k) => Math.min(MAX_GROUPS, Math.ceil(t.size / (vec4[k] ? 4 : 1) / WG)));
  const count = groups.reduce((a, b) => a + b, 0);
  if (count === 0) return zeros([], { backend: leaves[0].backend });
  let partials: Tensor | null = null;
  let slot = 0;
  try {
    for (let k = 0; k < leaves.length; k++) {
      if (groups[k] === 0) continue;
      const [s] = backend.runKernel({
        name: 'grad_norm_squares',
        code: squaresWGSL(vec4[k]),
        inputs: [{ name: 'g', data: leaves[k], elem: vec4[k] ? 'vec4<f32>' : undefined }],
        // the first leaf's dispatch allocates the shared buffer; the others write into it
        outputs: [
          partials
            ? { name: 'partials', storage: partials.storage, dtype: 'float32' }
            : { name: 'partials', size: count, dtype: 'float32' },
        ],
        uniforms: { u32: { n: vec4[k] ? leaves[k].size / 4 : leaves[k].size, slot } },
        workgroups: groups[k],
      });
      partials ??= new Tensor(backend, s, 'float32', [count]);
      slot += groups[k];
    }
    const [norm] = backend.runKernelTensors({
      name: 'grad_norm',
      code: NORM_WGSL,
      inputs: [{ name: 'partials', data: partials as Tensor }],
      outputs: [{ name: 'norm', shape: [], dtype: 'float32' }],
      uniforms: { u32: { count } },
      workgroups: 1,
    });
    return norm;
  } finally {
    partials?.dispose();
  }
}
