import { contiguous, fail, fmtShape, type Tensor, type TypedArray, tensor, type WebGPUBackend } from '@foxgate/tensor';

/**
 * In-place writes into the KV cache's own buffers. The tensor library is functional (every op
 * returns a fresh tensor), so appending a token to a cache would otherwise copy the whole cache;
 * these helpers write rows into a preallocated buffer instead: on the CPU straight into its typed
 * array, on WebGPU with a small copy kernel whose output is the buffer's storage. Only buffers
 * the cache allocated itself (never shared with a caller) are written.
 */

const WG = 64;

const ROWS_WGSL = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= P.total) { return; }
  let r = i % P.row;
  let bt = i / P.row;
  let t = bt % P.n;
  let b = bt / P.n;
  dst[(b * P.cap + P.at + t) * P.row + r] = src[P.src_offset + i];
}
`;

const SET_WGSL = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= P.count) { return; }
  dst[idx[P.idx_offset + i]] = P.value;
}
`;

const COPY_WGSL = /* wgsl */ `
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg_linear(wid, nwg) * ${WG}u + lid;
  if (i >= P.total) { return; }
  let r = i / P.width;
  let c = i % P.width;
  let d = idx[P.idx_offset + 2u * r];
  let s = idx[P.idx_offset + 2u * r + 1u];
  dst[d * P.width + c] = src[P.src_offset + s * P.width + c];
}
`;

function isGpu(t: Tensor): boolean {
  return 'runKernel' in t.backend;
}

/** The typed array behind a CPU tensor's storage. */
function hostArray(op: string, t: Tensor): TypedArray {
  const data = (t.storage as unknown as { data?: unknown }).data;
  if (!(data instanceof Float32Array || data instanceof Float64Array)) {
    fail(op, `no in-place writes for tensors on the ${t.backend.name} backend`);
  }
  return data;
}

/**
 * `dst[b, at + t, …] = src[b, t, …]` for `dst` `[B, cap, …]` (contiguous, owned by the caller)
 * and `src` `[B, n, …]` with the same trailing dims.
 */
export function writeRows(dst: Tensor, src: Tensor, at: number): void {
  const op = 'writeRows';
  const [B, cap] = dst.shape;
  const n = src.shape[1];
  const row = dst.size / (B * cap);
  if (!dst.isContiguous || src.shape[0] !== B || src.size !== B * n * row || at + n > cap || src.dtype !== dst.dtype) {
    fail(op, `cannot write ${src.dtype}${fmtShape(src.shape)} at row ${at} of ${dst.dtype}${fmtShape(dst.shape)}`);
  }
  if (n === 0) return;
  if (isGpu(dst)) {
    const backend = dst.backend as unknown as WebGPUBackend;
    const total = B * n * row;
    backend.runKernel({
      name: 'kv_cache_write_rows',
      code: ROWS_WGSL,
      inputs: [{ name: 'src', data: src }],
      outputs: [{ name: 'dst', storage: dst.storage, dtype: dst.dtype }],
      uniforms: { u32: { total, row, n, cap, at } },
      workgroups: Math.ceil(total / WG),
    });
    return;
  }
  const out = hostArray(op, dst);
  const c = contiguous(src);
  const from = c.dataSync();
  c.dispose();
  for (let b = 0; b < B; b++) out.set(from.subarray(b * n * row, (b + 1) * n * row), (b * cap + at) * row);
}

/** `dst.flat[i] = value` for every `i` in `indices` (`dst` contiguous, owned by the caller). */
export function setElements(dst: Tensor, indices: readonly number[], value: number): void {
  if (indices.length === 0) return;
  if (!dst.isContiguous) fail('setElements', `dst ${fmtShape(dst.shape)} must be contiguous`);
  if (isGpu(dst)) {
    const backend = dst.backend as unknown as WebGPUBackend;
    const idx = tensor(Uint32Array.from(indices), [indices.length], { dtype: 'uint32', backend: dst.backend });
    backend.runKernel({
      name: 'kv_cache_set',
      code: SET_WGSL,
      inputs: [{ name: 'idx', data: idx }],
      outputs: [{ name: 'dst', storage: dst.storage, dtype: dst.dtype }],
      uniforms: { u32: { count: indices.length }, f32: { value } },
      workgroups: Math.ceil(indices.length / WG),
    });
    idx.dispose();
    return;
  }
  const out = hostArray('setElements', dst);
  for (const i of indices) out[i] = value;
}

/**
 * Row gather-scatter: `dst.row(dstRows[i]) = src.row(srcRows[i])` for rows of `width` elements of
 * the flattened tensors (`dst` contiguous, owned by the caller; `src` any layout). The SPARSEK
 * decoding cache writes new keys and values into free slots and moves rows with it.
 */
export function copyRows(dst: Tensor, dstRows: ArrayLike<number>, src: Tensor, srcRows: ArrayLike<number>, width: number): void {
  const op = 'copyRows';
  const n = dstRows.length;
  if (srcRows.length !== n) fail(op, `${n} destination rows but ${srcRows.length} source rows`);
  if (!dst.isContiguous || src.dtype !== dst.dtype || dst.size % width !== 0 || src.size % width !== 0) {
    fail(op, `cannot copy rows of ${width} from ${src.dtype}${fmtShape(src.shape)} into ${dst.dtype}${fmtShape(dst.shape)}`);
  }
  const dMax = dst.size / width;
  const sMax = src.size / width;
  for (let i = 0; i < n; i++) {
    if (!(dstRows[i] >= 0 && dstRows[i] < dMax && srcRows[i] >= 0 && srcRows[i] < sMax)) {
      fail(op, `row pair ${i} (${dstRows[i]} ← ${srcRows[i]}) is outside ${dMax} destination / ${sMax} source rows`);
    }
  }
  if (n === 0 || width === 0) return;
  if (isGpu(dst)) {
    const backend = dst.backend as unknown as WebGPUBackend;
    const pairs = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      pairs[2 * i] = dstRows[i];
      pairs[2 * i + 1] = srcRows[i];
    }
    const idx = tensor(pairs, [2 * n], { dtype: 'uint32', backend: dst.backend });
    const total = n * width;
    backend.runKernel({
      name: 'kv_cache_copy_rows',
      code: COPY_WGSL,
      inputs: [
        { name: 'src', data: src },
        { name: 'idx', data: idx },
      ],
      outputs: [{ name: 'dst', storage: dst.storage, dtype: dst.dtype }],
      uniforms: { u32: { total, width } },
      workgroups: Math.ceil(total / WG),
    });
    idx.dispose();
    return;
  }
  const out = hostArray(op, dst);
  const c = contiguous(src);
  const from = c.dataSync();
  c.dispose();
  for (let i = 0; i < n; i++) out.set(from.subarray(srcRows[i] * width, (srcRows[i] + 1) * width), dstRows[i] * width);
}
