import { fail, fmtShape, isTensor, type Tensor } from '@foxgate/tensor';

/**
 * Walking several parameter trees of one structure at once (params, grads, optimizer state):
 * tensors nested in arrays, plain records and Maps, the structures `valueAndGrad` produces.
 * Other leaves (numbers, strings, booleans, null, undefined) are carried along unchanged.
 * Single-tree walks (`mapTree`, `treeLeaves`, `flattenTree`) come from `@foxgate/autograd`;
 * this file holds what that lacks: structure checks whose errors name both paths, and a map over
 * several trees at once that hands each leaf its path.
 */

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
export function zipMap(
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
