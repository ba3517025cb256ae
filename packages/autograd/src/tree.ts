import type { Tensor } from '@foxgate/tensor';
import { isTensor } from './alias.js';

/**
 * A parameter tree: tensors nested in arrays, records (plain objects) and Maps. Other leaves
 * (numbers, strings, booleans, null, undefined) are allowed and passed through unchanged.
 */
export type Params =
  | Tensor
  | number
  | string
  | boolean
  | null
  | undefined
  | readonly Params[]
  | ReadonlyMap<unknown, Params>
  | { readonly [key: string]: Params };

/** Every tensor leaf in tree order (repeats included). */
export function treeLeaves(tree: unknown): Tensor[] {
  const out: Tensor[] = [];
  mapTree(tree, (t) => {
    out.push(t);
    return t;
  });
  return out;
}

/**
 * A tree of the same structure with every tensor leaf replaced by `fn(leaf)`: arrays stay
 * arrays (same positions), Maps stay Maps (same keys), other objects become plain records with
 * the same own enumerable keys; non-tensor leaves are copied as they are.
 */
export function mapTree(tree: unknown, fn: (t: Tensor) => unknown, path: unknown[] = []): unknown {
  if (isTensor(tree)) return fn(tree);
  if (tree === null || typeof tree !== 'object') return tree;
  if (path.includes(tree)) throw new TypeError('valueAndGrad: the parameter tree contains a cycle');
  const inner = [...path, tree];
  if (Array.isArray(tree)) return tree.map((v) => mapTree(v, fn, inner));
  if (tree instanceof Map) return new Map([...tree].map(([k, v]) => [k, mapTree(v, fn, inner)]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tree)) out[k] = mapTree(v, fn, inner);
  return out;
}
