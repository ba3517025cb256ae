/** Comparisons and runs shared by the SPARSEK WebGPU tests and the hardware check (scripts/gpu/check-sparsek.ts). */
import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, mul, sum, type Tensor, tensor } from '@foxgate/tensor';
import { sparsek } from '../../src/sparsek/op.js';

/**
 * `null` when |a − b| ≤ atol + rtol·|b| everywhere (NaN matching NaN), else the first offender;
 * with `keep`, only at elements e whose row `keep(e)` is true.
 */
export function mismatch(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
  keep?: (e: number) => boolean,
): string | null {
  if (a.length !== b.length) return `${what}: length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (keep && !keep(i)) continue;
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    if (!(Math.abs(a[i] - b[i]) <= atol + rtol * Math.abs(b[i]))) return `${what}[${i}]: got ${a[i]}, expected ${b[i]}`;
  }
  return null;
}

/** `p = sparsek(z, k)` and dz of Σ p·g, on `backend` (float64 on the CPU, float32 elsewhere). */
export async function runSparsekGrad(
  z: Float64Array,
  shape: number[],
  k: number | number[],
  g: Float64Array,
  backend: Backend | string,
): Promise<{ p: Float64Array; dz: Float64Array }> {
  const dtype = backend === 'cpu' ? 'float64' : 'float32';
  const zt = tensor(dtype === 'float64' ? z : Float32Array.from(z), shape, { dtype, backend });
  const gt = tensor(dtype === 'float64' ? g : Float32Array.from(g), shape, { dtype, backend });
  const { value, aux, grads } = valueAndGrad((x: Tensor) => {
    const p = sparsek(x, k);
    return { loss: sum(mul(p, gt)), aux: p };
  })(zt);
  const out = { p: Float64Array.from(await aux.data()), dz: Float64Array.from(await grads.data()) };
  for (const t of [zt, gt, value, aux, grads]) t.dispose();
  return out;
}
