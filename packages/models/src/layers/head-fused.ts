import { customOp } from '@foxgate/autograd';
import {
  CpuBackend,
  fail,
  fmtShape,
  getRecorder,
  reshape,
  sum,
  type Tensor,
  type TypedArray,
  tensor,
  WebGPUBackend,
} from '@foxgate/tensor';
import { headFusedBackwardWebGPU, headFusedForwardWebGPU } from './head-fused-webgpu.js';

/*
 * The per-head steps of the attention block between the projections and the attention op, and
 * after it, as one fused op with its own backward. On the heads x `[B,T,H,D]` (one row = the D
 * features of one head of one token), in this order, each step optional:
 *
 *   shift:  s_t = x_t + α_t·(p_t − x_t),  α = σ(logit),  p_t = keep_t·x_{t−1} (p_0 = keep_0·prev, or 0)
 *   norm:   n = s·r·w,  r = 1/√(mean_D(s²) + eps),  w `[H·D]` (per head) or `[D]` (shared)
 *   rope:   y_d = n_d·cos_{t,d} + rot(n)_d·sin_{t,d},  rot(n) = [−n₂, n₁] over the halves
 *   gate:   y = m·σ(z),  z `[B,T,H·D]`
 *
 * (the token shift of FoX-Pro's k/v, QK-norm, rotate-half RoPE, the output norm and gate). The
 * forward keeps, for the backward, only what it cannot recompute cheaply: x when a step reads it
 * (shift, norm or gate; RoPE alone keeps nothing but its tables), the shift and gate logits and
 * the per-row r.
 * Everything in between (the shifted s, the normed n, the rotated values, σ(z)) is recomputed
 * row by row in the backward:
 *
 *   gate:  dz = g·m·σ(1 − σ),  g ← g·σ
 *   rope:  g_d ← g_d·cos_d + rotᵀ(g⊙sin)_d,  rotᵀ(u) = [u₂, −u₁]  (the rotation by −θ)
 *   norm:  x̂ = s·r,  dw += g⊙x̂,  ds = r·(g⊙w − x̂·mean_D(g⊙w⊙x̂))
 *   shift: dx_t = (1 − α_t)·ds_t + keep_{t+1}·α_{t+1}·ds_{t+1},
 *          dlogit_t = α_t(1 − α_t)·Σ_D ds_t⊙(p_t − x_t)
 *
 * and prev (x_{−1}) gets dprev = keep_0·α_0·ds_0. keep and the RoPE tables are constants (no
 * gradient). CPU kernels on host arrays
 * (float32/float64, sums in float64) and WGSL kernels (float32, `head-fused-webgpu.ts`).
 */

/** Which steps run, and where each optional input sits in the op's input list. */
export interface HeadFusedAttrs {
  B: number;
  T: number;
  H: number;
  D: number;
  eps: number;
  /** Norm weight: none, `[H·D]` per head, `[D]` shared by the heads. */
  norm: 'none' | 'head' | 'shared';
  shift: boolean;
  keep: boolean;
  prev: boolean;
  rope: boolean;
  gate: boolean;
  /** Input positions (−1: absent): x is 0. */
  at: { alpha: number; keep: number; prev: number; w: number; cos: number; sin: number; z: number };
  /** Compute and save r (a gradient is being recorded). */
  grads: boolean;
}

/** What the backward finds in `saved`, by position (−1: not saved). */
function savedLayout(a: HeadFusedAttrs) {
  let i = 0;
  const next = (on: boolean) => (on ? i++ : -1);
  return {
    x: next(a.shift || a.norm !== 'none' || a.gate),
    alpha: next(a.shift),
    keep: next(a.shift && a.keep),
    prev: next(a.shift && a.prev),
    w: next(a.norm !== 'none'),
    rstd: next(a.norm !== 'none'),
    cos: next(a.rope),
    sin: next(a.rope),
    z: next(a.gate),
  };
}

export interface HeadFusedOptions {
  /**
   * Token shift: the mixing logits `[B,T,H]` (α = σ(logit)), keep `[B,T]` (0 at a document
   * start), prev `[B,H·D]` (k̂/v̂ before row 0).
   */
  shift?: { logit: Tensor; keep?: Tensor | null; prev?: Tensor | null };
  /** Per-head RMSNorm gain `[H·D]` or `[D]`, and its epsilon. */
  norm?: { weight: Tensor; eps: number };
  /** RoPE tables `[T,1,D]` (`ropeTableTensors`). */
  rope?: { cos: Tensor; sin: Tensor };
  /** Output gate logits `[B,T,H·D]`: the result is multiplied by σ(z). */
  gate?: Tensor;
}

// ---- CPU ------------------------------------------------------------------------------------

type F = Float32Array | Float64Array;

const like = (x: Tensor, n: number): F => (x.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));
const sig = (v: number) => 1 / (1 + Math.exp(-v));

interface Host {
  x: TypedArray;
  alpha: TypedArray | null;
  keep: TypedArray | null;
  prev: TypedArray | null;
  w: TypedArray | null;
  cos: TypedArray | null;
  sin: TypedArray | null;
  z: TypedArray | null;
}

/** s (the shifted row) of row (b, t, h) into `s`; returns p − x into `px` when given. */
function shiftedRow(hx: Host, a: HeadFusedAttrs, b: number, t: number, h: number, s: Float64Array, px: Float64Array | null): void {
  const { T, H, D } = a;
  const hd = H * D;
  const base = (b * T + t) * hd + h * D;
  if (!a.shift) {
    for (let d = 0; d < D; d++) s[d] = hx.x[base + d];
    return;
  }
  const al = (hx.alpha as TypedArray)[(b * T + t) * H + h];
  const kp = hx.keep ? hx.keep[b * T + t] : 1;
  for (let d = 0; d < D; d++) {
    const xv = hx.x[base + d];
    const pv = kp * (t > 0 ? hx.x[base - hd + d] : hx.prev ? hx.prev[b * hd + h * D + d] : 0);
    s[d] = xv + al * (pv - xv);
    if (px) px[d] = pv - xv;
  }
}

const wIndex = (a: HeadFusedAttrs, h: number) => (a.norm === 'head' ? h * a.D : 0);

function cpuForward(hx: Host, a: HeadFusedAttrs, like0: Tensor): { y: F; rstd: F | null } {
  const { B, T, H, D } = a;
  const half = D / 2;
  const y = like(like0, B * T * H * D);
  const rstd = a.norm !== 'none' ? like(like0, B * T * H) : null;
  const s = new Float64Array(D);
  const n = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const row = (b * T + t) * H + h;
        const base = row * D;
        shiftedRow(hx, a, b, t, h, s, null);
        if (rstd) {
          let ss = 0;
          for (let d = 0; d < D; d++) ss += s[d] * s[d];
          rstd[row] = 1 / Math.sqrt(ss / D + a.eps);
          const r = rstd[row]; // rounded as stored: the backward's x̂ is the forward's
          const w = hx.w as TypedArray;
          const wo = wIndex(a, h);
          for (let d = 0; d < D; d++) n[d] = s[d] * r * w[wo + d];
        } else n.set(s);
        if (a.rope) {
          const c = hx.cos as TypedArray;
          const sn = hx.sin as TypedArray;
          for (let d = 0; d < D; d++) {
            const rot = d < half ? -n[d + half] : n[d - half];
            y[base + d] = n[d] * c[t * D + d] + rot * sn[t * D + d];
          }
        } else if (a.gate) {
          const z = hx.z as TypedArray;
          for (let d = 0; d < D; d++) y[base + d] = n[d] * sig(z[base + d]);
        } else for (let d = 0; d < D; d++) y[base + d] = n[d];
        if (a.rope && a.gate) {
          const z = hx.z as TypedArray;
          for (let d = 0; d < D; d++) y[base + d] *= sig(z[base + d]);
        }
      }
  return { y, rstd };
}

function cpuBackward(
  gy: TypedArray,
  hx: Host,
  rstd: TypedArray | null,
  a: HeadFusedAttrs,
  like0: Tensor,
  needs: { x: boolean; alpha: boolean; w: boolean; z: boolean },
): { dx: F; dalpha: F | null; dw: F | null; dz: F | null; dprev: F | null } {
  const { B, T, H, D } = a;
  const half = D / 2;
  const size = B * T * H * D;
  // ds over every row (the shift's backward couples row t with row t + 1)
  const ds = a.shift ? new Float64Array(size) : null;
  const dx = like(like0, size);
  const dalpha = a.shift && needs.alpha ? like(like0, B * T * H) : null;
  const dwAcc = a.norm !== 'none' && needs.w ? new Float64Array(a.norm === 'head' ? H * D : D) : null;
  const dz = a.gate && needs.z ? like(like0, size) : null;
  const s = new Float64Array(D);
  const px = new Float64Array(D);
  const n = new Float64Array(D);
  const m = new Float64Array(D);
  const g = new Float64Array(D);
  const u = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const row = (b * T + t) * H + h;
        const base = row * D;
        if (hx.x.length) shiftedRow(hx, a, b, t, h, s, a.shift ? px : null);
        const r = rstd ? rstd[row] : 1;
        const w = hx.w;
        const wo = wIndex(a, h);
        for (let d = 0; d < D; d++) n[d] = rstd ? s[d] * r * (w as TypedArray)[wo + d] : s[d];
        for (let d = 0; d < D; d++) g[d] = gy[base + d];
        if (a.gate) {
          const z = hx.z as TypedArray;
          // m: the value the gate multiplies (after the rope when both run)
          if (a.rope) {
            const c = hx.cos as TypedArray;
            const sn = hx.sin as TypedArray;
            for (let d = 0; d < D; d++) m[d] = n[d] * c[t * D + d] + (d < half ? -n[d + half] : n[d - half]) * sn[t * D + d];
          } else m.set(n);
          for (let d = 0; d < D; d++) {
            const sv = sig(z[base + d]);
            if (dz) dz[base + d] = g[d] * m[d] * sv * (1 - sv);
            g[d] *= sv;
          }
        }
        if (a.rope) {
          const c = hx.cos as TypedArray;
          const sn = hx.sin as TypedArray;
          for (let d = 0; d < D; d++) u[d] = g[d] * sn[t * D + d];
          for (let d = 0; d < D; d++) g[d] = g[d] * c[t * D + d] + (d < half ? u[d + half] : -u[d - half]);
        }
        if (rstd) {
          // g ← ds = r·(g⊙w − x̂·mean(g⊙w⊙x̂)), dw += g⊙x̂
          let dot = 0;
          for (let d = 0; d < D; d++) {
            const xh = s[d] * r;
            const gw = g[d] * (w as TypedArray)[wo + d];
            dot += gw * xh;
            if (dwAcc) dwAcc[wo + d] += g[d] * xh;
          }
          const mean = dot / D;
          for (let d = 0; d < D; d++) g[d] = r * (g[d] * (w as TypedArray)[wo + d] - s[d] * r * mean);
        }
        if (ds) {
          for (let d = 0; d < D; d++) ds[base + d] = g[d];
          if (dalpha) {
            let acc = 0;
            for (let d = 0; d < D; d++) acc += g[d] * px[d];
            const al = (hx.alpha as TypedArray)[row];
            dalpha[row] = acc * al * (1 - al); // through α = σ(logit)
          }
        } else for (let d = 0; d < D; d++) dx[base + d] = g[d];
      }
  if (ds) {
    const al = hx.alpha as TypedArray;
    const hd = H * D;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++) {
          const row = (b * T + t) * H + h;
          const base = row * D;
          const a0 = al[row];
          const nextA = t + 1 < T ? al[row + H] * (hx.keep ? hx.keep[b * T + t + 1] : 1) : 0;
          for (let d = 0; d < D; d++) dx[base + d] = (1 - a0) * ds[base + d] + (nextA !== 0 ? nextA * ds[base + hd + d] : 0);
        }
  }
  // prev stands in for x_{−1}: dprev = keep_0·α_0·ds_0
  let dprev: F | null = null;
  if (ds && hx.prev) {
    const al = hx.alpha as TypedArray;
    const hd = H * D;
    dprev = like(like0, B * hd);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const f = al[b * T * H + h] * (hx.keep ? hx.keep[b * T] : 1);
        for (let d = 0; d < D; d++) dprev[b * hd + h * D + d] = f * ds[b * T * hd + h * D + d];
      }
  }
  let dw: F | null = null;
  if (dwAcc) {
    dw = like(like0, dwAcc.length);
    dw.set(dwAcc);
  }
  return { dx, dalpha, dw, dz, dprev };
}

/** α = σ(logit) on the host (float64). */
function sigmoidOf(logit: TypedArray): Float64Array {
  return Float64Array.from(logit, (v) => sig(v));
}

function hostOf(inputs: readonly Tensor[], a: HeadFusedAttrs): Host {
  const get = (i: number) => (i >= 0 ? inputs[i].dataSync() : null);
  return {
    x: inputs[0].dataSync(),
    alpha: a.at.alpha >= 0 ? sigmoidOf(inputs[a.at.alpha].dataSync()) : null,
    keep: get(a.at.keep),
    prev: get(a.at.prev),
    w: get(a.at.w),
    cos: get(a.at.cos),
    sin: get(a.at.sin),
    z: get(a.at.z),
  };
}

// ---- the op ---------------------------------------------------------------------------------

/** The forward kernel on `inputs` (the op's input list): y `[B,T,H,D]` and, with a norm, r `[B·T·H]`. */
export function headFusedForward(inputs: readonly Tensor[], a: HeadFusedAttrs): { y: Tensor; rstd: Tensor | null } {
  const x = inputs[0];
  if (x.backend instanceof WebGPUBackend) return headFusedForwardWebGPU(x.backend, inputs, a);
  if (!(x.backend instanceof CpuBackend)) fail('headFused', `no kernel for the ${x.backend.name} backend`);
  const r = cpuForward(hostOf(inputs, a), a, x);
  const create = { dtype: x.dtype, backend: x.backend };
  const y = tensor(r.y, [a.B, a.T, a.H, a.D], create);
  return { y, rstd: r.rstd ? tensor(r.rstd, [a.B * a.T * a.H], create) : null };
}

/** What the backward keeps of the op's inputs (by `savedLayout`), plus r. */
export function headFusedSaved(inputs: readonly Tensor[], rstd: Tensor | null, a: HeadFusedAttrs): Tensor[] {
  const L = savedLayout(a);
  const opt = (i: number) => (i >= 0 ? inputs[i] : null);
  const saved: Tensor[] = [];
  const put = (pos: number, t: Tensor | null) => {
    if (pos >= 0) saved[pos] = t as Tensor;
  };
  put(L.x, inputs[0]);
  put(L.alpha, opt(a.at.alpha));
  put(L.keep, opt(a.at.keep));
  put(L.prev, opt(a.at.prev));
  put(L.w, opt(a.at.w));
  put(L.rstd, rstd);
  put(L.cos, opt(a.at.cos));
  put(L.sin, opt(a.at.sin));
  put(L.z, opt(a.at.z));
  return saved;
}

/** The op's input list rebuilt from `saved` (x is missing where it was not saved: RoPE alone). */
export function headFusedInputs(saved: readonly Tensor[], a: HeadFusedAttrs): Tensor[] {
  const L = savedLayout(a);
  const sv = (i: number) => (i >= 0 ? saved[i] : null);
  const rebuilt: Tensor[] = [];
  rebuilt[0] = sv(L.x) ?? (null as unknown as Tensor);
  const put = (pos: number, t: Tensor | null) => {
    if (pos >= 0) rebuilt[pos] = t as Tensor;
  };
  put(a.at.alpha, sv(L.alpha));
  put(a.at.keep, sv(L.keep));
  put(a.at.prev, sv(L.prev));
  put(a.at.w, sv(L.w));
  put(a.at.cos, sv(L.cos));
  put(a.at.sin, sv(L.sin));
  put(a.at.z, sv(L.z));
  return rebuilt;
}

/**
 * The backward kernels: from the output gradient `g` and `saved` (`headFusedSaved`), one
 * gradient per input of the op (null for the constants); `shapes` are the inputs' shapes.
 */
export function headFusedBackward(
  g: Tensor,
  saved: readonly Tensor[],
  shapes: readonly (readonly number[])[],
  a: HeadFusedAttrs,
): (Tensor | null)[] {
  const out: (Tensor | null)[] = shapes.map(() => null);
  const rebuilt = headFusedInputs(saved, a);
  const rstd = a.norm !== 'none' ? saved[savedLayout(a).rstd] : null;
  const needs = { x: true, alpha: a.shift, w: a.norm !== 'none', z: a.gate };
  if (g.backend instanceof WebGPUBackend) {
    const r = headFusedBackwardWebGPU(g.backend, g, rebuilt, rstd, a);
    out[0] = r.dx;
    if (a.at.alpha >= 0) out[a.at.alpha] = r.dalpha;
    if (a.at.prev >= 0) out[a.at.prev] = r.dprev;
    if (a.at.w >= 0 && r.dwPartial) {
      let dw = sum(r.dwPartial, 0); // [H, D]
      if (a.norm === 'shared') dw = sum(dw, 0);
      out[a.at.w] = reshape(dw, shapes[a.at.w]);
    }
    if (a.at.z >= 0 && r.dz) out[a.at.z] = reshape(r.dz, shapes[a.at.z]);
    return out;
  }
  const hx: Host = {
    x: rebuilt[0] ? rebuilt[0].dataSync() : new Float64Array(0),
    alpha: a.at.alpha >= 0 ? sigmoidOf(rebuilt[a.at.alpha].dataSync()) : null,
    keep: a.at.keep >= 0 ? rebuilt[a.at.keep].dataSync() : null,
    prev: a.at.prev >= 0 ? rebuilt[a.at.prev].dataSync() : null,
    w: a.at.w >= 0 ? rebuilt[a.at.w].dataSync() : null,
    cos: a.at.cos >= 0 ? rebuilt[a.at.cos].dataSync() : null,
    sin: a.at.sin >= 0 ? rebuilt[a.at.sin].dataSync() : null,
    z: a.at.z >= 0 ? rebuilt[a.at.z].dataSync() : null,
  };
  const r = cpuBackward(g.dataSync(), hx, rstd ? rstd.dataSync() : null, a, g, needs);
  const create = { dtype: g.dtype, backend: g.backend };
  out[0] = tensor(r.dx, [a.B, a.T, a.H, a.D], create);
  if (a.at.alpha >= 0 && r.dalpha) out[a.at.alpha] = tensor(r.dalpha, [a.B, a.T, a.H], create);
  if (a.at.prev >= 0 && r.dprev) out[a.at.prev] = tensor(r.dprev, [a.B, a.H * a.D], create);
  if (a.at.w >= 0 && r.dw) out[a.at.w] = tensor(r.dw, [...shapes[a.at.w]], create);
  if (a.at.z >= 0 && r.dz) out[a.at.z] = tensor(r.dz, [...shapes[a.at.z]], create);
  return out;
}

const op = customOp<HeadFusedAttrs>({
  name: 'headFused',
  // the forward says what the backward needs (`saved`): RoPE alone keeps no input alive
  saveInputs: false,
  saveOutputs: false,
  forward(inputs, a) {
    const { y, rstd } = headFusedForward(inputs, a);
    if (!a.grads) {
      rstd?.dispose();
      return { outputs: [y] };
    }
    return { outputs: [y], saved: headFusedSaved(inputs, rstd, a) };
  },
  backward(gOut, saved, inputs, _outputs, a) {
    const g = gOut[0];
    if (!g) return inputs.map(() => null);
    if (saved.length === 0) fail('headFused', 'internal: the forward ran without gradients while a gradient was recorded');
    return headFusedBackward(
      g,
      saved,
      inputs.map((t) => t.shape),
      a,
    );
  },
});

function check(name: string, t: Tensor, x: Tensor, shape: readonly number[]): void {
  const ok = t.dtype === x.dtype && t.backend === x.backend && t.rank === shape.length && t.shape.every((d, i) => d === shape[i]);
  if (!ok)
    fail(
      'headFused',
      `${name} must be ${x.dtype}${fmtShape(shape)} on x's backend, got ${t.dtype}${fmtShape(t.shape)} on ${t.backend.name}`,
    );
  t.assertAlive('headFused');
}

/**
 * The fused per-head steps (token shift, per-head RMSNorm, RoPE, output gate; see the top of
 * this file) on `x` `[B,T,H,D]`, as one op: the same values as the composed ops, with a backward
 * that recomputes the intermediates instead of keeping them.
 */
export function headFused(x: Tensor, opts: HeadFusedOptions): Tensor {
  const { inputs, attrs } = headFusedArgs(x, opts);
  return op(inputs, attrs)[0];
}

/** `headFused`'s checked input list and attributes. */
export function headFusedArgs(x: Tensor, opts: HeadFusedOptions): { inputs: Tensor[]; attrs: HeadFusedAttrs } {
  x.assertAlive('headFused');
  if (x.rank !== 4) fail('headFused', `x must be [B,T,H,D], got ${fmtShape(x.shape)}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') fail('headFused', `x must be float32 or float64, got ${x.dtype}`);
  const [B, T, H, D] = x.shape;
  const inputs: Tensor[] = [x];
  const at = { alpha: -1, keep: -1, prev: -1, w: -1, cos: -1, sin: -1, z: -1 };
  const add = (t: Tensor) => inputs.push(t) - 1;
  if (opts.shift) {
    check('shift.logit', opts.shift.logit, x, [B, T, H]);
    at.alpha = add(opts.shift.logit);
    if (opts.shift.keep) {
      check('shift.keep', opts.shift.keep, x, [B, T]);
      at.keep = add(opts.shift.keep);
    }
    if (opts.shift.prev) {
      check('shift.prev', opts.shift.prev, x, [B, H * D]);
      at.prev = add(opts.shift.prev);
    }
  }
  let norm: HeadFusedAttrs['norm'] = 'none';
  if (opts.norm) {
    const w = opts.norm.weight;
    norm = w.rank === 1 && w.shape[0] === H * D ? 'head' : 'shared';
    check('norm.weight', w, x, norm === 'head' ? [H * D] : [D]);
    const eps = opts.norm.eps;
    if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0)
      fail('headFused', `norm.eps must be a finite number >= 0, got ${String(eps)}`);
    at.w = add(w);
  }
  if (opts.rope) {
    if (D % 2 !== 0) fail('headFused', `RoPE needs an even head dim, got ${D}`);
    check('rope.cos', opts.rope.cos, x, [T, 1, D]);
    check('rope.sin', opts.rope.sin, x, [T, 1, D]);
    at.cos = add(opts.rope.cos);
    at.sin = add(opts.rope.sin);
  }
  if (opts.gate) {
    check('gate', opts.gate, x, [B, T, H * D]);
    at.z = add(opts.gate);
  }
  const attrs: HeadFusedAttrs = {
    B,
    T,
    H,
    D,
    eps: opts.norm?.eps ?? 0,
    norm,
    shift: !!opts.shift,
    keep: at.keep >= 0,
    prev: at.prev >= 0,
    rope: !!opts.rope,
    gate: !!opts.gate,
    at,
    grads: getRecorder() !== null,
  };
  return { inputs, attrs };
}
