/*
 * Forgetting attention at precision 'high' (QKᵀ and PV with f16 operands on the tensor cores,
 * packages/attention/src/forgetting/wgsl-f16.ts) on a hardware GPU:
 * `node check-attention-f16.mjs [OUTDIR] [checks] [bench] [ablate] [checks-bwd] [bench-bwd]` (default:
 * the first three;
 * bundled by scripts/gpu/build.sh; `node check.mjs` runs it too).
 *
 * Each part runs in its own child process with a kill timer (a kernel that hangs the device costs
 * its timeout, not the run):
 * - checks: the kernel against the fused CPU kernel in float64 (output, and the gradients of the
 *   f32 backward that reads its o and lse2) on odd lengths, Tq < Tk, ACP, softmax, every head dim
 *   it takes, the lazy rescaling forced at every new maximum (tau 0), operands outside the f16
 *   range, and each configuration of the ablation; error per quantity = max |got − want| over
 *   max |want| (norm-wise);
 * - bench: B4 H16 D64 T ∈ {4096, 16384}, forward 'highest' against 'high' side by side, ± ACP,
 *   and forward+backward at 'high'; every 'high' case first checked on sampled rows against
 *   float64 (`checkCase` of `foxgate bench attention`);
 * - ablate: the forward at T = 16384 for other tile configurations (keys per tile, subgroups per
 *   workgroup, rescaling threshold).
 * - sweep-bwd: the f16 backward's variants (`BWD_SWEEP`; FOXGATE_SWEEP=name,name picks some) beside
 *   the f32 backward: checks against float64 on two small problems, GPU time per kernel from a
 *   timestamp profile of one step and whole forward+backward steps at B4 H16 D64 T = 4096, 16384;
 * - checks-bwd, bench-bwd: checks and bench with the f16 backward on too (`wgsl-f16-bwd.ts`,
 *   `setFoxF16Bwd`): FOXGATE_F16_BWD (JSON) picks its configuration, else `FOX_F16_BWD_DEFAULT`;
 *   FOXGATE_F16_BWD set turns it on in the plain checks and bench parts as well.
 * Rows go to OUTDIR/attention-f16.json; a table is printed last.
 */
import { writeFileSync } from 'node:fs';
import { benchProblem, checkCase } from '../../apps/cli/src/bench/attention.js';
import {
  FOX_F16_BWD_DEFAULT,
  FOX_F16_DEFAULT,
  type FoxF16BwdConfig,
  type FoxF16Config,
  foxF16BwdConfig,
  foxF16Config,
  setFoxF16,
  setFoxF16Bwd,
} from '../../packages/attention/src/dev.js';
import { forgettingAttention } from '../../packages/attention/src/index.js';
import { type FoxResult, normwiseErrors, problem, runFox } from '../../packages/attention/test/util/fox.js';
import { valueAndGrad } from '../../packages/autograd/src/index.js';
import { initWebGPU, mul, sum, tensor, type WebGPUBackend } from '../../packages/tensor/src/index.js';
import { runChild } from './child.js';

type Row = Record<string, unknown> & { part: string; name: string; ok: boolean };

const emit = (r: Row) => console.log(`RESULT ${JSON.stringify(r)}`);

/** Norm-wise relative error per quantity. */
const errors = (got: FoxResult, want: FoxResult): Record<string, number> => normwiseErrors(got, want);

// f16 operands: o ≈ 1e-3 of its scale; the f32 backward recomputes P from f32 scores against the
// f16 forward's lse2, so its gradients carry the score error too
const TOL = { o: 3e-3, dq: 1e-2, dk: 1e-2, dv: 1e-2, dlogF: 1e-2 };

// the configuration under test: the library default, or FOXGATE_F16_CONFIG (JSON; set by the
// parent from the triage part); the ablation varies one field of it at a time
const BASE: FoxF16Config = process.env.FOXGATE_F16_CONFIG ? JSON.parse(process.env.FOXGATE_F16_CONFIG) : FOX_F16_DEFAULT;
const CONFIGS: Record<string, FoxF16Config> = {
  default: BASE,
  ...(BASE.qstage === 'shared' ? { resident: { ...BASE, qstage: 'resident' } } : { shared: { ...BASE, qstage: 'shared' } }),
  'bk32-shared': { ...BASE, bk: 32, qstage: 'shared' },
  'bk32-sg2': { ...BASE, bk: 32, sg: 2 },
  sg2: { ...BASE, sg: 2 },
  'sg2-shared': { ...BASE, sg: 2, qstage: 'shared' },
  ...(BASE.oacc === 'lanes' ? {} : { tau0: { ...BASE, tau: 0 }, tau15: { ...BASE, tau: 15 } }),
};

// the f16 backward: FOXGATE_F16_BWD = JSON configuration (or '1': the default) turns it on in
// checks and bench; the parts checks-bwd and bench-bwd turn it on whatever the variable says
const BWD_ENV = process.env.FOXGATE_F16_BWD;
const BWD_CONFIG: FoxF16BwdConfig = BWD_ENV && BWD_ENV !== '1' ? JSON.parse(BWD_ENV) : FOX_F16_BWD_DEFAULT;
let bwd: FoxF16BwdConfig | null = BWD_ENV ? BWD_CONFIG : null;
const bwdTag = () => (bwd ? ' bwd-f16' : '');

// triage: configurations side by side, each with its raw scores and two float64 checks. The H200
// computed wrong scores with every one of them until the workgroup layout fix of 2026-12-02
// (every workgroup variable a multiple of 16 bytes; benchmarks/2026-12-02-h200/tensor-cores.md).
const TRIAGE: Record<string, FoxF16Config> = {
  base: FOX_F16_DEFAULT,
  'bk16-sg1': { bk: 16, sg: 1 },
  'bk32-sg1': { bk: 32, sg: 1 },
  'bk32-sg2': { bk: 32, sg: 2 },
  lanes: { ...FOX_F16_DEFAULT, oacc: 'lanes' },
  lets: { ...FOX_F16_DEFAULT, lets: true },
  pack: { ...FOX_F16_DEFAULT, pack: true },
  split: { ...FOX_F16_DEFAULT, split: true },
  'bk16-sg2': { bk: 16, sg: 2 },
};

/** Raw scores of each row's first key tile (`debug: 'scores'`) against float64: max |err| / max |want|. */
async function scoresError(g: WebGPUBackend, cfg: FoxF16Config): Promise<number> {
  const p = problem(1, 130, 130, 1, 64, 7, [0, 5], 1);
  const D = 64;
  setFoxF16({ ...cfg, debug: 'scores' });
  g.setPrecision('high');
  try {
    const t = (a: Float64Array, shape: number[]) => tensor(Float32Array.from(a), shape, { backend: g });
    const [q, k, v] = [t(p.q, [1, 130, 1, D]), t(p.k, [1, 130, 1, D]), t(p.v, [1, 130, 1, D])];
    const o = forgettingAttention(q, k, v, t(new Float64Array(130), [1, 130, 1]));
    const got = await o.data();
    for (const x of [q, k, v, o]) x.dispose();
    const BQ = 32 * cfg.sg;
    let err = 0;
    let mag = 0;
    for (const i of [0, 1, 31, 32, 63, 64, 100, 127, 128, 129]) {
      const i0 = Math.floor(i / BQ) * BQ;
      const j0 = Math.floor((Math.min(i0 + BQ, 130) - 1) / cfg.bk) * cfg.bk;
      for (let c = 0; c < cfg.bk; c++) {
        let want = 0;
        if (j0 + c < 130) for (let d = 0; d < D; d++) want += p.q[i * D + d] * p.k[(j0 + c) * D + d];
        want *= Math.LOG2E / Math.sqrt(D);
        err = Math.max(err, Math.abs(got[i * D + c] - want));
        mag = Math.max(mag, Math.abs(want));
      }
    }
    return Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / mag;
  } finally {
    setFoxF16(null);
    g.setPrecision('highest');
  }
}

/**
 * debug: what the kernel writes, stage by stage, on one problem (B1 T130 H1 D64): the ids each
 * lane sees ('ids'), the Q it staged ('q'), its raw scores per row ('scores'), and whether the
 * plain forward's output changes with its input (o written at all).
 */
async function debugPart(g: WebGPUBackend): Promise<void> {
  const D = 64;
  const T = 130;
  const p = problem(1, T, T, 1, D, 7, [0, 5], 1);
  const cfg = BASE;
  const rowsOf = [0, 1, 31, 32, 33, 63, 64, 100, 127, 128, 129];
  const run = async (debug: FoxF16Config['debug'], scaleQ = 1): Promise<Float32Array> => {
    setFoxF16({ ...cfg, ...(debug ? { debug } : {}) });
    g.setPrecision('high');
    try {
      const t = (a: Float64Array, shape: number[]) => tensor(Float32Array.from(a), shape, { backend: g });
      const [q, k, v] = [
        t(
          p.q.map((x) => x * scaleQ),
          [1, T, 1, D],
        ),
        t(p.k, [1, T, 1, D]),
        t(p.v, [1, T, 1, D]),
      ];
      const o = forgettingAttention(q, k, v, t(new Float64Array(T), [1, T, 1]));
      const got = await o.data();
      for (const x of [q, k, v, o]) x.dispose();
      return got as Float32Array;
    } finally {
      setFoxF16(null);
      g.setPrecision('highest');
    }
  };
  const ids = await run('ids');
  emit({ part: 'debug', name: 'ids', ok: true, rows: rowsOf.map((i) => [i, ...Array.from(ids.slice(i * D, i * D + 8))]) });
  const qs = await run('q');
  const qErr = rowsOf.map((i) => {
    let e = 0;
    for (let d = 0; d < D; d++) e = Math.max(e, Math.abs(qs[i * D + d] - p.q[i * D + d]));
    return [i, e, qs[i * D], p.q[i * D]];
  });
  emit({ part: 'debug', name: 'q', ok: qErr.every((r) => (r[1] as number) < 1e-2), rows: qErr });
  const ks = await run('k');
  // the last key tile staged is keys 0…bk−1 (no ACP); lane r < bk of each subgroup wrote key r
  const kErr = [0, 1, 15, 32, 33, 47, 96, 100].map((i) => {
    const r = i % 32;
    let e = 0;
    for (let d = 0; d < D; d++) e = Math.max(e, Math.abs(ks[i * D + d] - p.k[r * D + d]));
    return [i, e, ks[i * D], p.k[r * D]];
  });
  emit({ part: 'debug', name: 'k', ok: kErr.every((r) => (r[1] as number) < 1e-2), rows: kErr });
  const sc = await run('scores');
  const BQ = 32 * cfg.sg;
  const sErr = rowsOf.map((i) => {
    const i0 = Math.floor(i / BQ) * BQ;
    const j0 = Math.floor((Math.min(i0 + BQ, T) - 1) / cfg.bk) * cfg.bk;
    let e = 0;
    let m = 0;
    const pair: number[] = [];
    for (let c = 0; c < cfg.bk; c++) {
      let want = 0;
      if (j0 + c < T) for (let d = 0; d < D; d++) want += p.q[i * D + d] * p.k[(j0 + c) * D + d];
      want *= Math.LOG2E / Math.sqrt(D);
      if (c < 2) pair.push(sc[i * D + c], want);
      e = Math.max(e, Math.abs(sc[i * D + c] - want));
      m = Math.max(m, Math.abs(want));
    }
    return [i, j0, e / (m || 1), ...pair];
  });
  emit({ part: 'debug', name: 'scores', ok: sErr.every((r) => (r[2] as number) < 3e-3), rows: sErr });
  const o1 = await run(undefined, 1);
  const o2 = await run(undefined, 2);
  let diff = 0;
  for (let i = 0; i < o1.length; i++) diff = Math.max(diff, Math.abs(o1[i] - o2[i]));
  emit({ part: 'debug', name: 'o changes with q', ok: diff > 0, diff, o1: Array.from(o1.slice(0, 4)), o2: Array.from(o2.slice(0, 4)) });
}

async function triage(g: WebGPUBackend): Promise<void> {
  const small: [string, ReturnType<typeof problem>, Parameters<typeof runFox>[3]][] = [
    ['softmax', problem(1, 130, 130, 2, 64, 3, [0, 5], 1), { gated: false }],
    ['gated ACP', problem(1, 300, 300, 2, 64, 4, [-3, 1], 0.5), { gated: true, acp: true, stats: true }],
  ];
  const wants = await Promise.all(small.map(([, p, o]) => runFox(p, 'cpu', 'float64', o)));
  const x = benchProblem(g, 4, 16384, 16, 64);
  const fwdFlops = 2 * 2 * 4 * 16 * 64 * ((16384 * 16385) / 2);
  for (const [name, cfg] of Object.entries(TRIAGE)) {
    const row: Row = { part: 'triage', name, ok: false, cfg, err: {} };
    try {
      row.scores = await scoresError(g, cfg);
      // FOXGATE_TRIAGE_FAST: the raw scores only
      if (process.env.FOXGATE_TRIAGE_FAST) {
        row.ok = row.scores < 3e-3;
        emit(row);
        continue;
      }
      let ok = true;
      for (const [n, [label, p, opts]] of small.entries()) {
        setFoxF16(cfg);
        g.setPrecision('high');
        const got = await runFox(p, g, 'float32', opts);
        setFoxF16(null);
        g.setPrecision('highest');
        const e = errors(got, wants[n]);
        (row.err as Record<string, number>)[`${label} o`] = e.o;
        (row.err as Record<string, number>)[`${label} dq`] = e.dq;
        ok &&= Object.entries(e).every(([k, v]) => v <= TOL[k as keyof typeof TOL]);
      }
      row.ok = ok;
      setFoxF16(cfg);
      g.setPrecision('high');
      for (const acp of [false, true]) {
        const t = await timeLoop(g, () => forgettingAttention(x.q, x.k, x.v, x.logF, { acp }).dispose(), 0.3);
        row[acp ? 'msAcp' : 'ms'] = t.ms;
        if (!acp) row.tflops = fwdFlops / t.ms / 1e9;
      }
    } catch (e) {
      row.msg = (e as Error).message.slice(0, 400);
    } finally {
      setFoxF16(null);
      g.setPrecision('highest');
    }
    emit(row);
  }
  for (const t of Object.values(x)) t.dispose();
}

async function checks(g: WebGPUBackend): Promise<void> {
  const cases: [B: number, Tq: number, Tk: number, H: number, D: number][] = [
    [2, 133, 133, 3, 64],
    [1, 75, 301, 2, 64],
    [1, 300, 300, 2, 64],
    [1, 1, 150, 2, 64],
    [2, 257, 257, 2, 16],
    [1, 190, 190, 3, 32],
    [1, 129, 200, 2, 48],
    [1, 520, 520, 1, 64],
  ];
  const kinds = [
    ['gated', { gated: true }, [0, 5]],
    ['gated ACP', { gated: true, acp: true, stats: true }, [-3, 1]],
    ['softmax', { gated: false }, [0, 5]],
  ] as const;
  let seed = 100;
  const one = async (label: string, cfg: string, p: ReturnType<typeof problem>, opts: Parameters<typeof runFox>[3], tol = TOL) => {
    const name = `${label} B=${p.B} Tq=${p.Tq} Tk=${p.Tk} H=${p.H} D=${p.D} [${cfg}]${bwdTag()}`;
    try {
      setFoxF16(CONFIGS[cfg]);
      setFoxF16Bwd(bwd);
      g.setPrecision('high');
      if (!foxF16Config(g, p.D, null)) throw new Error('the f16 route is not taken');
      if (bwd && !foxF16BwdConfig(g, p.D, null)) throw new Error('the f16 backward route is not taken');
      const want = await runFox(p, 'cpu', 'float64', opts);
      const got = await runFox(p, g, 'float32', opts);
      const err = errors(got, want);
      const bad = Object.entries(err).filter(([k, e]) => !(e <= tol[k as keyof typeof TOL]));
      const frac = got.fraction !== undefined && want.fraction !== undefined ? got.fraction === want.fraction : true;
      emit({ part: 'checks', name, ok: bad.length === 0 && frac, err, fraction: got.fraction, fractionWant: want.fraction });
    } catch (e) {
      emit({ part: 'checks', name, ok: false, msg: (e as Error).message.slice(0, 400) });
    } finally {
      g.setPrecision('highest');
      setFoxF16(null);
      setFoxF16Bwd(null);
    }
  };
  for (const [B, Tq, Tk, H, D] of cases)
    for (const [label, opts, gate] of kinds) await one(label, 'default', problem(B, Tq, Tk, H, D, seed++, [gate[0], gate[1]], 0.5), opts);
  // larger scores (q, k ~ N(0, 1)): the lazy maximum moves more often
  for (const cfg of Object.keys(CONFIGS))
    for (const [label, opts, gate] of kinds)
      await one(`${label} qk 1`, cfg, problem(1, 390, 390, 2, 64, seed++, [gate[0], gate[1]], 1), opts);
  // operands outside the f16 range: q·1e5 with k·1e-5 (same scores), v·1e6; and v·1e-6
  for (const [sq, sk, sv] of [
    [1e5, 1e-5, 1e6],
    [1, 1, 1e-6],
  ]) {
    const base = problem(1, 200, 200, 2, 64, seed++, [0, 5], 0.5);
    const p = { ...base, q: base.q.map((x) => x * sq), k: base.k.map((x) => x * sk), v: base.v.map((x) => x * sv) };
    await one(`range q·${sq} k·${sk} v·${sv}`, 'default', p, { gated: true });
  }
}

async function timeLoop(g: WebGPUBackend, run: () => void, seconds: number): Promise<{ ms: number; iters: number }> {
  run();
  run();
  await g.sync();
  const t0 = performance.now();
  run();
  await g.sync();
  const per = Math.max((performance.now() - t0) / 1000, 1e-5);
  const iters = Math.max(2, Math.min(200, Math.round(seconds / per)));
  const t1 = performance.now();
  for (let i = 0; i < iters; i++) run();
  await g.sync();
  return { ms: (performance.now() - t1) / iters, iters };
}

async function bench(g: WebGPUBackend, sizes: number[], configs: string[], withBwd: boolean, part: string): Promise<void> {
  const [B, H, D] = [4, 16, 64];
  for (const T of sizes) {
    const x = benchProblem(g, B, T, H, D);
    const fwdFlops = 2 * 2 * B * H * D * ((T * (T + 1)) / 2);
    for (const acp of [false, true]) {
      const tag = `B=${B} T=${T} H=${H} D=${D}${acp ? ' ACP' : ''}`;
      const call = { acp };
      const fwd = () => forgettingAttention(x.q, x.k, x.v, x.logF, call).dispose();
      if (part === 'bench') {
        g.setPrecision('highest');
        const t = await timeLoop(g, fwd, 0.5);
        emit({ part, name: `fwd ${tag} highest`, ok: true, ...t, tflops: fwdFlops / t.ms / 1e9 });
      }
      for (const cfg of configs) {
        g.setPrecision('high');
        setFoxF16(CONFIGS[cfg]);
        setFoxF16Bwd(bwd);
        try {
          let err: Record<string, number> = {};
          let frac = Number.NaN;
          if (part === 'bench') {
            const { value, aux, grads } = valueAndGrad((p: typeof x) => {
              const r = forgettingAttention(p.q, p.k, p.v, p.logF, { ...call, stats: true });
              return { loss: sum(mul(r.out, p.dO)), aux: r };
            })(x);
            frac = (await aux.stats.fraction.data())[0];
            err = await checkCase(x, { o: aux.out, dq: grads.q, dk: grads.k, dv: grads.v, dlogF: grads.logF }, acp);
            for (const t of [value, aux.out, aux.stats.fraction, aux.stats.computedBlocks, grads.q, grads.k, grads.v, grads.logF])
              t.dispose();
          }
          const ok = Object.entries(err).every(([k, e]) => e <= TOL[k as keyof typeof TOL]);
          const t = await timeLoop(g, fwd, 0.5);
          emit({ part, name: `fwd ${tag} high [${cfg}]${bwdTag()}`, ok, ...t, tflops: fwdFlops / t.ms / 1e9, err, fraction: frac });
          if (withBwd) {
            const step = () => {
              const { value, grads } = valueAndGrad((p: typeof x) => sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF, call), p.dO)))(x);
              for (const y of [value, grads.q, grads.k, grads.v, grads.logF]) y.dispose();
            };
            const tb = await timeLoop(g, step, 0.8);
            // products executed: the forward's two, the backward's seven (dK/dV kernel: S, dP, dV, dK; dQ kernel: S, dP, dQ)
            emit({
              part,
              name: `fwd+bwd ${tag} high [${cfg}] (${bwd ? 'f16' : 'f32'} backward)`,
              ok,
              ...tb,
              tflops: (4.5 * fwdFlops) / tb.ms / 1e9,
            });
          }
        } catch (e) {
          emit({ part, name: `fwd ${tag} high [${cfg}]`, ok: false, msg: (e as Error).message.slice(0, 400) });
        } finally {
          setFoxF16(null);
          setFoxF16Bwd(null);
          g.setPrecision('highest');
        }
      }
    }
    for (const t of Object.values(x)) t.dispose();
  }
}

// sweep-bwd: the f16 backward's variants (FoxF16BwdConfig) side by side, each checked on two
// small problems against float64, then timed per kernel from a timestamp profile of one forward +
// backward step and as whole steps, at B4 H16 D64 T = 4096 and 16384 (gated, no ACP), beside the
// f32 backward
// the variants are relative to the first f16 backward (16 × 16 tiles, no prefetch); default is the library's
const BD: FoxF16BwdConfig = { kvSg: 2, bq: 16, qSg: 2, bk: 16 };
const BWD_SWEEP: Record<string, FoxF16BwdConfig | null> = {
  f32: null,
  default: FOX_F16_BWD_DEFAULT,
  first: BD,
  pshared: { ...BD, pkeep: 'shared' },
  hold: { ...BD, hold: true },
  split: { ...BD, split: true },
  'split-pshared': { ...BD, split: true, pkeep: 'shared' },
  'split-hold': { ...BD, split: true, hold: true },
  'split-hold-pshared': { ...BD, split: true, hold: true, pkeep: 'shared' },
  'split-hold-sg4': { ...BD, split: true, hold: true, kvSg: 4, qSg: 4 },
  'split-hold-sg1': { ...BD, split: true, hold: true, kvSg: 1, qSg: 1 },
  'split-hold-32': { ...BD, split: true, hold: true, bq: 32, bk: 32 },
  'split-hold-32-sg1': { ...BD, split: true, hold: true, bq: 32, bk: 32, kvSg: 1, qSg: 1 },
  sg4: { ...BD, kvSg: 4, qSg: 4 },
  '32': { ...BD, bq: 32, bk: 32 },
  prefetch: { ...BD, prefetch: true },
  'prefetch-pshared': { ...BD, prefetch: true, pkeep: 'shared' },
  'prefetch-hold': { ...BD, prefetch: true, hold: true },
  'prefetch-split': { ...BD, prefetch: true, split: true },
  'prefetch-split-hold': { ...BD, prefetch: true, split: true, hold: true },
  'prefetch-32': { ...BD, prefetch: true, bq: 32, bk: 32 },
  'prefetch-split-hold-32': { ...BD, prefetch: true, split: true, hold: true, bq: 32, bk: 32 },
  'prefetch-sg1': { ...BD, prefetch: true, kvSg: 1, qSg: 1 },
  'prefetch-sg1-32': { ...BD, prefetch: true, kvSg: 1, qSg: 1, bq: 32, bk: 32 },
  // forward variants (FWD_SWEEP) beside the f32 and the default f16 backward
  'fwd-noprefetch-f32': null,
  'fwd-noprefetch-default': FOX_F16_BWD_DEFAULT,
  'fwd-bk32-f32': null,
  'fwd-sg2-f32': null,
  'fwd-resident-f32': null,
  'prefetch-32-pshared': { ...BD, prefetch: true, bq: 32, bk: 32, pkeep: 'shared' },
  'prefetch-32-kv1': { ...BD, prefetch: true, bq: 32, bk: 32, kvSg: 1 },
  'prefetch-32-q1': { ...BD, prefetch: true, bq: 32, bk: 32, qSg: 1 },
  'prefetch-32-kv4': { ...BD, prefetch: true, bq: 32, bk: 32, kvSg: 4 },
  // timing only (wrong results): pieces of the tile loop left out (FoxF16BwdConfig.ablate)
  ...Object.fromEntries(
    [
      ['stage'],
      ['terms'],
      ['s'],
      ['dp'],
      ['lanes'],
      ['acc'],
      ['bar'],
      ['lanes', 'acc'],
      ['stage', 'terms', 'dp', 'lanes', 'acc', 'bar'],
      ['s', 'dp', 'lanes', 'acc', 'terms'],
    ].map((a) => [`ablate-${a.join('-')}`, { ...BD, ablate: a }]),
  ),
};

/** The forward configuration of a sweep entry: FOX_F16_DEFAULT unless named here. */
const FWD_SWEEP: Record<string, FoxF16Config> = {
  'fwd-noprefetch-f32': { ...FOX_F16_DEFAULT, prefetch: false },
  'fwd-noprefetch-default': { ...FOX_F16_DEFAULT, prefetch: false },
  'fwd-bk32-f32': { ...FOX_F16_DEFAULT, bk: 32 },
  'fwd-sg2-f32': { ...FOX_F16_DEFAULT, sg: 2 },
  'fwd-resident-f32': { ...FOX_F16_DEFAULT, qstage: 'resident' },
};

async function sweepBwd(g: WebGPUBackend): Promise<void> {
  const only = process.env.FOXGATE_SWEEP?.split(',');
  const small: [string, ReturnType<typeof problem>, Parameters<typeof runFox>[3]][] = [
    ['gated ACP', problem(1, 300, 300, 2, 64, 41, [-3, 1], 0.5), { gated: true, acp: true, stats: true }],
    ['softmax qk 1', problem(1, 390, 390, 2, 64, 42, [0, 5], 1), { gated: false }],
  ];
  const wants = await Promise.all(small.map(([, p, o]) => runFox(p, 'cpu', 'float64', o)));
  const [B, H, D] = [4, 16, 64];
  const xs = new Map([4096, 16384].map((T) => [T, benchProblem(g, B, T, H, D)]));
  for (const [name, cfg] of Object.entries(BWD_SWEEP)) {
    if (only && !only.includes(name)) continue;
    const row: Row = { part: 'sweep-bwd', name, ok: false, cfg, ...(FWD_SWEEP[name] ? { fwd: FWD_SWEEP[name] } : {}), err: {} };
    try {
      g.setPrecision('high');
      setFoxF16(FWD_SWEEP[name] ?? FOX_F16_DEFAULT);
      setFoxF16Bwd(cfg);
      if (cfg && !foxF16BwdConfig(g, D, null)) throw new Error('the f16 backward route is not taken');
      let ok = true;
      for (const [n, [label, p, opts]] of small.entries()) {
        const e = errors(await runFox(p, g, 'float32', opts), wants[n]);
        for (const [k, v] of Object.entries(e)) (row.err as Record<string, number>)[`${label} ${k}`] = v;
        ok &&= Object.entries(e).every(([k, v]) => v <= TOL[k as keyof typeof TOL]);
      }
      row.ok = ok;
      for (const [T, x] of xs) {
        const step = () => {
          const { value, grads } = valueAndGrad((p: typeof x) => sum(mul(forgettingAttention(p.q, p.k, p.v, p.logF), p.dO)))(x);
          for (const y of [value, grads.q, grads.k, grads.v, grads.logF]) y.dispose();
        };
        // timed steps first: the profiled step then runs at full clocks
        row[`ms${T}`] = (await timeLoop(g, step, 0.6)).ms;
        g.startProfile();
        step();
        const prof = await g.stopProfile();
        row[`kernels${T}`] = Object.fromEntries(
          prof.kernels.filter((k) => k.family === 'attention').map((k) => [k.kernel, Number(k.ms.toFixed(3))]),
        );
      }
    } catch (e) {
      row.msg = (e as Error).message.slice(0, 400);
    } finally {
      setFoxF16(null);
      setFoxF16Bwd(null);
      g.setPrecision('highest');
    }
    emit(row);
  }
  for (const x of xs.values()) for (const t of Object.values(x)) t.dispose();
}

async function child(part: string): Promise<void> {
  const g = await initWebGPU({ precision: 'high', profiling: part === 'sweep-bwd' });
  g.setPrecision('highest');
  emit({ part, name: 'adapter', ok: g.tensorCores, tensorCores: g.info.tensorCores, device: g.info.description });
  // FOXGATE_F16_CONFIG with emulate: true runs the parts on an adapter without tensor cores (the script's own check)
  if (!g.tensorCores && BASE.emulate !== true) return;
  if (part === 'debug') await debugPart(g);
  if (part === 'sweep-bwd') await sweepBwd(g);
  if (part === 'triage') await triage(g);
  if (part.endsWith('-bwd')) bwd = BWD_CONFIG;
  if (part === 'checks' || part === 'checks-bwd') await checks(g);
  if (part === 'bench' || part === 'bench-bwd') await bench(g, [4096, 16384], ['default'], true, 'bench');
  if (part === 'ablate')
    await bench(
      g,
      [16384],
      Object.keys(CONFIGS).filter((c) => c !== 'default'),
      false,
      part,
    );
  await g.destroy();
}

function runPart(part: string, timeoutMs: number): Promise<Row[]> {
  return runChild<Row>([part], { part }, timeoutMs, (r) => {
    if (r.part === 'debug')
      console.log(
        `  [debug] ${r.name} ${r.ok ? 'ok' : 'WRONG'}: ${JSON.stringify({ ...r, part: undefined, name: undefined, ok: undefined })}`,
      );
    const e = r.err as Record<string, number> | undefined;
    const worst = e ? Object.entries(e).sort((a, b) => b[1] - a[1])[0] : undefined;
    console.log(
      `  ${r.ok ? 'ok  ' : 'FAIL'} [${part}] ${r.name}${r.ms ? ` ${(r.ms as number).toFixed(2)} ms` : ''}${r.tflops ? ` ${(r.tflops as number).toFixed(1)} TFLOP/s` : ''}${worst ? ` err ${worst[0]} ${worst[1].toExponential(1)}` : ''}${r.scores !== undefined ? ` scores ${(r.scores as number).toExponential(1)}` : ''}${r.msAcp ? ` ACP ${(r.msAcp as number).toFixed(2)} ms` : ''}${[4096, 16384].map((T) => (r[`ms${T}`] ? ` T=${T} fwd+bwd ${(r[`ms${T}`] as number).toFixed(2)} ms ${JSON.stringify(r[`kernels${T}`])}` : '')).join('')}${r.msg ? ` ${r.msg}` : ''}`,
    );
  });
}

/** Runs the parts (each in a child) and returns the rows; writes OUTDIR/attention-f16.json when given. */
export async function checkAttentionF16(outDir?: string, parts = ['checks', 'bench', 'ablate']): Promise<Row[]> {
  const timeoutMs = Number(process.env.FOXGATE_PART_TIMEOUT_MS ?? 120000);
  const all: Row[] = [];
  for (const part of parts) {
    all.push(...(await runPart(part, timeoutMs)));
    if (part === 'triage') {
      // the later parts test the fastest configuration that passed
      const best = all
        .filter((r) => r.part === 'triage' && r.ok && typeof r.ms === 'number')
        .sort((a, b) => (a.ms as number) - (b.ms as number))[0];
      if (best) {
        process.env.FOXGATE_F16_CONFIG = JSON.stringify(best.cfg);
        console.log(`  triage: the later parts use '${best.name}' ${JSON.stringify(best.cfg)}`);
      }
    }
    if (outDir) writeFileSync(`${outDir}/attention-f16.json`, `${JSON.stringify(all, null, 1)}\n`);
  }
  return all;
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]);
  process.exit(0);
} else if (process.argv[1]?.includes('check-attention-f16')) {
  const args = process.argv.slice(2);
  const outDir =
    args[0] && !['debug', 'triage', 'checks', 'bench', 'ablate', 'checks-bwd', 'bench-bwd'].includes(args[0]) ? args[0] : undefined;
  const parts = args.slice(outDir ? 1 : 0);
  const rows = await checkAttentionF16(outDir, parts.length ? parts : undefined);
  const failed = rows.filter((r) => !r.ok && r.name !== 'exit').length + rows.filter((r) => r.name === 'exit' && !r.ok).length;
  console.log('\npart    case                                                       ms      TFLOP/s  worst rel err');
  for (const r of rows)
    if (r.name !== 'exit' && r.name !== 'adapter') {
      const e = r.err as Record<string, number> | undefined;
      const worst = e && Object.keys(e).length ? Object.entries(e).sort((a, b) => b[1] - a[1])[0] : undefined;
      console.log(
        `${r.part.padEnd(7)} ${String(r.name).slice(0, 58).padEnd(58)} ${r.ms ? (r.ms as number).toFixed(2).padStart(7) : '       '} ${r.tflops ? (r.tflops as number).toFixed(1).padStart(7) : '       '}  ${worst ? `${worst[0]} ${worst[1].toExponential(1)}` : ''} ${r.ok ? '' : 'FAIL'}`,
      );
    }
  console.log(`attention f16 failures: ${failed}`);
  process.exit(failed ? 1 : 0);
}
