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

/**
 * The tensor leaves of a tree of records and arrays by dotted path (`model.layers.0.attn.q_proj.weight`):
 * record keys and array indices joined with dots, in tree order. Maps and keys that contain a dot
 * are refused (the path would not read back); non-tensor leaves are skipped.
 */
export function flattenTree(tree: unknown, prefix = ''): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const walk = (node: unknown, path: string): void => {
    if (isTensor(node)) {
      if (out.has(path)) throw new TypeError(`flattenTree: two leaves at '${path}'`);
      out.set(path, node);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    if (node instanceof Map) throw new TypeError(`flattenTree: a Map at '${path || '<root>'}' has no dotted names`);
    const entries: [string, unknown][] = Array.isArray(node) ? node.map((v, i) => [String(i), v]) : Object.entries(node);
    for (const [k, v] of entries) {
      if (k === '' || k.includes('.')) throw new TypeError(`flattenTree: key '${k}' at '${path || '<root>'}' is empty or has a dot`);
      walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(tree, prefix);
  return out;
}

/**
 * The inverse of `flattenTree`: nested records from dotted names, where every level whose keys
 * are exactly `0..n-1` becomes an array (so `model.layers.3.…` is `model.layers[3]`).
 */
export function unflattenTree<T = unknown>(leaves: ReadonlyMap<string, Tensor> | Iterable<[string, Tensor]>): T {
  const root: Record<string, unknown> = {};
  for (const [name, t] of leaves) {
    const parts = name.split('.');
    if (parts.some((p) => p === '')) throw new TypeError(`unflattenTree: bad name '${name}'`);
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = node[parts[i]];
      if (isTensor(next))
        throw new TypeError(`unflattenTree: '${parts.slice(0, i + 1).join('.')}' is both a tensor and a prefix of '${name}'`);
      if (next === undefined) node[parts[i]] = {};
      node = node[parts[i]] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1];
    if (last in node) throw new TypeError(`unflattenTree: '${name}' is given twice or is a prefix of another name`);
    node[last] = t;
  }
  const arrays = (node: unknown): unknown => {
    if (isTensor(node) || node === null || typeof node !== 'object') return node;
    const rec = node as Record<string, unknown>;
    const keys = Object.keys(rec);
    for (const k of keys) rec[k] = arrays(rec[k]);
    const isArray = keys.length > 0 && keys.every((k) => /^(0|[1-9]\d*)$/.test(k)) && keys.every((k) => Number(k) < keys.length);
    return isArray ? keys.map((_, i) => rec[String(i)]) : rec;
  };
  return arrays(root) as T;
}
