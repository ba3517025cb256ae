import { fail } from './errors.js';

/**
 * Precision of float32 matrix products, like PyTorch's float32 matmul precision:
 * - `'highest'`: f32 products (the default);
 * - `'high'`: f32 tensors, but the products take f16 operands (11 significant bits) with f32
 *   accumulation, on the tensor cores where the WebGPU adapter offers f16 subgroup matrices;
 *   f32 products elsewhere (CPU, adapters without them). Each operand is scaled by a power of two
 *   first, so no finite value overflows f16.
 */
export type MatmulPrecision = 'highest' | 'high';

export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ['highest', 'high'];

/** Per-call options of `matmul`. */
export interface MatmulOptions {
  /** Overrides the backend's precision for this product (WebGPU: `initWebGPU({ precision })`). */
  precision?: MatmulPrecision;
}

/** Validates a precision value given as argument `arg` of `fn` (undefined passes through). */
export function checkPrecision(fn: string, arg: string, value: unknown): MatmulPrecision | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(MATMUL_PRECISIONS as readonly string[]).includes(value))
    fail(fn, `${arg} must be 'highest' or 'high', got ${typeof value === 'string' ? `'${value}'` : String(value)}`);
  return value as MatmulPrecision;
}
