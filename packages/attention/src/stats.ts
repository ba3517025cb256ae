import { noGrad } from '@foxgate/autograd';
import { cast, mul, type Tensor } from '@foxgate/tensor';
import { ACP_TILE, causalBlockCount, type FoxDims } from './tiles.js';

/**
 * Work statistics on the 64×64 ACP grid (`ACP_TILE`): tiles computed out of the tiles a causal
 * kernel visits. Tensors are float32 scalars on the inputs' backend; the caller disposes them.
 */
export interface AttentionStats {
  computedBlocks: Tensor;
  totalBlocks: number;
  /** `computedBlocks / totalBlocks` (1 without pruning). */
  fraction: Tensor;
}

export interface AttentionResult {
  out: Tensor;
  stats: AttentionStats;
}

/** Causal 64×64 tiles over all heads. */
export function totalTiles(dims: FoxDims): number {
  return dims.B * dims.H * causalBlockCount(dims, ACP_TILE, ACP_TILE);
}

/** Causal 64×64 tiles holding a pair of the sliding `window` (all causal tiles without one). */
export function windowTiles(dims: FoxDims, window: number | null): number {
  return dims.B * dims.H * causalBlockCount(dims, ACP_TILE, ACP_TILE, window);
}

export function withStats(out: Tensor, computed: Tensor, dims: FoxDims): AttentionResult {
  const totalBlocks = totalTiles(dims);
  const computedBlocks = computed.dtype === 'float32' ? computed : cast(computed, 'float32');
  const fraction = noGrad(() => mul(computedBlocks, totalBlocks > 0 ? 1 / totalBlocks : 0));
  return { out, stats: { computedBlocks, totalBlocks, fraction } };
}
