import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { flattenTree, valueAndGrad } from '@foxgate/autograd';
import {
  cleanCheckpointTemps,
  createModel,
  loadCheckpoint,
  type Model,
  type ModelConfig,
  type ModelParams,
  saveCheckpoint,
} from '@foxgate/models';
import { dispose, FoxgateError, fail, full, loadSafetensors, mul, rngKey, type Tensor, tidy } from '@foxgate/tensor';
import { adamw } from '../adamw.js';
import { accumulateGrads } from '../optim/accumulate.js';
import { clipFactor, globalNorm } from '../optim/clip.js';
import { warmupCosine } from '../optim/schedule.js';
import { adamwStateFromTensors, adamwStateTensors } from '../optim/state.js';
import { type RunConfig, runConfig } from './config.js';
import { type RunData, runData } from './data-source.js';
import { openDevice, type RunDevice } from './device.js';
import { batchTensors, type EvalResult, evaluate, sampleOf } from './eval.js';
import { initFromCheckpoint } from './init-from.js';

export interface StepMetrics {
  kind: 'train';
  step: number;
  tokens: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  tokensPerSecond: number;
  seconds: number;
}

export interface EvalMetrics {
  kind: 'eval';
  step: number;
  tokens: number;
  loss: number;
  accuracy?: number;
  perplexity?: number;
  seconds: number;
}

export interface TrainStart {
  config: RunConfig;
  modelConfig: ModelConfig;
  params: number;
  device: string;
  data: string;
  /** The step a resumed run continues from (0 for a new run). */
  fromStep: number;
  tokensPerStep: number;
}

export interface TrainHooks {
  onStart?(info: TrainStart): void;
  /** Every step (a metrics line is written every `logEvery` steps). */
  onStep?(m: StepMetrics): void;
  onEval?(m: EvalMetrics): void;
  onCheckpoint?(dir: string, step: number): void;
  /** Polled between steps: true stops the run after a checkpoint (Ctrl-C). */
  shouldStop?(): boolean;
}

export interface TrainOptions {
  /** The run folder (created if missing; must be empty or absent for a new run). */
  out: string;
  /** Continue the run in `out` from its last checkpoint; `overrides` may then only change steps and the cadences. */
  resume?: boolean;
  hooks?: TrainHooks;
  /** Skip the final evaluation (tests of the loop itself). */
  skipFinalEval?: boolean;
}

export interface TrainResult {
  out: string;
  config: RunConfig;
  modelConfig: ModelConfig;
  step: number;
  tokens: number;
  /** The last step's training loss. */
  loss: number;
  /** Every training loss of this process's steps, in order. */
  losses: number[];
  seconds: number;
  stopped: boolean;
  device: string;
  eval: EvalResult | null;
}

const CHECKPOINT = 'checkpoint';
const RESUMABLE = new Set(['steps', 'evalEvery', 'checkpointEvery', 'logEvery', 'device', 'evalRows', 'extrapolate']);

interface SavedState {
  step: number;
  tokens: number;
  data: unknown;
  seconds: number;
}

/**
 * `saveCheckpoint` replaces a checkpoint by two renames (old → `.checkpoint.tmp-…-old`, new →
 * `checkpoint`); a process killed between them leaves no `checkpoint/` but a complete `-old`
 * one. Put that back, so a resume never finds its last good checkpoint missing.
 */
function recoverCheckpoint(out: string): void {
  if (!existsSync(out) || existsSync(join(out, CHECKPOINT))) return;
  const old = readdirSync(out)
    .filter((f) => /^\.checkpoint\.tmp-\d+-\d+-old$/.test(f) && existsSync(join(out, f, 'config.json')))
    .sort((a, b) => statSync(join(out, b)).mtimeMs - statSync(join(out, a)).mtimeMs);
  if (old.length) renameSync(join(out, old[0]), join(out, CHECKPOINT));
}

function checkOut(out: string, resume: boolean): void {
  if (resume) {
    recoverCheckpoint(out);
    if (!existsSync(join(out, CHECKPOINT, 'config.json')))
      fail('train', `--resume ${out}: no checkpoint in that folder (expected ${join(out, CHECKPOINT)})`);
    return;
  }
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) fail('train', `--out ${out}: exists and is not a folder`);
    if (existsSync(join(out, 'metrics.jsonl')) || existsSync(join(out, CHECKPOINT))) {
      fail('train', `--out ${out}: already holds a run; use --resume ${out} to continue it, or another --out`);
    }
  }
  try {
    mkdirSync(out, { recursive: true });
    const probe = join(out, `.write-test-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    if (e instanceof FoxgateError) throw e;
    fail('train', `--out ${out}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The `run` settings a run folder's config.json recorded (a one-line error naming the file when it cannot be read). */
function readRunConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail('train', `--resume: ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail('train', `--resume: ${file}: not valid JSON (${(e as Error).message})`);
  }
  const run = (v as { run?: unknown } | null)?.run;
  if (run === null || typeof run !== 'object' || Array.isArray(run))
    fail('train', `--resume: ${file}: no "run" object (not a run folder's config.json)`);
  return run as Record<string, unknown>;
}

/** Writes `file` atomically (temp + rename). */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Keeps the metrics lines up to `step` (a resumed run rewrites what came after its checkpoint). */
function truncateMetrics(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  writeAtomic(file, keep.length ? `${keep.join('\n')}\n` : '');
}

/** The name of the first leaf holding a NaN or ±Inf (async reads: WebGPU cannot read synchronously). */
async function firstNonFinite(tree: unknown): Promise<string | null> {
  for (const [name, g] of flattenTree(tree)) {
    const d = await g.data();
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return name;
  }
  return null;
}

/**
 * Trains a model as `overrides` (over `DEFAULT_RUN`) says, in the run folder `opts.out`:
 * `config.json` (the effective settings), `metrics.jsonl` (a line per logged step and per
 * evaluation, flushed), `checkpoint/` (params, optimizer state, step, data position; written
 * atomically every `checkpointEvery` steps, at the end and on a stop) and `eval.json` (the final
 * evaluation). `resume: true` continues from the checkpoint so that the next losses equal an
 * uninterrupted run's (bit-identical on the CPU).
 */
export async function train(overrides: Record<string, unknown>, opts: TrainOptions): Promise<TrainResult> {
  const out = resolve(opts.out);
  const resume = opts.resume === true;
  checkOut(out, resume);
  let cfg: RunConfig;
  if (resume) {
    const prev = readRunConfig(join(out, 'config.json'));
    for (const k of Object.keys(overrides)) {
      if (!RESUMABLE.has(k) && JSON.stringify(overrides[k]) !== JSON.stringify(prev[k])) {
        fail('train', `--resume: ${k} differs from the run's (${JSON.stringify(prev[k])}); only ${[...RESUMABLE].join(', ')} may change`);
      }
    }
    cfg = runConfig({ ...prev, ...overrides }, `${join(out, 'config.json')}`);
  } else cfg = runConfig(overrides);
  // the model fields the settings give themselves (a run started from a checkpoint takes the rest from it)
  const given = { ...((overrides.model as Record<string, unknown> | undefined) ?? {}) };

  const data = runData(cfg);
  const device = await openDevice(cfg.device);
  try {
    return await run(cfg, data, device, out, resume, opts, given);
  } finally {
    await device.release();
  }
}

async function run(
  cfg: RunConfig,
  data: RunData,
  device: RunDevice,
  out: string,
  resume: boolean,
  opts: TrainOptions,
  given: Record<string, unknown>,
): Promise<TrainResult> {
  const hooks = opts.hooks ?? {};
  const backend = device.backend;
  let model: Model;
  let params: ModelParams;
  let saved: SavedState | null = null;
  const ckptDir = join(out, CHECKPOINT);
  cleanCheckpointTemps(ckptDir);
  if (resume) {
    const ck = await loadCheckpoint(ckptDir, { backend });
    model = ck.model;
    params = ck.params;
    saved = ck.extra?.train as SavedState;
    if (!saved || typeof saved.step !== 'number')
      fail('train', `${join(ckptDir, 'config.json')}: no training state (not a run checkpoint)`);
    if (model.config.vocab_size !== data.vocabSize) {
      fail(
        'train',
        `${ckptDir}: the checkpoint's vocab_size ${model.config.vocab_size} does not match the data's tokenizer (${data.vocabSize})`,
      );
    }
  } else if (cfg.initFrom) {
    // weights by name from the checkpoint (sparsek from a Transformer: the scoring network from the seed)
    ({ model, params } = await initFromCheckpoint(cfg.initFrom, { given, vocabSize: data.vocabSize, seed: cfg.seed, backend }));
    cfg = { ...cfg, model: { ...cfg.model, model: model.config.model } };
  } else {
    model = createModel({ ...cfg.model, vocab_size: data.vocabSize } as never);
    params = model.init(rngKey(cfg.seed), { backend });
  }
  const fox = model.config.fgate_type !== 'none';
  if (cfg.acp && !fox) cfg = { ...cfg, acp: false }; // ACP needs forget gates; recorded in config.json
  if (cfg.docResets && !fox) fail('train', `docResets needs a FoX model; '${model.config.model}' has no forget gate`);
  writeAtomic(
    join(out, 'config.json'),
    `${JSON.stringify({ run: cfg, model: model.config, device: device.describe, data: data.describe }, null, 2)}\n`,
  );

  const tokensPerStep = cfg.batch * cfg.context * cfg.accumulate;
  const totalTokens = Math.max(1, cfg.steps * tokensPerStep);
  const schedule = warmupCosine({
    peak: cfg.lr,
    warmupTokens: cfg.warmup * totalTokens,
    totalTokens: totalTokens + 1,
    minRatio: cfg.minLrRatio,
  });
  const lrAt = (step: number) => schedule((step - 1) * tokensPerStep);
  const opt = adamw<ModelParams>({ lr: lrAt, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay });
  let state = opt.init(params);
  if (resume && saved) {
    const moments = await loadSafetensors(join(ckptDir, 'optimizer.safetensors'), { backend: 'cpu' });
    dispose(state);
    state = adamwStateFromTensors(params, moments, saved.step);
    dispose(Object.values(moments));
  }
  const loader = data.train(saved?.data);
  let step = saved?.step ?? 0;
  let tokens = saved?.tokens ?? 0;
  const metricsFile = join(out, 'metrics.jsonl');
  if (resume) truncateMetrics(metricsFile, step);
  hooks.onStart?.({
    config: cfg,
    modelConfig: model.config,
    params: model.countParams(),
    device: device.describe,
    data: data.describe,
    fromStep: step,
    tokensPerStep,
  });

  const t0 = performance.now() - (saved?.seconds ?? 0) * 1000;
  const seconds = () => (performance.now() - t0) / 1000;
  const lossFn = valueAndGrad((p: ModelParams, x: Tensor, y: Tensor, d: Tensor | undefined) =>
    model.loss(p, x, y, { acp: cfg.acp, docStarts: d }),
  );
  const losses: number[] = [];
  let stopped = false;
  let windowStart = performance.now();
  let windowTokens = 0;

  const checkpoint = async () => {
    // never replace the last good checkpoint with non-finite parameters (NaN gradients of a step
    // whose loss and grad norm were not read back, or an update that overflowed)
    const pn = globalNorm(params);
    const finite = Number.isFinite((await pn.data())[0]);
    pn.dispose();
    if (!finite) {
      const bad = await firstNonFinite(params);
      const where = existsSync(ckptDir) ? `the last good checkpoint is ${ckptDir}` : 'no checkpoint was written yet';
      fail(
        'train',
        `step ${step}: ${bad ? `parameter ${bad} is not finite` : 'the parameters overflow float32 (their norm is infinite)'} after the update; ${where}`,
      );
    }
    const moments = Object.fromEntries(adamwStateTensors(state));
    const extra = { train: { step, tokens, data: loader.state(), seconds: seconds() } satisfies SavedState, seed: cfg.seed };
    await saveCheckpoint(ckptDir, params, model.config, extra, { tensors: { optimizer: moments } });
    hooks.onCheckpoint?.(ckptDir, step);
  };
  const runEval = async (): Promise<EvalResult> =>
    evaluate(model, params, data, { context: cfg.context, rows: cfg.evalRows, acp: cfg.acp, backend, extrapolate: [] });

  while (step < cfg.steps) {
    if (hooks.shouldStop?.()) {
      stopped = true;
      break;
    }
    step++;
    let grads: ModelParams | null = null;
    let lossSum = 0;
    const lossTensors: Tensor[] = [];
    for (let micro = 0; micro < cfg.accumulate; micro++) {
      const b = loader.next();
      const t = batchTensors(b, backend, cfg.docResets);
      const r = lossFn(params, t.tokens, t.targets, t.docStarts);
      lossTensors.push(r.value);
      grads = accumulateGrads(grads, r.grads);
      dispose([t.tokens, t.targets, t.docStarts]);
    }
    for (const v of lossTensors) lossSum += (await v.data())[0];
    dispose(lossTensors);
    const loss = lossSum / cfg.accumulate;
    const g = grads as ModelParams;
    const logging = step % cfg.logEvery === 0 || step === cfg.steps;
    const norm = globalNorm(g);
    const gradNorm = logging || !Number.isFinite(loss) ? (await norm.data())[0] : null;
    if (!Number.isFinite(loss) || (gradNorm !== null && !Number.isFinite(gradNorm))) {
      const bad = await firstNonFinite(g);
      dispose([g, norm]);
      const where = existsSync(ckptDir) ? `the last good checkpoint is ${ckptDir}` : 'no checkpoint was written yet';
      fail(
        'train',
        `step ${step}: the ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is not finite (loss ${loss})${bad ? `; first non-finite gradient: ${bad}` : ''}; ${where}`,
      );
    }
    const scale = tidy(() => {
      const f = cfg.clip > 0 ? clipFactor(norm, cfg.clip) : null;
      if (cfg.accumulate === 1) return f;
      return f ? mul(f, 1 / cfg.accumulate) : full([], 1 / cfg.accumulate, { dtype: norm.dtype, backend: norm.backend });
    });
    ({ params, state } = opt.updateAndDispose(params, g, state, scale ? { gradScale: scale } : undefined));
    dispose([g, norm, scale]);
    tokens += tokensPerStep;
    windowTokens += tokensPerStep;
    losses.push(loss);
    const now = performance.now();
    const m: StepMetrics = {
      kind: 'train',
      step,
      tokens,
      loss,
      lr: lrAt(step),
      gradNorm,
      tokensPerSecond: windowTokens / Math.max(1e-9, (now - windowStart) / 1000),
      seconds: seconds(),
    };
    hooks.onStep?.(m);
    if (logging) {
      appendFileSync(metricsFile, `${JSON.stringify(m)}\n`);
      windowStart = now;
      windowTokens = 0;
    }
    if (cfg.evalEvery > 0 && step % cfg.evalEvery === 0 && step < cfg.steps) {
      const e = await runEval();
      const em: EvalMetrics = {
        kind: 'eval',
        step,
        tokens,
        loss: e.loss,
        accuracy: e.accuracy?.value,
        perplexity: e.perplexity,
        seconds: seconds(),
      };
      appendFileSync(metricsFile, `${JSON.stringify(em)}\n`);
      hooks.onEval?.(em);
      windowStart = performance.now();
    }
    if (cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0 && step < cfg.steps) await checkpoint();
  }
  await checkpoint();
  let result: EvalResult | null = null;
  if (!stopped && !opts.skipFinalEval) {
    result = await evaluate(model, params, data, {
      context: cfg.context,
      rows: cfg.evalRows,
      acp: cfg.acp,
      backend,
      extrapolate: cfg.extrapolate,
    });
    const sample = await sampleOf(model, params, data, cfg.context, backend);
    if (sample) result.sample = sample;
    const em: EvalMetrics = {
      kind: 'eval',
      step,
      tokens,
      loss: result.loss,
      accuracy: result.accuracy?.value,
      perplexity: result.perplexity,
      seconds: seconds(),
    };
    appendFileSync(metricsFile, `${JSON.stringify(em)}\n`);
    hooks.onEval?.(em);
    writeAtomic(join(out, 'eval.json'), `${JSON.stringify(result, null, 2)}\n`);
  }
  const res: TrainResult = {
    out,
    config: cfg,
    modelConfig: model.config,
    step,
    tokens,
    loss: losses[losses.length - 1] ?? Number.NaN,
    losses,
    seconds: seconds(),
    stopped,
    device: device.describe,
    eval: result,
  };
  dispose([params, state]);
  return res;
}
