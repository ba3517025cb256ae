import {
  concat,
  dispose,
  fail,
  fmtShape,
  itemSize,
  narrow,
  type RngKeyLike,
  reshape,
  split,
  type Tensor,
  WebGPUBackend,
} from '@foxgate/tensor';
import { checkDim, fmtTensor } from '../check.js';
import { fusedSwiglu } from './fused-swiglu.js';
import { checkLinear, checkLinearParams, type InitOptions, initLinear, type LinearParams } from './linear.js';

/**
 * Parameters of the Transformer++ (LLaMA) MLP in the official FoX layout: `gate_proj` fuses
 * the gate and the up projection (`[2·hidden, dim]`: rows `0..hidden` gate, the rest up).
 */
export interface SwiGLUParams {
  /** `[2·hidden, dim]`. */
  gate_proj: LinearParams;
  /** `[dim, hidden]`. */
  down_proj: LinearParams;
}

export interface SwiGLUInitOptions extends InitOptions {
  /** Standard deviation of the weights; default 0.02. */
  std?: number;
}

/**
 * The MLP width the official code derives from `dim` and the ratio r (4 for LLaMA blocks, 3.5
 * for Pro blocks): `256·ceil(int(dim·r·2/3)/256)`.
 */
export function mlpHidden(dim: number, ratio: number): number {
  return 256 * Math.ceil(Math.trunc((dim * ratio * 2) / 3) / 256);
}

/** Initialises a bias-free SwiGLU MLP `dim → hidden → dim`; `key` is split into (gate_proj, down_proj). */
export function initSwiGLU(key: RngKeyLike, dim: number, hidden: number, opts: SwiGLUInitOptions = {}): SwiGLUParams {
  checkDim('initSwiGLU', 'dim', dim);
  checkDim('initSwiGLU', 'hidden', hidden);
  const [kGate, kDown] = split(key, 2);
  const o = { dtype: opts.dtype, backend: opts.backend, std: opts.std };
  return { gate_proj: initLinear(kGate, dim, 2 * hidden, o), down_proj: initLinear(kDown, hidden, dim, o) };
}

/**
 * `down(silu(gate) ⊙ up)` with `[gate, up] = x·gate_projᵀ` split in halves, for `x` `[..., dim]`
 * → `[..., dim]`, as one fused op (`fusedSwiglu`): no narrow copies, and the backward keeps only
 * `x` and the gate_proj output (it recomputes `silu(gate) ⊙ up` instead of saving it).
 */
export function swiglu(p: SwiGLUParams, x: Tensor): Tensor {
  const op = 'swiglu';
  if (p === null || typeof p !== 'object') fail(op, `p must be {gate_proj, down_proj}, got ${p === null ? 'null' : typeof p}`);
  checkLinear(op, 'p.gate_proj', p.gate_proj, x);
  const [two, dim] = p.gate_proj.weight.shape;
  if (two % 2 !== 0) fail(op, `p.gate_proj.weight ${fmtShape(p.gate_proj.weight.shape)} must have an even first dim (gate and up halves)`);
  const hidden = two / 2;
  const [downIn, downOut] = checkLinearParams(op, 'p.down_proj', p.down_proj);
  if (downIn !== hidden || downOut !== dim) {
    fail(
      op,
      `p.down_proj.weight must be [${dim},${hidden}] for p.gate_proj.weight ${fmtShape(p.gate_proj.weight.shape)}, got ${fmtShape(p.down_proj.weight.shape)}`,
    );
  }
  if (p.down_proj.weight.dtype !== x.dtype)
    fail(op, `dtypes differ: x ${fmtTensor(x)} and p.down_proj.weight ${fmtTensor(p.down_proj.weight)}`);
  if (p.down_proj.weight.backend !== x.backend)
    fail(op, `x lives on ${x.backend.name} but p.down_proj.weight on ${p.down_proj.weight.backend.name}`);
  const limit = x.backend instanceof WebGPUBackend ? x.backend.info.limits.maxStorageBufferBindingSize : Number.POSITIVE_INFINITY;
  return swigluInRowChunks(p, x, limit);
}

/**
 * {@link swiglu} after its checks, with the gate_proj output [rows, 2H] held to `maxBytes` per
 * buffer: past it the rows go through in chunks (a WebGPU binding holds at most
 * `maxStorageBufferBindingSize`, 2 GiB on most adapters: 131,072 tokens × 4096 floats), split
 * evenly (`swigluRowChunks`). Exported for tests.
 */
export function swigluInRowChunks(p: SwiGLUParams, x: Tensor, maxBytes: number): Tensor {
  const run = (xs: Tensor) => fusedSwiglu(xs, p.gate_proj.weight, p.gate_proj.bias ?? null, p.down_proj.weight, p.down_proj.bias ?? null);
  const [two, dim] = p.gate_proj.weight.shape;
  const rows = x.size / dim;
  const perRow = two * itemSize(x.dtype);
  if (rows * perRow <= maxBytes) return run(x);
  const most = Math.floor(maxBytes / perRow);
  if (most < 1)
    fail('swiglu', `one row of the gate_proj output (${perRow} bytes) exceeds the device's storage binding limit (${maxBytes} bytes)`);
  const flat = reshape(x, [rows, dim]);
  const parts: Tensor[] = [];
  let r0 = 0;
  for (const n of swigluRowChunks(rows, most)) {
    const xs = narrow(flat, 0, r0, n);
    parts.push(run(xs));
    xs.dispose();
    r0 += n;
  }
  const joined = concat(parts, 0);
  const out = reshape(joined, x.shape);
  dispose([flat, joined, ...parts]);
  return out;
}

/**
 * Row counts of the chunks: as few as hold at most `most` rows each, of equal size rounded up to
 * a multiple of 256 rows where that still fits (the last one shorter). Equal chunks keep the
 * weight-gradient products long and their K even, which split-K needs: 131,072 rows at most
 * 131,071 go as 2 × 65,536, not 131,071 + 1.
 */
export function swigluRowChunks(rows: number, most: number): number[] {
  const n = Math.ceil(rows / most);
  const chunk = Math.min(most, Math.ceil(Math.ceil(rows / n) / 256) * 256);
  const out: number[] = [];
  for (let r = 0; r < rows; r += chunk) out.push(Math.min(chunk, rows - r));
  return out;
}
