import { customOp } from '@foxgate/autograd';
import {
  add,
  arange,
  cast,
  concat,
  div,
  fail,
  fmtShape,
  getRecorder,
  itemSize,
  logsumexp,
  matmul,
  maximum,
  mul,
  narrow,
  ne,
  reshape,
  softmax,
  sub,
  sum,
  type Tensor,
  takeAdjoint,
  takeAlongAxis,
  tidy,
  transpose,
  unsqueeze,
  where,
} from '@foxgate/tensor';
import { checkFloat, checkTensor, fmtTensor } from '../check.js';

/** Bytes of one chunk's `[C, V]` logits the default chunk size aims at (256 MiB). */
export const LOSS_CHUNK_BYTES = 256 * 2 ** 20;

export interface LinearCrossEntropyOptions {
  /** Targets equal to this carry no loss and no gradient (default −100). */
  ignoreIndex?: number;
  /** 'mean' over counted targets (default; 0 when none counts) or 'sum'. */
  reduction?: 'mean' | 'sum';
  /** Rows per chunk; default: as many as keep one chunk's `[C, V]` logits within 256 MiB. */
  chunkRows?: number;
}

interface Attrs {
  ignoreIndex: number;
  reduction: 'mean' | 'sum';
  chunk: number;
  /** Compute the gradient pieces in the forward (a gradient is being recorded). */
  grads: boolean;
  bias: boolean;
}

/** One chunk's loss sum and target count, and (with `grads`) its pieces of dh, dW and db. */
interface Piece {
  lossSum: Tensor;
  count: Tensor;
  dh?: Tensor;
  dW?: Tensor;
  db?: Tensor;
}

function chunkPiece(h: Tensor, w: Tensor, bias: Tensor | null, t: Tensor, start: number, n: number, a: Attrs): Piece {
  return tidy(() => {
    const V = w.shape[0];
    const hc = narrow(h, 0, start, n);
    const tc = narrow(t, 0, start, n);
    const wt = transpose(w);
    let logits = matmul(hc, wt);
    if (bias) {
      const b = add(logits, bias);
      logits.dispose();
      logits = b;
    }
    // the loss terms, as crossEntropy computes them
    const valid = ne(tc, a.ignoreIndex);
    const safe = where(valid, tc, 0);
    const mask = cast(valid, h.dtype);
    const picked = reshape(takeAlongAxis(logits, unsqueeze(safe, -1), -1), [n]);
    const lse = logsumexp(logits, -1);
    const lossSum = sum(mul(sub(lse, picked), mask));
    const count = sum(mask);
    if (!a.grads) {
      logits.dispose();
      return { lossSum, count };
    }
    // d(Σ losses)/d logits = (softmax − onehot(target)) on counted rows, 0 on the others
    const p = softmax(logits);
    logits.dispose();
    const pm = mul(p, reshape(mask, [n, 1]));
    p.dispose();
    const flat = add(safe, arange(0, n * V, V, { backend: h.backend })); // row r, column target_r
    const hot = takeAdjoint(mask, flat, 0, [n * V]);
    const g = sub(pm, reshape(hot, [n, V]));
    pm.dispose();
    hot.dispose();
    const dh = matmul(g, w);
    const gt = transpose(g);
    const dW = matmul(gt, hc);
    const db = bias ? sum(g, 0) : undefined;
    g.dispose();
    return { lossSum, count, dh, dW, db };
  });
}

/** `acc + x`, freeing both (acc may be null: then x). */
function accumulate(acc: Tensor | null, x: Tensor): Tensor {
  if (!acc) return x;
  const s = add(acc, x);
  acc.dispose();
  x.dispose();
  return s;
}

const fusedOp = customOp<Attrs>({
  name: 'linearCrossEntropy',
  // the backward only scales what the forward stored: no input or output values are needed
  saveInputs: false,
  saveOutputs: false,
  forward(inputs, a) {
    const [h, w, t] = inputs;
    const bias = a.bias ? inputs[3] : null;
    const N = h.shape[0];
    let total: Tensor | null = null;
    let count: Tensor | null = null;
    let dW: Tensor | null = null;
    let db: Tensor | null = null;
    const dhs: Tensor[] = [];
    for (let s = 0; s < N; s += a.chunk) {
      const piece = chunkPiece(h, w, bias, t, s, Math.min(a.chunk, N - s), a);
      total = accumulate(total, piece.lossSum);
      count = accumulate(count, piece.count);
      if (piece.dh) dhs.push(piece.dh);
      if (piece.dW) dW = accumulate(dW, piece.dW);
      if (piece.db) db = accumulate(db, piece.db);
    }
    if (!total || !count) fail('linearCrossEntropy', 'internal: no rows');
    let loss = total;
    let denom: Tensor | null = null;
    if (a.reduction === 'mean') {
      denom = maximum(count, 1);
      loss = div(total, denom);
    }
    if (!a.grads) return { outputs: [loss] };
    const dh = dhs.length === 1 ? dhs[0] : concat(dhs, 0);
    if (dh !== dhs[0]) for (const x of dhs) x.dispose();
    const saved = [dh, dW as Tensor];
    if (db) saved.push(db);
    if (denom) saved.push(denom);
    return { outputs: [loss], saved };
  },
  backward(gOut, saved, _inputs, _outputs, a) {
    const g = gOut[0];
    if (!g) return a.bias ? [null, null, null, null] : [null, null, null];
    if (saved.length === 0) fail('linearCrossEntropy', 'internal: the forward ran without gradients while a gradient was recorded');
    const [dh, dW] = saved;
    const db = a.bias ? saved[2] : null;
    const scale = a.reduction === 'mean' ? div(g, saved[saved.length - 1]) : g;
    const out = [mul(dh, scale), mul(dW, scale), null];
    if (db) out.push(mul(db, scale));
    return out;
  },
});

/** Rows per chunk: `chunkRows`, else as many as keep `[C, V]` logits within `LOSS_CHUNK_BYTES`. */
export function lossChunkRows(op: string, name: string, V: number, bytesPerValue: number, chunkRows?: number): number {
  if (chunkRows !== undefined) {
    if (typeof chunkRows !== 'number' || !Number.isInteger(chunkRows) || chunkRows < 1) {
      fail(op, `${name} must be a positive integer, got ${String(chunkRows)}`);
    }
    if (chunkRows * V >= 2 ** 31) fail(op, `${name} ${chunkRows} × vocab ${V} must stay below 2^31 elements per chunk`);
    return chunkRows;
  }
  return Math.max(1, Math.floor(LOSS_CHUNK_BYTES / (V * bytesPerValue)));
}

/** Runs the fused op without argument checks (callers validated shapes, dtypes and options). */
export function applyLinearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  targets: Tensor,
  opts: { ignoreIndex: number; reduction: 'mean' | 'sum'; chunk: number },
): Tensor {
  const attrs: Attrs = { ...opts, grads: getRecorder() !== null, bias: !!bias };
  const inputs = bias ? [h, weight, targets, bias] : [h, weight, targets];
  return fusedOp(inputs, attrs)[0];
}

/**
 * Cross-entropy of the logits `h·weightᵀ (+ bias)` against int32 `targets`, computed `chunkRows`
 * rows at a time so that no `[N, V]` tensor ever exists: `h` `[N, D]`, `weight` `[V, D]` (an
 * `nn.Linear` weight or a tied embedding table), `bias` `[V]` or null, `targets` `[N]`. The same
 * value as `crossEntropy(matmul(h, transpose(weight)), targets, opts)`. Under `valueAndGrad` the
 * forward also computes the gradients of h, weight (and bias) per chunk and keeps only those
 * (`[N, D]`, `[V, D]`): the backward scales them by the upstream gradient, recomputing nothing.
 */
export function linearCrossEntropy(
  h: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  targets: Tensor,
  opts: LinearCrossEntropyOptions = {},
): Tensor {
  const op = 'linearCrossEntropy';
  checkTensor(op, 'h', h);
  checkTensor(op, 'weight', weight);
  checkTensor(op, 'targets', targets);
  if (h.rank !== 2) fail(op, `h must be [N,D], got ${fmtShape(h.shape)}`);
  checkFloat(op, 'h', h.dtype);
  if (weight.rank !== 2 || weight.shape[1] !== h.shape[1]) {
    fail(op, `weight must be [V,${h.shape[1]}] for h ${fmtShape(h.shape)}, got ${fmtShape(weight.shape)}`);
  }
  if (weight.dtype !== h.dtype) fail(op, `dtypes differ: h ${fmtTensor(h)} and weight ${fmtTensor(weight)}`);
  if (weight.backend !== h.backend) fail(op, `h lives on ${h.backend.name} but weight on ${weight.backend.name}`);
  if (bias !== null && bias !== undefined) {
    checkTensor(op, 'bias', bias);
    if (bias.rank !== 1 || bias.shape[0] !== weight.shape[0] || bias.dtype !== h.dtype || bias.backend !== h.backend) {
      fail(op, `bias must be ${h.dtype}[${weight.shape[0]}] on ${h.backend.name}, got ${fmtTensor(bias)} on ${bias.backend.name}`);
    }
  }
  if (targets.dtype !== 'int32' || targets.rank !== 1 || targets.shape[0] !== h.shape[0] || targets.backend !== h.backend) {
    fail(op, `targets must be int32[${h.shape[0]}] on ${h.backend.name}, got ${fmtTensor(targets)} on ${targets.backend.name}`);
  }
  if (h.shape[0] === 0) fail(op, 'h has no rows');
  if (opts === null || typeof opts !== 'object') fail(op, 'opts must be an object');
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') fail(op, `opts.reduction must be 'mean' or 'sum', got ${String(reduction)}`);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  if (!Number.isInteger(ignoreIndex)) fail(op, `opts.ignoreIndex must be an integer, got ${String(ignoreIndex)}`);
  const chunk = lossChunkRows(op, 'opts.chunkRows', weight.shape[0], itemSize(h.dtype), opts.chunkRows);
  return applyLinearCrossEntropy(h, weight, bias, targets, { ignoreIndex, reduction, chunk });
}
