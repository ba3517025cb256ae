import { cast, fail, fmtShape, isFloat, type Tensor, tensor, tidy } from '@foxgate/tensor';
import { checkTensor } from './alias.js';
import { valueAndGrad } from './grad.js';
import { noGrad } from './nograd.js';

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance, against the finite difference (default 1e-3). */
  rtol?: number;
  /** Throw a FoxgateError with the report when the check fails (default true). */
  raise?: boolean;
}

export interface GradcheckInputReport {
  /** Position of the input in `inputs`. */
  index: number;
  shape: number[];
  /** False for non-float inputs (passed to `f` unchanged, not checked). */
  checked: boolean;
  /** Elements outside `atol + rtol·|fd|`. */
  failures: number;
  maxAbsError: number;
  /** The element with the largest error relative to its tolerance. */
  worst: { flat: number; index: number[]; autograd: number; numeric: number; absError: number } | null;
}

export interface GradcheckReport {
  ok: boolean;
  inputs: GradcheckInputReport[];
  /** One line per input; the failing ones first. */
  message: string;
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

/**
 * Compares autograd's gradient of the scalar function `f(...inputs)` with central finite
 * differences `(f(x+eps·e_j) − f(x−eps·e_j)) / 2eps`, element by element. Float inputs are cast to
 * float64 (so `f` should keep float64 throughout); other inputs (int32 labels, bool masks) are
 * passed unchanged and not checked. Runs on the CPU backend and reads values synchronously:
 * inputs must live on a backend that can (move them with `toBackend(x, 'cpu')`). Returns the
 * report; throws it as a FoxgateError when the check fails unless `raise: false`.
 */
export function gradcheck(f: (...inputs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: GradcheckOptions = {}): GradcheckReport {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-3;
  inputs.forEach((x, i) => {
    checkTensor('gradcheck', x, `input ${i}`);
    if (!x.backend.readSync)
      fail('gradcheck', `input ${i} lives on the ${x.backend.name} backend; move it to the CPU first (await toBackend(x, 'cpu'))`);
  });
  const reports = tidy(() => {
    const xs = noGrad(() => inputs.map((x) => (isFloat(x.dtype) ? cast(x, 'float64') : x)));
    const evaluate = (args: Tensor[]): number =>
      tidy(() => {
        const y = noGrad(() => f(...args));
        checkTensor('gradcheck', y, 'f(...)');
        if (y.size !== 1) fail('gradcheck', `f must return a scalar, got shape ${fmtShape(y.shape)}`);
        return y.itemSync();
      });
    const { grads } = valueAndGrad((ps: Tensor[]) => f(...ps))(xs);
    return xs.map((x, index): GradcheckInputReport => {
      const report: GradcheckInputReport = { index, shape: [...x.shape], checked: false, failures: 0, maxAbsError: 0, worst: null };
      if (!isFloat(x.dtype)) return report;
      report.checked = true;
      const analytic = grads[index].dataSync();
      const base = Float64Array.from(x.dataSync());
      let worstRatio = -1;
      for (let j = 0; j < base.length; j++) {
        const probe = (delta: number): number => {
          const data = base.slice();
          data[j] += delta;
          const args = [...xs];
          args[index] = tensor(data, x.shape, { dtype: 'float64', backend: x.backend });
          return evaluate(args);
        };
        const numeric = (probe(eps) - probe(-eps)) / (2 * eps);
        const a = analytic[j];
        const err = Math.abs(a - numeric);
        const tol = atol + rtol * Math.abs(numeric);
        const bad = !(err <= tol); // NaN counts as a failure
        if (bad) report.failures++;
        if (!(err <= report.maxAbsError)) report.maxAbsError = err;
        const ratio = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / tol;
        if (ratio > worstRatio) {
          worstRatio = ratio;
          report.worst = { flat: j, index: unravel(j, x.shape), autograd: a, numeric, absError: err };
        }
      }
      return report;
    });
  });
  const line = (r: GradcheckInputReport): string => {
    const head = `input ${r.index} ${fmtShape(r.shape)}`;
    if (!r.checked) return `${head}: not a float tensor, not checked`;
    if (!r.worst) return `${head}: empty, nothing to check`;
    const w = r.worst;
    const at = `worst element ${w.flat} ${fmtShape(w.index)}: autograd ${w.autograd}, finite difference ${w.numeric}, |error| ${w.absError.toExponential(3)}`;
    return r.failures > 0 ? `${head}: ${r.failures} element(s) outside atol ${atol} + rtol ${rtol}·|fd|; ${at}` : `${head}: ok (${at})`;
  };
  const ok = reports.every((r) => r.failures === 0);
  const ordered = [...reports.filter((r) => r.failures > 0), ...reports.filter((r) => r.failures === 0)];
  const message = `${ok ? 'passed' : 'failed'} (eps ${eps})\n${ordered.map(line).join('\n')}`;
  const result: GradcheckReport = { ok, inputs: reports, message };
  if (!ok && (opts.raise ?? true)) fail('gradcheck', message);
  return result;
}
