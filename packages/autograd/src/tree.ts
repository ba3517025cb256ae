import { fail, fmtShape, type Tensor } from '@foxgate/tensor';
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

// ---- several trees of one structure at once (params, grads, optimizer state), with paths

type Kind = 'tensor' | 'array' | 'map' | 'record' | 'leaf';

function kindOf(v: unknown): Kind {
  if (isTensor(v)) return 'tensor';
  if (v === null || typeof v !== 'object') return 'leaf';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Map) return 'map';
  return 'record';
}

/** `a Tensor`, `an array`, `a number`, `null`, ... for messages. */
function describe(v: unknown): string {
  switch (kindOf(v)) {
    case 'tensor':
      return 'a Tensor';
    case 'array':
      return 'an array';
    case 'map':
      return 'a Map';
    case 'record':
      return 'a record';
    default:
      if (v === null || v === undefined) return String(v);
      return `a ${typeof v}`;
  }
}

/** One step of a path: a record key, an array index or a Map key. */
export type PathSegment = { key: string } | { index: number } | { mapKey: unknown };

/** `root.layers[1].w`, `root["odd key"]`, `root.blocks.get("a")`. */
export function fmtPath(root: string, path: readonly PathSegment[]): string {
  let s = root;
  for (const seg of path) {
    if ('index' in seg) s += `[${seg.index}]`;
    else if ('key' in seg) s += /^[A-Za-z_$][\w$]*$/.test(seg.key) ? `.${seg.key}` : `[${JSON.stringify(seg.key)}]`;
    else s += `.get(${typeof seg.mapKey === 'string' ? JSON.stringify(seg.mapKey) : String(seg.mapKey)})`;
  }
  return s;
}

/**
 * The dotted name of a path, as checkpoints name tensors (`model.layers.0.attn.q_proj.weight`):
 * record keys, array indices and Map keys (as `String(key)`) joined with dots.
 */
export function dottedPath(path: readonly PathSegment[]): string {
  return path.map((seg) => ('index' in seg ? String(seg.index) : 'key' in seg ? seg.key : String(seg.mapKey))).join('.');
}

/**
 * Checks that `other` (named `otherName`, e.g. `grads`) has the structure of `ref` (named
 * `refName`): the same container kinds, record keys, array lengths and Map keys, and at every
 * tensor of `ref` a live tensor of the same shape, dtype and backend. Non-tensor leaves of `ref`
 * need a non-tensor, non-container leaf in `other` (its value is not compared). Throws one
 * `FoxgateError` line `op: ...` naming both paths.
 */
export function checkSameTree(op: string, ref: unknown, refName: string, other: unknown, otherName: string): void {
  const ancestors = new Set<unknown>();
  const walk = (a: unknown, b: unknown, path: PathSegment[]): void => {
    const here = () => fmtPath(refName, path);
    const there = () => fmtPath(otherName, path);
    const ka = kindOf(a);
    const kb = kindOf(b);
    if (ka !== kb) fail(op, `${there()} is ${describe(b)} but ${here()} is ${describe(a)}`);
    if (ka === 'leaf') return;
    if (ka === 'tensor') {
      const ta = a as Tensor;
      const tb = b as Tensor;
      if (ta.isDisposed) fail(op, `${here()} has been disposed`);
      if (tb.isDisposed) fail(op, `${there()} has been disposed`);
      if (ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i])) {
        fail(op, `${there()} has shape ${fmtShape(tb.shape)} but ${here()} has ${fmtShape(ta.shape)}`);
      }
      if (ta.dtype !== tb.dtype) fail(op, `${there()} has dtype ${tb.dtype} but ${here()} has ${ta.dtype}`);
      if (ta.backend !== tb.backend) fail(op, `${there()} lives on ${tb.backend.name} but ${here()} on ${ta.backend.name}`);
      return;
    }
    if (ancestors.has(a)) fail(op, `${here()} contains a cycle`);
    ancestors.add(a);
    if (ka === 'array') {
      const xa = a as readonly unknown[];
      const xb = b as readonly unknown[];
      if (xa.length !== xb.length) fail(op, `${there()} has ${xb.length} entries but ${here()} has ${xa.length}`);
      for (let i = 0; i < xa.length; i++) walk(xa[i], xb[i], [...path, { index: i }]);
    } else if (ka === 'map') {
      const xa = a as ReadonlyMap<unknown, unknown>;
      const xb = b as ReadonlyMap<unknown, unknown>;
      for (const [k, v] of xa) {
        const p = [...path, { mapKey: k }];
        if (!xb.has(k)) fail(op, `${fmtPath(otherName, p)} is missing but ${fmtPath(refName, p)} is ${describe(v)}`);
        walk(v, xb.get(k), p);
      }
      for (const [k, v] of xb) {
        const p = [...path, { mapKey: k }];
        if (!xa.has(k)) fail(op, `${fmtPath(otherName, p)} is ${describe(v)} but ${fmtPath(refName, p)} is missing`);
      }
    } else {
      const xa = a as Record<string, unknown>;
      const xb = b as Record<string, unknown>;
      for (const k of Object.keys(xa)) {
        const p = [...path, { key: k }];
        if (!Object.hasOwn(xb, k)) fail(op, `${fmtPath(otherName, p)} is missing but ${fmtPath(refName, p)} is ${describe(xa[k])}`);
        walk(xa[k], xb[k], p);
      }
      for (const k of Object.keys(xb)) {
        const p = [...path, { key: k }];
        if (!Object.hasOwn(xa, k)) fail(op, `${fmtPath(otherName, p)} is ${describe(xb[k])} but ${fmtPath(refName, p)} is missing`);
      }
    }
    ancestors.delete(a);
  };
  walk(ref, other, []);
}

/**
 * Maps `trees` (all of the structure of `trees[0]`, checked beforehand) to `outputs.length` new
 * trees of that structure: at each tensor position `fn(leaves, path)` gives the output tensors;
 * at each non-tensor leaf, output `k` copies the leaf of `trees[outputs[k]]`. Arrays stay
 * arrays, Maps stay Maps, other objects become plain records with the same own enumerable keys.
 * `path` is the leaf's position, valid during the call only (format it with `fmtPath` or
 * `dottedPath` there).
 */
export function zipTree(
  trees: readonly unknown[],
  outputs: readonly number[],
  fn: (leaves: Tensor[], path: readonly PathSegment[]) => Tensor[],
): unknown[] {
  const path: PathSegment[] = [];
  const walk = (nodes: unknown[]): unknown[] => {
    const first = nodes[0];
    switch (kindOf(first)) {
      case 'tensor':
        return fn(nodes as Tensor[], path);
      case 'leaf':
        return outputs.map((k) => nodes[k]);
      case 'array': {
        const outs = outputs.map(() => [] as unknown[]);
        for (let i = 0; i < (first as unknown[]).length; i++) {
          path.push({ index: i });
          const r = walk(nodes.map((n) => (n as unknown[])[i]));
          path.pop();
          for (let k = 0; k < r.length; k++) outs[k].push(r[k]);
        }
        return outs;
      }
      case 'map': {
        const outs = outputs.map(() => new Map<unknown, unknown>());
        for (const key of (first as Map<unknown, unknown>).keys()) {
          path.push({ mapKey: key });
          const r = walk(nodes.map((n) => (n as Map<unknown, unknown>).get(key)));
          path.pop();
          for (let k = 0; k < r.length; k++) outs[k].set(key, r[k]);
        }
        return outs;
      }
      default: {
        const outs = outputs.map(() => ({}) as Record<string, unknown>);
        for (const key of Object.keys(first as object)) {
          path.push({ key });
          const r = walk(nodes.map((n) => (n as Record<string, unknown>)[key]));
          path.pop();
          for (let k = 0; k < r.length; k++) outs[k][key] = r[k];
        }
        return outs;
      }
    }
  };
  return walk([...trees]);
}
