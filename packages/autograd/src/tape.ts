import { add, fail, fmtShape, getRecorder, isFloat, type OpRecord, type Prim, type Recorder, type Tensor, tidy } from '@foxgate/tensor';
import { alias } from './alias.js';
import { noGrad } from './nograd.js';
import { type NodeValues, type Rule, rules } from './rules.js';

/** A recorded primitive; `inputs`/`output` are the forward tensors (identity and shapes). */
interface PrimNode {
  kind: 'prim';
  rec: OpRecord;
  needs: boolean[];
  /** Aliases of the inputs / output the rule reads (null where not saved). */
  savedInputs: (Tensor | null)[];
  savedOutput: Tensor | null;
}

/** What a custom op hands to its backward (see `customOp`). */
export interface CustomNodeSpec {
  name: string;
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  /** Tensors owned by the node (freed after its backward or at teardown). */
  saved: Tensor[];
  saveInputs: boolean;
  saveOutputs: boolean;
  backward(
    gradOutputs: (Tensor | null)[],
    saved: readonly Tensor[],
    inputs: readonly Tensor[],
    outputs: readonly Tensor[],
  ): readonly (Tensor | null)[];
}

interface CustomNode {
  kind: 'custom';
  spec: CustomNodeSpec;
  needs: boolean[];
  inputVals: Tensor[];
  outputVals: Tensor[];
  /** Aliases made by the tape (disposed with the node). */
  owned: Tensor[];
}

type Node = PrimNode | CustomNode;

/** Tapes by the recorder function they installed (so custom ops find the active one). */
const tapes = new WeakMap<Recorder, Tape>();

/** The tape recording right now, if any (null inside `noGrad` or outside `valueAndGrad`). */
export function activeTape(): Tape | null {
  const r = getRecorder();
  return r ? (tapes.get(r) ?? null) : null;
}

/**
 * One forward/backward pass: records the primitives that depend on the watched tensors, keeps
 * aliases of the values their rules need, and runs the rules in reverse, accumulating
 * gradients and freeing everything as soon as it is consumed.
 */
export class Tape {
  readonly nodes: Node[] = [];
  /** Tensors whose gradient is wanted or that depend on one. */
  readonly requires = new Set<Tensor>();
  /** Every tensor an op produced while recording (freed after the forward pass). */
  readonly created: Tensor[] = [];
  /** Accumulated gradients, by forward tensor. */
  readonly grads = new Map<Tensor, Tensor>();
  readonly recorder: Recorder = (rec) => this.onRecord(rec);

  constructor() {
    tapes.set(this.recorder, this);
  }

  watch(t: Tensor): void {
    if (isFloat(t.dtype)) this.requires.add(t);
  }

  private onRecord(rec: OpRecord): void {
    this.created.push(rec.output);
    const rule = rules[rec.prim] as Rule<Prim> | undefined;
    if (!rule) fail('valueAndGrad', `no VJP rule for the primitive '${rec.prim}' (is @foxgate/autograd older than @foxgate/tensor?)`);
    if (rule.nondiff || !isFloat(rec.output.dtype)) return;
    const needs = rec.inputs.map((t) => this.requires.has(t));
    if (!needs.some(Boolean)) return;
    const save = rule.save(needs, rec.params);
    const savedInputs = rec.inputs.map((t, i) => (save.inputs.includes(i) ? alias(t) : null));
    const savedOutput = save.output ? alias(rec.output) : null;
    this.nodes.push({ kind: 'prim', rec, needs, savedInputs, savedOutput });
    this.requires.add(rec.output);
  }

  /** Records a custom op call; returns false (and records nothing) when no input needs a gradient. */
  recordCustom(spec: CustomNodeSpec): boolean {
    this.created.push(...spec.outputs);
    const needs = spec.inputs.map((t) => this.requires.has(t));
    if (!needs.some(Boolean)) return false;
    const owned: Tensor[] = [];
    const keepAll = (ts: readonly Tensor[]) =>
      ts.map((t) => {
        const a = alias(t);
        owned.push(a);
        return a;
      });
    const inputVals = spec.saveInputs ? keepAll(spec.inputs) : [...spec.inputs];
    const outputVals = spec.saveOutputs ? keepAll(spec.outputs) : [...spec.outputs];
    this.nodes.push({ kind: 'custom', spec, needs, inputVals, outputVals, owned });
    for (const o of spec.outputs) if (isFloat(o.dtype)) this.requires.add(o);
    return true;
  }

  /** Frees every tensor produced during the forward pass except `keep` (the tape holds aliases of what backward needs). */
  releaseForward(keep: ReadonlySet<Tensor>): void {
    for (const t of this.created) if (!keep.has(t) && !t.isDisposed) t.dispose();
    this.created.length = 0;
  }

  /** Runs every rule in reverse from `seed` = d(loss)/d(loss). Call with recording off. */
  backward(loss: Tensor, seed: Tensor): void {
    this.grads.set(loss, seed);
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      try {
        if (node.kind === 'prim') this.backPrim(node);
        else this.backCustom(node);
      } finally {
        releaseNode(node);
      }
    }
    this.nodes.length = 0;
  }

  /** Frees whatever the nodes still hold (after an error, or after backward). */
  teardown(): void {
    for (const n of this.nodes) releaseNode(n);
    this.nodes.length = 0;
  }

  private takeGrad(t: Tensor): Tensor | null {
    const g = this.grads.get(t);
    if (!g) return null;
    this.grads.delete(t);
    return g;
  }

  private backPrim(node: PrimNode): void {
    const { rec } = node;
    const g = this.takeGrad(rec.output);
    if (!g) return;
    const rule = rules[rec.prim] as Rule<Prim>;
    const view: NodeValues<Prim> = {
      inputs: rec.inputs.map((t, i) => node.savedInputs[i] ?? t),
      output: node.savedOutput ?? rec.output,
      params: rec.params,
      needs: node.needs,
    };
    let outs: (Tensor | null)[];
    try {
      outs = noGrad(() => tidy(() => rule.vjp(g, view)));
    } catch (e) {
      g.dispose();
      throw e;
    }
    const forbidden = new Set<Tensor>([...rec.inputs, rec.output, ...view.inputs, view.output]);
    const bug = (msg: string): never => {
      throw new Error(`autograd: the '${rec.prim}' rule ${msg} (a bug in @foxgate/autograd)`);
    };
    this.distribute(bug, rec.inputs, node.needs, outs, [g], forbidden);
  }

  private backCustom(node: CustomNode): void {
    const { spec } = node;
    const gOuts = spec.outputs.map((o) => this.takeGrad(o));
    const given = gOuts.filter((g): g is Tensor => g !== null);
    if (given.length === 0) return;
    let outs: readonly (Tensor | null)[];
    try {
      outs = noGrad(() => tidy(() => spec.backward(gOuts, spec.saved, node.inputVals, node.outputVals)));
      if (!Array.isArray(outs) || outs.length !== spec.inputs.length) {
        fail(
          spec.name,
          `backward must return an array of ${spec.inputs.length} gradients (Tensor or null), one per input; got ${Array.isArray(outs) ? `${outs.length} entries` : typeof outs}`,
        );
      }
    } catch (e) {
      for (const g of given) g.dispose();
      throw e;
    }
    const forbidden = new Set<Tensor>([...spec.inputs, ...spec.outputs, ...spec.saved, ...node.inputVals, ...node.outputVals]);
    this.distribute((msg) => fail(spec.name, `backward ${msg}`), spec.inputs, node.needs, outs, given, forbidden);
  }

  /**
   * Takes ownership of the gradients a rule returned and adds them to the inputs' running
   * sums. `consumed` are the output gradients the rule was given (freed here unless returned
   * as-is); anything in `forbidden` (forward values) or returned twice is re-wrapped as an alias.
   */
  private distribute(
    report: (msg: string) => never,
    inputs: readonly Tensor[],
    needs: readonly boolean[],
    outs: readonly (Tensor | null | undefined)[],
    consumed: readonly Tensor[],
    forbidden: ReadonlySet<Tensor>,
  ): void {
    const claimed = new Set<Tensor>();
    const pending: [Tensor, Tensor][] = [];
    const fresh: Tensor[] = [];
    let error: string | null = null;
    for (let i = 0; i < inputs.length; i++) {
      const gi = outs[i];
      if (gi === null || gi === undefined) continue;
      const reused = forbidden.has(gi) || claimed.has(gi);
      if (!needs[i]) {
        if (!reused && !consumed.includes(gi)) fresh.push(gi);
        continue;
      }
      const x = inputs[i];
      const shapeOk = gi.shape.length === x.shape.length && gi.shape.every((d, k) => d === x.shape[k]);
      if (!shapeOk || gi.dtype !== x.dtype || gi.isDisposed) {
        const what = gi.isDisposed ? 'a disposed tensor' : `a ${gi.dtype}${fmtShape(gi.shape)} gradient`;
        error ??= `returned ${what} for input ${i} of ${x.dtype}${fmtShape(x.shape)}`;
        if (!reused && !consumed.includes(gi) && !gi.isDisposed) fresh.push(gi);
        continue;
      }
      const own = reused ? alias(gi) : gi;
      claimed.add(gi);
      claimed.add(own);
      pending.push([x, own]);
    }
    for (const g of consumed) if (!claimed.has(g)) g.dispose();
    for (const t of fresh) if (!claimed.has(t)) t.dispose();
    if (error !== null) {
      for (const [, own] of pending) own.dispose();
      report(error);
    }
    for (const [x, own] of pending) this.accumulate(x, own);
  }

  private accumulate(x: Tensor, g: Tensor): void {
    const prev = this.grads.get(x);
    if (!prev) {
      this.grads.set(x, g);
      return;
    }
    const s = noGrad(() => add(prev, g));
    prev.dispose();
    g.dispose();
    this.grads.set(x, s);
  }
}

function releaseNode(node: Node): void {
  if (node.kind === 'prim') {
    for (const t of node.savedInputs) t?.dispose();
    node.savedOutput?.dispose();
    node.savedInputs.fill(null);
    node.savedOutput = null;
  } else {
    for (const t of node.owned) t.dispose();
    for (const t of node.spec.saved) t.dispose();
    node.owned.length = 0;
  }
}
