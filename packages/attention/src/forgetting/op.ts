import { noGrad } from '@foxgate/autograd';
import { cast, cumsum, full, logicalAnd, logicalOr, lt, reshape, sub, sum, type Tensor, take, tensor } from '@foxgate/tensor';
import { type CpuKernels, defineFusedOp, type HostTensor, type WebGPUKernels } from '../op.js';
import { scoped } from '../scope.js';
import { windowTiles } from '../stats.js';
import { ACP_TILE, diagKeyBlock, type FoxDims, numBlocks, windowKeyBlock } from '../tiles.js';
import { foxBackwardCpu, foxForwardCpu } from './cpu.js';
import { foxReference } from './reference.js';
import { acpBoundsWebGPU, foxBackwardWebGPU, foxDeltaWebGPU, foxDlogfWebGPU, foxForwardWebGPU } from './webgpu.js';

/**
 * Forgetting attention as a fused op. Inputs `[q, k, v, logF | null, delta | null]` (no logF:
 * softmax attention; `delta [B·H]` the ACP threshold, never differentiated); outputs `[o]`, then
 * `computedBlocks` (float32 scalar) when `stats`.
 */
export interface FoxAttrs {
  dims: FoxDims;
  scale: number;
  stats: boolean;
  /** WebGPU: dQ from its own kernel instead of atomic adds (bitwise reproducible gradients). */
  deterministic: boolean;
  /**
   * Sliding window: query position p attends to keys `p − window < j ≤ p` (null: all `j ≤ p`).
   * Key tiles wholly before it are skipped by every kernel, partial ones masked.
   */
  window: number | null;
}

const input = <T>(xs: readonly (T | null)[], i: number): T | null => xs[i] ?? null;

/** The CPU kernels (`cpu.ts`) for the fused op of forgetting or softmax attention. */
export const foxCpuKernels: CpuKernels<FoxAttrs> = {
  forward(inputs, a, { gemm }) {
    const [q, k, v] = inputs as HostTensor[];
    const logF = input(inputs, 3);
    const delta = input(inputs, 4);
    const r = foxForwardCpu(q.data, k.data, v.data, logF?.data ?? null, a.dims, {
      scale: a.scale,
      delta: delta?.data ?? null,
      window: a.window,
      gemm,
    });
    const outputs: HostTensor[] = [{ data: r.o, shape: q.shape }];
    if (a.stats) outputs.push({ data: Float32Array.of(r.computedBlocks), shape: [] });
    return { outputs, saved: [{ data: r.lse, shape: [a.dims.B, a.dims.H, a.dims.Tq] }] };
  },
  backward(gout, saved, inputs, outputs, a, { gemm }) {
    const [q, k, v] = inputs as HostTensor[];
    const logF = input(inputs, 3);
    const delta = input(inputs, 4);
    const dO = gout[0];
    if (!dO) return inputs.map(() => null);
    const { dims } = a;
    const g = foxBackwardCpu(q.data, k.data, v.data, logF?.data ?? null, outputs[0].data, saved[0].data, dO.data, dims, {
      scale: a.scale,
      delta: delta?.data ?? null,
      window: a.window,
      gemm,
    });
    const dlogF = g.dlogF ? { data: g.dlogF, shape: [dims.B, dims.Tk, dims.H] } : null;
    return [{ data: g.dq, shape: q.shape }, { data: g.dk, shape: k.shape }, { data: g.dv, shape: v.shape }, dlogF, null];
  },
};

/** The WebGPU kernels (`webgpu.ts`) for the fused op of forgetting or softmax attention. */
export const foxWebGPUKernels: WebGPUKernels<FoxAttrs> = {
  forward(backend, inputs, a) {
    const [q, k, v] = inputs as Tensor[];
    const logF = input(inputs, 3);
    const delta = input(inputs, 4);
    const { dims } = a;
    const lam = logF ? cumsum(logF, 1) : null;
    const bounds = lam && delta ? acpBoundsWebGPU(backend, lam, delta, dims, a.window) : null;
    const { o, lse2 } = foxForwardWebGPU(backend, q, k, v, lam, bounds, dims, a.scale, a.window);
    const saved = [lse2, ...(lam ? [lam] : []), ...(bounds ? [bounds.first, bounds.lastq] : [])];
    const outputs = [o];
    if (a.stats) outputs.push(bounds ? cast(sum(bounds.count), 'float32') : full([], windowTiles(dims, a.window), { backend }));
    return { outputs, saved };
  },
  backward(backend, gout, saved, inputs, outputs, a) {
    const [q, k, v] = inputs as Tensor[];
    const gated = input(inputs, 3) !== null;
    const acp = input(inputs, 4) !== null;
    const dO = gout[0];
    if (!dO) return inputs.map(() => null);
    const { dims } = a;
    const [lse2, ...rest] = saved;
    const lam = gated ? rest[0] : null;
    const bounds = acp && gated ? { first: rest[1], lastq: rest[2] } : null;
    const rowD = foxDeltaWebGPU(backend, outputs[0], dO, dims);
    const g = foxBackwardWebGPU(backend, q, k, v, dO, lse2, rowD, lam, bounds, dims, a.scale, a.deterministic, a.window);
    const dlogF = g.colsum ? foxDlogfWebGPU(backend, g.rowsum, g.colsum, dims) : null;
    return [g.dq, g.dk, g.dv, dlogF, null];
  },
};

/**
 * Tiles the composed reference computes (the kernels' grid and bounds): a 64×64 tile before the
 * diagonal tile of its query tile is pruned when `Λ(first query) − Λ(last key) < δ`, or when
 * it lies wholly before the sliding window of the tile's first query.
 */
export function referenceStats(
  logF: Tensor | null,
  delta: Tensor | null,
  dims: FoxDims,
  window: number | null,
  backend: Tensor['backend'],
): Tensor {
  const { B, H, Tq, Tk } = dims;
  if (!logF || !delta) return full([], windowTiles(dims, window), { backend });
  const total = windowTiles(dims, null);
  const nqb = numBlocks(Tq, ACP_TILE);
  const nkb = numBlocks(Tk, ACP_TILE);
  const p0 = new Int32Array(nqb);
  const kEnd = new Int32Array(nkb);
  const before = new Uint8Array(nqb * nkb);
  const outside = new Uint8Array(nqb * nkb);
  for (let qb = 0; qb < nqb; qb++) {
    p0[qb] = qb * ACP_TILE + Tk - Tq;
    const diag = diagKeyBlock(qb, dims, ACP_TILE, ACP_TILE);
    for (let kb = 0; kb < diag; kb++) before[qb * nkb + kb] = 1;
    outside.fill(1, qb * nkb, qb * nkb + windowKeyBlock(qb, dims, ACP_TILE, ACP_TILE, window));
  }
  for (let kb = 0; kb < nkb; kb++) kEnd[kb] = Math.min((kb + 1) * ACP_TILE, Tk) - 1;
  const lam = cumsum(logF, 1); // [B,Tk,H]
  const lq = reshape(take(lam, tensor(p0, [nqb], { dtype: 'int32', backend }), 1), [B, nqb, 1, H]);
  const lk = reshape(take(lam, tensor(kEnd, [nkb], { dtype: 'int32', backend }), 1), [B, 1, nkb, H]);
  const d = reshape(delta, [B, 1, 1, H]);
  const tileMask = (m: Uint8Array) => reshape(tensor(m, [nqb, nkb, 1], { dtype: 'bool', backend }), [1, nqb, nkb, 1]);
  const pruned = logicalOr(logicalAnd(lt(sub(lq, lk), d), tileMask(before)), tileMask(outside));
  return sub(full([], total, { backend }), sum(cast(pruned, 'float32')));
}

/** The fused op of forgetting attention (with ACP when a threshold is given). */
export const forgettingOp = defineFusedOp<FoxAttrs>({
  name: 'forgettingAttention',
  reference(inputs, a) {
    const [q, k, v] = inputs as Tensor[];
    const logF = input(inputs, 3);
    const delta = input(inputs, 4);
    const out = foxReference(q, k, v, logF, a.dims, { scale: a.scale, delta, blockQ: ACP_TILE, blockK: ACP_TILE, window: a.window });
    if (!a.stats) return [out];
    return [out, noGrad(() => scoped(() => referenceStats(logF, delta, a.dims, a.window, q.backend)))];
  },
  cpu: foxCpuKernels,
  webgpu: foxWebGPUKernels,
  stats: ['computedBlocks'],
});
