import { forgettingAttention, softmaxAttention, sparsekAttention } from '@foxgate/attention';
import { PrefixSelector, rowTau } from '@foxgate/attention/dev';
import { valueAndGrad } from '@foxgate/autograd';
import { type Backend, emptyCache, memoryStats, mul, slice, sum, type Tensor, tensor } from '@foxgate/tensor';
import { openDevice } from '@foxgate/train';
import { benchProblem, CHECK_TOL, checkCase, timeLoop } from './attention.js';
import { failedRow, firstLine } from './failed.js';
import type { BenchRow } from './types.js';

/**
 * `foxgate bench attention --variant sparsek`: time against T at a fixed attention budget. Three
 * methods on one problem per T (q, k, v, dO and logF of `benchProblem`):
 * - SPARSEK attention (`gate: 'kv'`): a local window of `window` positions plus `k` selected older
 *   ones, scores u of `sparsekScores`;
 * - full forgetting attention (FoX, ACP off): the quadratic baseline;
 * - sliding-window softmax attention over the last `k + window` positions.
 * Each is timed forward and forward+backward (gradients of Σ o·dO for every input). Before timing,
 * each method's output and gradients are checked on sampled rows against float64 on the host
 * (`checkLocalAttention`, `checkCase`); a failed check or a thrown error makes the row FAILED, and
 * `foxgate bench` exits non-zero.
 */

export interface SparsekBenchOptions {
  /** Sequence lengths (default 2048, 8192, 16384, 32768). */
  sizes?: number[];
  /** Batch (default 4). */
  B?: number;
  /** Heads (default 16). */
  H?: number;
  /** Head dim (default 64). */
  D?: number;
  /** SPARSEK budget of selected older positions per query (default 256). */
  k?: number;
  /** SPARSEK local window (default 256); the sliding-window rows attend to `k + window` positions. */
  window?: number;
  /** Seconds of device time to aim for per timed case (default 1). */
  seconds?: number;
  /** 'webgpu' (default) or 'cpu'. */
  device?: 'cpu' | 'webgpu';
}

export const SPARSEK_BENCH_DEFAULTS = { sizes: [2048, 8192, 16384, 32768], B: 4, H: 16, D: 64, k: 256, window: 256 } as const;

/** Query and key rows checked at the end of the sequence (besides the sampled rows before them). */
const TAIL = 70;
/** At most this many rows are evaluated on the host for one old key's du. */
const KEY_ROWS = 384;

/** A seeded xorshift32 stream in [0, 1). */
function stream(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * The scoring-network outputs of the benchmark, `u [B,T,H]` on the host (float32): per (b, h),
 * `u_t = 0.37·(π(t) − T) + ε·t` with π a seeded random permutation of 0…T−1 and ε = 0.1/T. The values
 * are distinct and at least 0.27 apart, so a threshold τ falls well inside a gap: float32 and
 * float64 agree on which entries are selected (for `gate: 'kv'` an entry crossing τ makes the
 * output jump). The shift keeps |u| small where the late, long prefixes put τ (≈ −0.37·k).
 */
export function sparsekScores(B: number, T: number, H: number, seed = 1): Float32Array {
  const u = new Float32Array(B * T * H);
  const perm = new Int32Array(T);
  const eps = 0.1 / Math.max(T, 1);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const rand = stream((seed * 7919 + T * 104729 + (b * H + h) * 15485863) >>> 0);
      for (let t = 0; t < T; t++) perm[t] = t;
      for (let t = T - 1; t > 0; t--) {
        const r = Math.floor(rand() * (t + 1));
        const x = perm[t];
        perm[t] = perm[r];
        perm[r] = x;
      }
      for (let t = 0; t < T; t++) u[(b * T + t) * H + h] = 0.37 * (perm[t] - T) + eps * t;
    }
  return u;
}

/** What `checkLocalAttention` checks: SPARSEK (`budget` given, gate 'kv') or sliding-window softmax. */
export interface LocalSpec {
  /** SPARSEK's local window, or the sliding window of softmax attention (≥ 1). */
  window: number;
  /** SPARSEK budget k; absent: sliding-window softmax attention. */
  budget?: number;
  /** Score scale (default 1/√D). */
  scale?: number;
}

export interface LocalCheck {
  /** Per quantity (o, dq, dk, dv, and du for SPARSEK): the largest error over the largest magnitude. */
  err: Record<string, number>;
  /** Query rows evaluated on the host. */
  rows: number;
  /** Old keys whose du was checked over every query that selects them fractionally. */
  duKeys: number;
  /** Entries within float32 rounding of a threshold (allowed either way). */
  ambiguous: number;
  /** Mean number of selected older positions per evaluated query (SPARSEK). */
  selected: number;
}

/** The entries query i attends to: position, gate, and whether the gate is fractional (in S). */
class Entries {
  pos: Int32Array;
  g: Float64Array;
  frac: Uint8Array;
  n = 0;
  constructor(cap: number) {
    this.pos = new Int32Array(cap);
    this.g = new Float64Array(cap);
    this.frac = new Uint8Array(cap);
  }
  push(j: number, g: number, frac: boolean): void {
    this.pos[this.n] = j;
    this.g[this.n] = g;
    this.frac[this.n] = frac ? 1 : 0;
    this.n++;
  }
  clone(): Entries {
    const c = new Entries(this.pos.length + 1);
    c.pos.set(this.pos.subarray(0, this.n));
    c.g.set(this.g.subarray(0, this.n));
    c.frac.set(this.frac.subarray(0, this.n));
    c.n = this.n;
    return c;
  }
  indexOf(j: number): number {
    for (let c = 0; c < this.n; c++) if (this.pos[c] === j) return c;
    return -1;
  }
  remove(c: number): void {
    this.n--;
    this.pos[c] = this.pos[this.n];
    this.g[c] = this.g[this.n];
    this.frac[c] = this.frac[this.n];
  }
}

/** One query row in float64: output, dq, and per entry dS and ∂L/∂gate (gate 'kv': keys and values scaled). */
interface RowEval {
  e: Entries;
  p: Float64Array;
  dS: Float64Array;
  dg: Float64Array;
  o: Float64Array;
  om: Float64Array;
  dq: Float64Array;
  dqm: Float64Array;
}

function evalRow(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  dO: Float64Array,
  D: number,
  scale: number,
  i: number,
  e: Entries,
): RowEval {
  const n = e.n;
  const p = new Float64Array(n);
  const dot = new Float64Array(n);
  const dov = new Float64Array(n);
  let mx = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < n; c++) {
    const j = e.pos[c];
    let s = 0;
    let w = 0;
    for (let d = 0; d < D; d++) {
      s += q[i * D + d] * k[j * D + d];
      w += dO[i * D + d] * v[j * D + d];
    }
    dot[c] = s;
    dov[c] = w;
    p[c] = scale * e.g[c] * s;
    mx = Math.max(mx, p[c]);
  }
  let z = 0;
  for (let c = 0; c < n; c++) z += p[c] = Math.exp(p[c] - mx);
  const o = new Float64Array(D);
  const om = new Float64Array(D);
  let delta = 0;
  for (let c = 0; c < n; c++) {
    p[c] /= z;
    const j = e.pos[c];
    const pg = p[c] * e.g[c];
    for (let d = 0; d < D; d++) {
      o[d] += pg * v[j * D + d];
      om[d] += Math.abs(pg * v[j * D + d]);
    }
    delta += pg * dov[c];
  }
  const dS = new Float64Array(n);
  const dg = new Float64Array(n);
  const dq = new Float64Array(D);
  const dqm = new Float64Array(D);
  for (let c = 0; c < n; c++) {
    const j = e.pos[c];
    dS[c] = p[c] * (e.g[c] * dov[c] - delta);
    dg[c] = p[c] * dov[c] + dS[c] * scale * dot[c];
    const f = dS[c] * scale * e.g[c];
    for (let d = 0; d < D; d++) {
      dq[d] += f * k[j * D + d];
      dqm[d] += Math.abs(f * k[j * D + d]);
    }
  }
  return { e, p, dS, dg, o, om, dq, dqm };
}

/** Gradient sums at tracked keys: dk and dv at keys j ≥ t0 (slot j − t0), du at `duSlot` keys. */
class KeyAcc {
  dk: Float64Array;
  dv: Float64Array;
  du: Float64Array;
  constructor(
    readonly t0: number,
    nBlock: number,
    readonly D: number,
    readonly duSlot: Map<number, number>,
  ) {
    this.dk = new Float64Array(nBlock * D);
    this.dv = new Float64Array(nBlock * D);
    this.du = new Float64Array(duSlot.size);
  }

  /** Adds row i's contributions (`mag`: add magnitudes instead, |term| each). */
  add(r: RowEval, q: Float64Array, dO: Float64Array, i: number, scale: number, sign: number, mag = false): void {
    const { e, p, dS, dg } = r;
    const D = this.D;
    const f = (x: number) => (mag ? Math.abs(x) : sign * x);
    for (let c = 0; c < e.n; c++) {
      const j = e.pos[c];
      if (j < this.t0) continue;
      const o = (j - this.t0) * D;
      const a = dS[c] * scale * e.g[c];
      const b = p[c] * e.g[c];
      for (let d = 0; d < D; d++) {
        this.dk[o + d] += f(a * q[i * D + d]);
        this.dv[o + d] += f(b * dO[i * D + d]);
      }
    }
    // du: the VJP of the row's projection on its fractional entries, dz_j = dg_j − mean_S dg
    let s = 0;
    let nf = 0;
    for (let c = 0; c < e.n; c++)
      if (e.frac[c]) {
        s += dg[c];
        nf++;
      }
    if (nf === 0) return;
    const mean = s / nf;
    for (let c = 0; c < e.n; c++) {
      if (!e.frac[c]) continue;
      const slot = this.duSlot.get(e.pos[c]);
      if (slot === undefined) continue;
      this.du[slot] += mag ? Math.abs(dg[c] - mean) : sign * (dg[c] - mean);
    }
  }
}

/** Float64 copy of head (b, h) of a `[B,T,H,D]` or `[B,T,H]` tensor. */
async function headOf(t: Tensor, b: number, h: number): Promise<Float64Array> {
  const s = slice(t, [b, null, h]);
  try {
    return Float64Array.from(await s.data());
  } finally {
    s.dispose();
  }
}

/** How close (absolute) a float64 threshold τ may come to a breakpoint before float32 could decide differently. */
const tolOf = (tau: number) => 1e-3 + 2 ** -16 * Math.abs(tau);

/**
 * Relative error of sliding-window softmax attention (`spec.budget` absent) or SPARSEK attention
 * with `gate: 'kv'` against float64 on the host, at two (b, h) pairs (the first and the last).
 * Rows: the last `window + 70` queries (SPARSEK; 70 for sliding window) and four sampled earlier
 * ones: o and dq there; dk, dv (and du) at the last `window + 70` keys, which only those queries
 * see. SPARSEK also checks du at up to three older keys, summed over every query whose projection
 * holds them as fractional entries. The thresholds τ_i come from a float64 `PrefixSelector` sweep
 * over the head, cross-checked with `rowTau` at the sampled rows. An entry whose u is within
 * float32 rounding of τ_i (or of τ_i + 1, where it leaves S) is ambiguous: the row is evaluated
 * both ways and the difference is allowed (as `checkCase` allows ACP's pruned mass). Per quantity:
 * the largest error over the largest magnitude among the checked entries; NaN counts as ∞.
 */
export async function checkLocalAttention(
  x: { q: Tensor; k: Tensor; v: Tensor; dO: Tensor; u?: Float32Array },
  got: { o: Tensor; dq: Tensor; dk: Tensor; dv: Tensor; du?: Tensor },
  spec: LocalSpec,
): Promise<LocalCheck> {
  const [B, T, H, D] = x.q.shape;
  const sk = spec.budget !== undefined;
  if (sk && (x.u === undefined || got.du === undefined)) throw new Error('checkLocalAttention: SPARSEK needs u and du');
  const W = spec.window;
  const scale = spec.scale ?? 1 / Math.sqrt(D);
  const names = sk ? ['o', 'dq', 'dk', 'dv', 'du'] : ['o', 'dq', 'dk', 'dv'];
  const err: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const mags: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const note = (what: string, g: number, want: number, mag: number, allow: number) => {
    const e = Math.abs(g - want) - allow;
    err[what] = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(err[what], e);
    mags[what] = Math.max(mags[what], mag);
  };
  let rowsDone = 0;
  let duKeys = 0;
  let ambiguous = 0;
  let selectedSum = 0;
  let selectedRows = 0;
  const t0 = Math.max(0, T - (sk ? W : 0) - TAIL);
  for (const [b, h] of B * H === 1
    ? [[0, 0]]
    : [
        [0, 0],
        [B - 1, H - 1],
      ]) {
    const [q, k, v, dO, o, dq, dk, dv] = await Promise.all(
      [x.q, x.k, x.v, x.dO, got.o, got.dq, got.dk, got.dv].map((t) => headOf(t, b, h)),
    );
    const du = sk && got.du ? await headOf(got.du, b, h) : new Float64Array(0);
    const u = new Float64Array(T);
    if (sk && x.u) for (let t = 0; t < T; t++) u[t] = x.u[(b * T + t) * H + h];
    const budget = spec.budget ?? 0;
    // τ_i of every query (NaN before the prefix starts, −∞ while it holds ≤ k entries)
    const tau = new Float64Array(T).fill(Number.NaN);
    if (sk) {
      const sel = new PrefixSelector(u, (j) => j, budget, T);
      for (let i = W; i < T; i++) tau[i] = sel.step(i - W);
    }
    const sampled = [0, W + Math.ceil(budget) + 7, Math.floor(T / 4), Math.floor(T / 2), Math.floor((3 * T) / 4)].filter(
      (i) => i >= 0 && i < t0,
    );
    for (const i of sampled) {
      if (!sk || i < W) continue;
      const t = rowTau(u, i - W + 1, budget);
      // the gates must agree (a flat piece, hard top-k, admits any τ inside it)
      const gateOf = (x: number, th: number) => (th === Number.NEGATIVE_INFINITY ? 1 : Math.min(1, Math.max(0, x - th)));
      for (let j = 0; j <= i - W; j++)
        if (!(Math.abs(gateOf(u[j], t) - gateOf(u[j], tau[i])) <= 1e-9))
          throw new Error(`host check: PrefixSelector and rowTau disagree at query ${i} (τ ${tau[i]} vs ${t})`);
    }
    // old keys whose du to check: fractional for some queries, all of which are evaluated
    const duSlot = new Map<number, number>();
    for (let j = t0; j < T; j++) duSlot.set(j, j - t0);
    const extraRows = new Set<number>();
    if (sk) {
      let i0 = W;
      while (i0 < T && tau[i0] === Number.NEGATIVE_INFINITY) i0++;
      // first i ≥ lo with pred(i), for a predicate monotone in i (τ never decreases)
      const first = (lo: number, pred: (i: number) => boolean) => {
        let a = lo;
        let z = T;
        while (a < z) {
          const m = (a + z) >> 1;
          if (pred(m)) z = m;
          else a = m + 1;
        }
        return a;
      };
      for (const anchor of [Math.floor(T / 8), Math.floor(T / 4), Math.floor(T / 2)]) {
        for (let j = anchor; j < Math.min(t0, anchor + 4096); j++) {
          if (duSlot.has(j)) continue;
          const lo = Math.max(j + W, i0);
          if (lo >= T) break;
          const a = first(lo, (i) => tau[i] + 1 + tolOf(tau[i]) > u[j]);
          const z = first(a, (i) => tau[i] - tolOf(tau[i]) >= u[j]);
          const core = first(lo, (i) => tau[i] + 1 > u[j]) < first(lo, (i) => tau[i] >= u[j]);
          if (!core || z - a > KEY_ROWS) continue;
          duSlot.set(j, duSlot.size);
          for (let i = a; i < z; i++) extraRows.add(i);
          duKeys++;
          break;
        }
      }
    }
    const acc = new KeyAcc(t0, T - t0, D, duSlot);
    const mag = new KeyAcc(t0, T - t0, D, duSlot);
    const allow = new KeyAcc(t0, T - t0, D, duSlot);
    const rows = [...new Set([...sampled, ...extraRows, ...Array.from({ length: T - t0 }, (_, n) => t0 + n)])].sort((a, z) => a - z);
    for (const i of rows) {
      const e = new Entries(i + 2);
      const alts: Entries[] = [];
      for (let j = Math.max(0, i - W + 1); j <= i; j++) e.push(j, 1, false);
      if (sk && i - W >= 0) {
        const t = tau[i];
        if (Number.isNaN(t)) throw new Error(`host check: τ of query ${i} is NaN`);
        const amb: [number, 0 | 1][] = [];
        let nsel = 0;
        for (let j = 0; j <= i - W; j++) {
          if (t === Number.NEGATIVE_INFINITY) {
            e.push(j, 1, false);
            nsel++;
            continue;
          }
          const d = u[j] - t;
          if (d > 0) {
            e.push(j, Math.min(d, 1), d < 1);
            nsel++;
          }
          const tl = tolOf(t);
          if (Math.abs(d) <= tl) amb.push([j, 0]);
          else if (Math.abs(d - 1) <= tl) amb.push([j, 1]);
        }
        selectedSum += nsel;
        selectedRows++;
        for (const [j, kind] of amb) {
          const a = e.clone();
          const c = a.indexOf(j);
          if (kind === 0) {
            if (c >= 0) a.remove(c);
            else a.push(j, 0, true);
          } else if (c >= 0) a.frac[c] ^= 1;
          alts.push(a);
        }
        ambiguous += amb.length;
      }
      const r = evalRow(q, k, v, dO, D, scale, i, e);
      acc.add(r, q, dO, i, scale, 1);
      mag.add(r, q, dO, i, scale, 1, true);
      const ao = new Float64Array(D);
      const adq = new Float64Array(D);
      for (const a of alts) {
        const ra = evalRow(q, k, v, dO, D, scale, i, a);
        for (let d = 0; d < D; d++) {
          ao[d] += Math.abs(ra.o[d] - r.o[d]);
          adq[d] += Math.abs(ra.dq[d] - r.dq[d]);
        }
        const delta = new KeyAcc(t0, T - t0, D, duSlot);
        delta.add(ra, q, dO, i, scale, 1);
        delta.add(r, q, dO, i, scale, -1);
        for (const key of ['dk', 'dv', 'du'] as const) for (let n = 0; n < delta[key].length; n++) allow[key][n] += Math.abs(delta[key][n]);
      }
      for (let d = 0; d < D; d++) {
        note('o', o[i * D + d], r.o[d], r.om[d], ao[d]);
        note('dq', dq[i * D + d], r.dq[d], r.dqm[d], adq[d]);
      }
      rowsDone++;
    }
    for (let j = t0; j < T; j++)
      for (let d = 0; d < D; d++) {
        const n = (j - t0) * D + d;
        note('dk', dk[j * D + d], acc.dk[n], mag.dk[n], allow.dk[n]);
        note('dv', dv[j * D + d], acc.dv[n], mag.dv[n], allow.dv[n]);
      }
    if (sk) for (const [j, slot] of duSlot) note('du', du[j], acc.du[slot], mag.du[slot], allow.du[slot]);
  }
  return {
    err: Object.fromEntries(names.map((n) => [n, err[n] / (mags[n] + 1e-30)])),
    rows: rowsDone,
    duKeys,
    ambiguous,
    selected: selectedRows > 0 ? selectedSum / selectedRows : 0,
  };
}

/** The worst quantity of a check, and an error naming every quantity over the tolerance. */
function verdict(err: Record<string, number>): string {
  const worst = Object.entries(err).sort((a, b) => b[1] - a[1])[0];
  const bad = Object.entries(err).filter(([, e]) => !(e <= CHECK_TOL));
  if (bad.length > 0)
    throw new Error(`check failed: ${bad.map(([n, e]) => `${n} rel err ${e.toExponential(2)}`).join(', ')} > ${CHECK_TOL}`);
  return `max rel err ${worst[1].toExponential(1)} (${worst[0]})`;
}

interface Method {
  impl: string;
  /** The loss inputs by name (the gradients checked and timed). */
  params: Record<string, Tensor>;
  run(p: Record<string, Tensor>): Tensor;
  /** Checks one forward+backward; returns the note's check part (throws when it fails). */
  check(o: Tensor, grads: Record<string, Tensor>): Promise<string>;
}

export async function benchSparsek(opts: SparsekBenchOptions = {}): Promise<BenchRow[]> {
  const sizes = opts.sizes ?? [...SPARSEK_BENCH_DEFAULTS.sizes];
  const B = opts.B ?? SPARSEK_BENCH_DEFAULTS.B;
  const H = opts.H ?? SPARSEK_BENCH_DEFAULTS.H;
  const D = opts.D ?? SPARSEK_BENCH_DEFAULTS.D;
  const K = opts.k ?? SPARSEK_BENCH_DEFAULTS.k;
  const W = opts.window ?? SPARSEK_BENCH_DEFAULTS.window;
  const seconds = opts.seconds ?? 1;
  const dev = await openDevice(opts.device ?? 'webgpu');
  const backend: Backend = dev.backend;
  const live = () => memoryStats().backends[dev.name]?.tensors ?? 0;
  const before = live();
  const sync = () => backend.sync();
  const rows: BenchRow[] = [];
  const push = (r: BenchRow) => {
    rows.push(r);
    console.error(`attention sparsek: ${r.case} | ${r.impl} | ${r.failed ? 'FAILED' : r.value.toFixed(2)} ${r.unit}`);
  };
  const SW = K + W;
  try {
    for (const T of sizes) {
      const { q, k, v, dO, logF } = benchProblem(backend, B, T, H, D);
      const uHost = sparsekScores(B, T, H);
      const u = tensor(uHost, [B, T, H], { backend });
      const checked = (c: LocalCheck, extra: string) =>
        `${verdict(c.err)} against float64 on ${c.rows} sampled rows${extra}${c.ambiguous > 0 ? `, ${c.ambiguous} entries at a threshold allowed either way` : ''}`;
      const methods: Method[] = [
        {
          impl: `sparsek k=${K} window=${W}`,
          params: { q, k, v, u },
          run: (p) => sparsekAttention(p.q, p.k, p.v, p.u, { k: K, window: W, gate: 'kv' }),
          check: async (o, g) => {
            const c = await checkLocalAttention(
              { q, k, v, dO, u: uHost },
              { o, dq: g.q, dk: g.k, dv: g.v, du: g.u },
              { window: W, budget: K },
            );
            return `${c.selected.toFixed(1)} older positions selected per query; ${checked(c, `, du at ${c.duKeys} older keys`)}`;
          },
        },
        {
          impl: 'fox (ACP off)',
          params: { q, k, v, logF },
          run: (p) => forgettingAttention(p.q, p.k, p.v, p.logF, { acp: false }),
          check: async (o, g) =>
            `${verdict(await checkCase({ q, k, v, logF, dO }, { o, dq: g.q, dk: g.k, dv: g.v, dlogF: g.logF }, false))} against float64 on sampled rows`,
        },
        {
          impl: `sliding window ${SW}`,
          params: { q, k, v },
          run: (p) => softmaxAttention(p.q, p.k, p.v, { window: SW }),
          check: async (o, g) => checked(await checkLocalAttention({ q, k, v, dO }, { o, dq: g.q, dk: g.k, dv: g.v }, { window: SW }), ''),
        },
      ];
      const kase = (what: string) => `${what} B=${B} T=${T} H=${H} D=${D}`;
      for (const m of methods) {
        const impl = `${m.impl} ${dev.name}`;
        try {
          const { value, aux, grads } = valueAndGrad((p: Record<string, Tensor>) => {
            const o = m.run(p);
            return { loss: sum(mul(o, dO)), aux: o };
          })(m.params);
          let verdictNote: string;
          try {
            verdictNote = await m.check(aux, grads);
          } finally {
            for (const t of [value, aux, ...Object.values(grads)]) t.dispose();
          }
          const fwd = await timeLoop(() => m.run(m.params).dispose(), sync, seconds);
          const step = () => {
            const r = valueAndGrad((p: Record<string, Tensor>) => sum(mul(m.run(p), dO)))(m.params);
            for (const t of [r.value, ...Object.values(r.grads)]) t.dispose();
          };
          const both = await timeLoop(step, sync, seconds);
          const perTok = (ms: number) => `${((1000 * ms) / (B * T)).toFixed(3)} µs/token`;
          push({
            bench: 'attention',
            case: kase('fwd'),
            impl,
            value: fwd.ms,
            unit: 'ms',
            note: `${perTok(fwd.ms)}; ${verdictNote}; ${fwd.iters} it; ${dev.describe}`,
          });
          push({
            bench: 'attention',
            case: kase('fwd+bwd'),
            impl,
            value: both.ms,
            unit: 'ms',
            note: `${perTok(both.ms)}; ${both.iters} it; ${dev.describe}`,
          });
        } catch (e) {
          push(failedRow('attention', kase('fwd, fwd+bwd'), impl, firstLine(e).slice(0, 300), 'ms'));
        }
      }
      for (const t of [q, k, v, dO, logF, u]) t.dispose();
      emptyCache();
      // SPARSEK against full FoX at this T
      for (const what of ['fwd', 'fwd+bwd']) {
        const find = (p: string) => rows.find((r) => r.case === kase(what) && r.impl.startsWith(p) && !r.failed);
        const s = find('sparsek');
        const f = find('fox');
        if (s && f) s.note = `${(f.value / s.value).toFixed(2)}× the speed of fox; ${s.note}`;
      }
    }
  } finally {
    const left = live() - before;
    if (left > 0)
      push({
        bench: 'attention',
        case: 'leak check',
        impl: `foxgate ${dev.name}`,
        value: left,
        unit: 'tensors',
        note: 'live tensors left by the suite (expected 0)',
      });
    await dev.release();
  }
  return rows;
}
