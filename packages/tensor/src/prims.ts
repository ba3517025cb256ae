import type { BinaryOp, UnaryOp } from './backend.js';
import type { DType } from './dtype.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

/**
 * Every differentiable-path primitive the frontend records (sources such as fill, upload and
 * random create constants and are not recorded), with its parameters. This one map is the closed
 * primitive set: `@foxgate/autograd` keys its VJP table on it (`{[P in Prim]: Rule<P>}`), so a
 * primitive without a rule is a compile error there.
 */
export type PrimParams = { [K in UnaryOp]: Record<string, never> } & {
  [K in BinaryOp]: Record<string, never>;
} & {
  where: Record<string, never>;
  cast: { dtype: DType };
  sum: { axes: number[]; keepdims: boolean };
  max: { axes: number[]; keepdims: boolean };
  min: { axes: number[]; keepdims: boolean };
  argmax: { axis: number; keepdims: boolean };
  matmul: Record<string, never>;
  cumsum: { axis: number; reverse: boolean };
  softmax: { axis: number };
  take: { axis: number };
  takeAdjoint: { axis: number; shape: Shape };
  concat: { axis: number };
  // views and copies
  reshape: { shape: Shape };
  permute: { perm: number[] };
  expand: { shape: Shape };
  slice: { starts: number[]; stops: number[]; steps: number[] };
  contiguous: Record<string, never>;
};
export type Prim = keyof PrimParams;

/** What the frontend reports for each primitive it runs while a recorder is installed. */
export interface OpRecord<P extends Prim = Prim> {
  prim: P;
  inputs: readonly Tensor[];
  output: Tensor;
  params: PrimParams[P];
}

export type Recorder = (rec: OpRecord) => void;

let recorder: Recorder | null = null;

/**
 * Installs the function that sees every primitive run from now on (autograd's tape); returns
 * the previous one so callers can nest and restore.
 */
export function setRecorder(r: Recorder | null): Recorder | null {
  const prev = recorder;
  recorder = r;
  return prev;
}

export function getRecorder(): Recorder | null {
  return recorder;
}

/** Reports a primitive to the recorder, if any. Used by every frontend op. */
export function record<P extends Prim>(prim: P, inputs: readonly Tensor[], output: Tensor, params: PrimParams[P]): Tensor {
  if (recorder) recorder({ prim, inputs, output, params } as OpRecord);
  return output;
}
