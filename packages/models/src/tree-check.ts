import { flattenTree } from '@foxgate/autograd';
import { fail, fmtShape, type Tensor } from '@foxgate/tensor';
import type { ModelConfig } from './config.js';
import { paramShapes } from './shapes.js';

/** What is missing, extra or of the wrong shape among `got` against `expected`, one phrase each. */
export function paramProblems(
  expected: ReadonlyMap<string, readonly number[]>,
  got: ReadonlyMap<string, { shape: readonly number[] }>,
): string[] {
  const missing = [...expected.keys()].filter((n) => !got.has(n));
  const extra = [...got.keys()].filter((n) => !expected.has(n));
  const wrong: string[] = [];
  for (const [n, shape] of expected) {
    const g = got.get(n);
    if (g && (g.shape.length !== shape.length || g.shape.some((d, i) => d !== shape[i]))) {
      wrong.push(`${n} is ${fmtShape(g.shape)}, expected ${fmtShape(shape)}`);
    }
  }
  const list = (xs: string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(', ')} and ${xs.length - 4} more` : xs.join(', '));
  const out: string[] = [];
  if (missing.length) out.push(`missing ${list(missing)}`);
  if (extra.length) out.push(`unexpected ${list(extra)}`);
  if (wrong.length) out.push(list(wrong));
  return out;
}

const checked = new WeakMap<object, ModelConfig>();

/**
 * Throws one line unless `params` holds exactly the config's parameters (names and shapes) as
 * float tensors of one dtype and backend. Remembered per (tree, config), so a training loop pays once.
 */
export function checkParams(op: string, params: unknown, c: ModelConfig): void {
  if (params === null || typeof params !== 'object')
    fail(op, `params must be a parameter tree, got ${params === null ? 'null' : typeof params}`);
  if (checked.get(params) === c) return;
  let flat: Map<string, Tensor>;
  try {
    flat = flattenTree(params);
  } catch (e) {
    fail(op, `params: ${(e as Error).message}`);
  }
  const problems = paramProblems(paramShapes(c), flat);
  if (problems.length) fail(op, `params do not match the '${c.model}' config: ${problems.join('; ')}`);
  const first = flat.values().next().value as Tensor;
  for (const [n, t] of flat) {
    if (t.dtype !== first.dtype || (t.dtype !== 'float32' && t.dtype !== 'float64'))
      fail(op, `params: ${n} is ${t.dtype}, expected ${first.dtype} like the others (float32 or float64)`);
    if (t.backend !== first.backend) fail(op, `params: ${n} lives on ${t.backend.name}, the others on ${first.backend.name}`);
  }
  checked.set(params, c);
}
