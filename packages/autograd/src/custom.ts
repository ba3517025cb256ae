import { fail, type Tensor, tidy } from '@foxgate/tensor';
import { alias, checkTensor, isTensor } from './alias.js';
import { noGrad } from './nograd.js';
import { activeTape } from './tape.js';

/** What a custom op's forward returns. */
export interface CustomForwardResult {
  /** The op's results (fresh tensors; returning an input is allowed, it is re-wrapped). */
  outputs: Tensor[];
  /**
   * Tensors the backward needs (e.g. softmax statistics). Ownership passes to autograd: they
   * are freed right after the backward that uses them, at tape teardown, or at once when no
   * gradient will be taken. Saving an input or an output is allowed (autograd keeps its own
   * reference, never disposing yours).
   */
  saved?: Tensor[];
}

/** Definition of a custom op (a fused kernel with its own backward). */
export interface CustomOpSpec<A> {
  /** Name used in error messages. */
  name: string;
  /** Computes the outputs. Runs with recording off: nothing inside is differentiated. */
  forward(inputs: readonly Tensor[], attrs: A): CustomForwardResult;
  /**
   * Gradients of the inputs, one per input (null = no gradient / zero), each of the input's
   * shape and dtype. `gradOutputs[i]` is null when no gradient reached output i. Runs with
   * recording off inside a scope that frees its temporaries; it may return its arguments.
   * `inputs` / `outputs` are alive unless `saveInputs` / `saveOutputs` is false (then only
   * their shape and dtype may be read).
   */
  backward(
    gradOutputs: readonly (Tensor | null)[],
    saved: readonly Tensor[],
    inputs: readonly Tensor[],
    outputs: readonly Tensor[],
    attrs: A,
  ): readonly (Tensor | null)[];
  /** Keep the input values alive for backward (default true). */
  saveInputs?: boolean;
  /** Keep the output values alive for backward (default true). */
  saveOutputs?: boolean;
}

/** A custom op: `op(inputs, attrs) → outputs` (attrs may be omitted when `A` allows undefined). */
export type CustomOp<A> = (inputs: readonly Tensor[], ...attrs: undefined extends A ? [attrs?: A] : [attrs: A]) => Tensor[];

/**
 * Registers a fused op with its own backward. Calling it runs `forward` with recording paused
 * and, inside `valueAndGrad` when an input needs a gradient, records one tape node whose VJP is
 * `backward`. Outside a gradient computation it just runs `forward` (and frees `saved`).
 */
export function customOp<A = undefined>(spec: CustomOpSpec<A>): CustomOp<A> {
  if (!spec || typeof spec.name !== 'string' || typeof spec.forward !== 'function' || typeof spec.backward !== 'function') {
    fail('customOp', 'needs { name: string, forward(inputs, attrs), backward(gradOutputs, saved, inputs, outputs, attrs) }');
  }
  const { name } = spec;
  return (inputs: readonly Tensor[], ...rest: [attrs?: A]) => {
    const attrs = rest[0] as A;
    if (!Array.isArray(inputs)) fail(name, 'inputs must be an array of tensors');
    for (let i = 0; i < inputs.length; i++) checkTensor(name, inputs[i], `input ${i}`);
    const tape = activeTape();
    const res = noGrad(() => tidy(() => spec.forward(inputs, attrs))); // temporaries of forward are freed
    if (!res || !Array.isArray(res.outputs) || !res.outputs.every(isTensor)) {
      fail(name, 'forward must return { outputs: Tensor[], saved?: Tensor[] }');
    }
    if (res.saved !== undefined && (!Array.isArray(res.saved) || !res.saved.every(isTensor))) {
      fail(name, 'forward returned a `saved` that is not an array of tensors');
    }
    // outputs must be distinct new tensor objects (an input or a repeat is re-wrapped)
    const seen = new Set<Tensor>(inputs);
    const outputs = res.outputs.map((o) => {
      const t = seen.has(o) ? alias(o) : o;
      seen.add(t);
      return t;
    });
    const visible = new Set<Tensor>([...inputs, ...res.outputs, ...outputs]);
    const saved = (res.saved ?? []).map((s) => (visible.has(s) ? alias(s) : s));
    const recorded =
      tape?.recordCustom({
        name,
        inputs,
        outputs,
        saved,
        saveInputs: spec.saveInputs ?? true,
        saveOutputs: spec.saveOutputs ?? true,
        backward: (g, s, i, o) => spec.backward(g, s, i, o, attrs),
      }) ?? false;
    if (!recorded) for (const s of saved) s.dispose();
    return outputs;
  };
}
