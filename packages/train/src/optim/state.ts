import { checkSameTree, dottedPath, stopGradient, treeLeaves, zipTree } from '@foxgate/autograd';
import { fail, fmtShape, isTensor, type Tensor, tensor, tidy } from '@foxgate/tensor';
import type { AdamWState } from '../adamw.js';

/**
 * AdamW state ↔ named tensors, for checkpoints (safetensors files hold named tensors; the step
 * is a number to keep beside them, e.g. in the file's metadata).
 */

/** `m.<path>` / `v.<path>` names of every tensor leaf of `tree`, in tree order; duplicates fail. */
function names(op: string, tree: unknown, prefix: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  zipTree([tree], [], (_leaves, path) => {
    const name = dottedPath(path);
    if (seen.has(name)) fail(op, `two leaves are both named ${JSON.stringify(name)} (rename a key that holds a dot)`);
    seen.add(name);
    out.push(`${prefix}${name}`);
    return [];
  });
  return out;
}

/**
 * The moments of an AdamW state by name: `${prefix}m.<path>` and `${prefix}v.<path>` for every
 * tensor leaf, where `<path>` is the leaf's dotted path in the parameter tree
 * (`m.model.layers.0.attn.q_proj.weight`; array indices and Map keys are path parts). The map
 * holds the state's own tensors (no copies): write them out, but dispose the state, not the map.
 * The step is `state.step`; store it beside the tensors and give it back to
 * {@link adamwStateFromTensors}.
 */
export function adamwStateTensors<P>(state: AdamWState<P>, prefix = ''): Map<string, Tensor> {
  const op = 'adamwStateTensors';
  if (state === null || typeof state !== 'object') fail(op, `state must be an AdamW state, got ${String(state)}`);
  checkSameTree(op, state.m, 'state.m', state.v, 'state.v');
  const out = new Map<string, Tensor>();
  for (const [which, tree] of [
    ['m', state.m],
    ['v', state.v],
  ] as const) {
    const ts = treeLeaves(tree);
    names(op, tree, `${prefix}${which}.`).forEach((name, i) => {
      out.set(name, ts[i]);
    });
  }
  return out;
}

/**
 * The inverse of {@link adamwStateTensors}: an AdamW state for `params` from named moments
 * (`${prefix}m.<path>`, `${prefix}v.<path>` for every tensor leaf of `params`) and the step.
 * Each moment must have its parameter's shape and dtype; one on the CPU is copied to the
 * parameter's backend (a checkpoint read on the host, parameters on WebGPU), one on the same
 * backend is aliased (no copy). The returned state's tensors are new and belong to the caller,
 * so the loaded tensors can be disposed. Names outside `${prefix}m.` / `${prefix}v.` are
 * ignored (the same file may hold the parameters); an unknown, missing or mismatched moment is
 * a `FoxgateError` naming it.
 */
export function adamwStateFromTensors<P>(
  params: P,
  tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
  step: number,
  prefix = '',
): AdamWState<P> {
  const op = 'adamwStateFromTensors';
  if (!(Number.isInteger(step) && step >= 0)) fail(op, `step must be an integer ≥ 0, got ${String(step)}`);
  checkSameTree(op, params, 'params', params, 'params');
  const byName: ReadonlyMap<string, Tensor> = tensors instanceof Map ? tensors : new Map(Object.entries(tensors ?? {}));
  const expected = new Set<string>();
  for (const which of ['m', 'v']) for (const n of names(op, params, `${prefix}${which}.`)) expected.add(n);
  for (const name of byName.keys()) {
    const ours = name.startsWith(`${prefix}m.`) || name.startsWith(`${prefix}v.`);
    if (ours && !expected.has(name)) fail(op, `${JSON.stringify(name)} names no parameter`);
  }
  const pick = (which: 'm' | 'v') =>
    zipTree([params], [0], ([p], path) => {
      const name = `${prefix}${which}.${dottedPath(path)}`;
      const t = byName.get(name);
      if (t === undefined) fail(op, `${JSON.stringify(name)} is missing`);
      if (!isTensor(t)) fail(op, `${JSON.stringify(name)} is not a Tensor`);
      if (t.isDisposed) fail(op, `${JSON.stringify(name)} has been disposed`);
      if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
        fail(op, `${JSON.stringify(name)} has shape ${fmtShape(t.shape)} but its parameter has ${fmtShape(p.shape)}`);
      }
      if (t.dtype !== p.dtype) fail(op, `${JSON.stringify(name)} has dtype ${t.dtype} but its parameter has ${p.dtype}`);
      if (t.backend === p.backend) return [stopGradient(t)];
      if (!t.backend.readSync) fail(op, `${JSON.stringify(name)} lives on ${t.backend.name}; load it on the CPU or on ${p.backend.name}`);
      return [tensor(t.dataSync(), p.shape, { dtype: p.dtype, backend: p.backend })];
    })[0] as P;
  return tidy(() => ({ step, m: pick('m'), v: pick('v') }));
}
