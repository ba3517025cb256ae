import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { flattenTree, unflattenTree } from '@foxgate/autograd';
import { type Backend, fail, readSafetensorsFile, type SafetensorsTensor, saveSafetensors, type Tensor, tensor } from '@foxgate/tensor';
import { type ModelConfig, modelConfig, officialConfigJson } from './config.js';
import { createModel, type Model, type ModelParams } from './model.js';
import { paramShapes } from './shapes.js';
import { checkParams, paramProblems } from './tree-check.js';

const OP = 'checkpoint';
const WEIGHTS = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
const CONFIG = 'config.json';
/** Key of config.json under which `saveCheckpoint` keeps the caller's `extra` JSON. */
const EXTRA_KEY = 'foxgate';

export interface SaveCheckpointOptions {
  /** More safetensors files for the same folder, by base name: `{ optimizer: {...} }` → `optimizer.safetensors`. */
  tensors?: Record<string, Record<string, Tensor>>;
}

/**
 * Writes `dir/model.safetensors` (every parameter by its official dotted name, float32 or
 * float64 as the tensors are) and `dir/config.json` (the official fields + `model_type`, and
 * `extra` under `"foxgate"`), plus one `NAME.safetensors` per entry of `opts.tensors`. Atomic: both files go into a temporary folder beside `dir` that
 * is renamed into place, so `dir` never holds a half-written checkpoint; an existing `dir` is
 * replaced.
 */
export async function saveCheckpoint(
  dir: string,
  params: ModelParams,
  config: ModelConfig,
  extra?: Record<string, unknown>,
  opts: SaveCheckpointOptions = {},
): Promise<void> {
  checkParams('saveCheckpoint', params, config);
  const target = resolve(dir);
  const parent = dirname(target);
  if (!existsSync(parent)) fail('saveCheckpoint', `the folder ${parent} does not exist`);
  const tmp = join(parent, `.${basename(target)}.tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp);
  try {
    const tensors = Object.fromEntries(flattenTree(params));
    await saveSafetensors(join(tmp, WEIGHTS), tensors, { format: 'pt' });
    for (const [base, more] of Object.entries(opts.tensors ?? {})) {
      if (!/^[\w-]+$/.test(base) || base === 'model') fail('saveCheckpoint', `opts.tensors: bad file name '${base}'`);
      await saveSafetensors(join(tmp, `${base}.safetensors`), more);
    }
    const json = { ...officialConfigJson(config), ...(extra ? { [EXTRA_KEY]: extra } : {}) };
    await writeFile(join(tmp, CONFIG), `${JSON.stringify(json, null, 2)}\n`);
    const old = existsSync(target) ? `${tmp}-old` : null;
    if (old) await rename(target, old);
    await rename(tmp, target);
    if (old) await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export interface LoadCheckpointOptions {
  backend?: string | Backend;
  /** 'float32' (default; bf16/f16/f64 files are converted) or 'float64' (CPU references). */
  dtype?: 'float32' | 'float64';
}

export interface LoadedCheckpoint {
  config: ModelConfig;
  model: Model;
  params: ModelParams;
  /** What `saveCheckpoint` was given as `extra` (undefined for official checkpoints). */
  extra?: Record<string, unknown>;
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail(OP, `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(OP, `${file}: not a JSON object`);
    return v;
  } catch (e) {
    if ((e as Error).name === 'FoxgateError') throw e;
    fail(OP, `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The safetensors files of a checkpoint folder: one `model.safetensors`, or the shards an index names. */
function weightFiles(dir: string): string[] {
  if (existsSync(join(dir, INDEX))) {
    const index = readJson(join(dir, INDEX));
    const map = index.weight_map;
    if (map === null || typeof map !== 'object') fail(OP, `${join(dir, INDEX)}: no "weight_map" object`);
    const files = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const f of files) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || !f.endsWith('.safetensors')) {
        fail(OP, `${join(dir, INDEX)}: weight_map names ${JSON.stringify(f)}, not a .safetensors file in the folder`);
      }
      if (!existsSync(join(dir, f))) fail(OP, `${join(dir, INDEX)}: shard ${f} is missing`);
    }
    return files.sort() as string[];
  }
  if (existsSync(join(dir, WEIGHTS))) return [WEIGHTS];
  const pickles = ['pytorch_model.bin', 'model.pt', 'model.bin'].filter((f) => existsSync(join(dir, f)));
  if (pickles.length) {
    fail(OP, `${dir}: holds ${pickles[0]}, a pickle file; foxgate never executes files: convert it to ${WEIGHTS} (safetensors)`);
  }
  fail(OP, `${dir}: no ${WEIGHTS} and no ${INDEX}`);
}

/** Buffers the official code may save that are not parameters (recomputed from the config). */
const isBuffer = (name: string) => name.endsWith('.inv_freq');

/**
 * Loads a checkpoint folder — ours (`saveCheckpoint`) or a Hugging Face style folder of the
 * official FoX code (`config.json` with `model_type` `forgetting_transformer-project_fox` or
 * `transformer-project_fox`, and `model.safetensors` or sharded `model-0000x-of-0000y.safetensors`
 * + `model.safetensors.index.json`; bf16/f16/f32 data become float32). Names, shapes and dtypes
 * are checked against the config, and every missing, extra or mismatched tensor is named.
 * Only JSON and safetensors are read; nothing in a file is executed.
 */
export async function loadCheckpoint(dir: string, opts: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) fail(OP, `${dir}: no such checkpoint folder`);
  const raw = readJson(join(root, CONFIG));
  const { [EXTRA_KEY]: extra, ...fields } = raw;
  const config = modelConfig(fields, `${join(dir, CONFIG)}: `);
  const dtype = opts.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64') fail(OP, `dtype must be 'float32' or 'float64', got ${String(dtype)}`);
  const found = new Map<string, SafetensorsTensor & { file: string }>();
  for (const f of weightFiles(root)) {
    const contents = await readSafetensorsFile(join(root, f));
    for (const [name, t] of contents.tensors) {
      if (isBuffer(name)) continue;
      if (found.has(name)) fail(OP, `${dir}: ${name} is in both ${found.get(name)?.file} and ${f}`);
      found.set(name, { ...t, file: f });
    }
  }
  const problems = paramProblems(paramShapes(config), found);
  if (problems.length) fail(OP, `${dir}: the weights do not match ${CONFIG} (model '${config.model}'): ${problems.join('; ')}`);
  const leaves = new Map<string, Tensor>();
  for (const name of paramShapes(config).keys()) {
    const t = found.get(name) as SafetensorsTensor & { file: string };
    if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) fail(OP, `${dir}: ${t.file}: ${name} is ${t.dtype}, expected a float tensor`);
    const data = dtype === 'float64' ? Float64Array.from(t.data) : t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
    leaves.set(name, tensor(data, t.shape, { dtype, backend: opts.backend }));
  }
  const params = unflattenTree<ModelParams>(leaves);
  return { config, model: createModel(config), params, extra: extra as Record<string, unknown> | undefined };
}

/** Removes temporary folders a crashed `saveCheckpoint` left beside `dir` (never `dir` itself). */
export function cleanCheckpointTemps(dir: string): void {
  const target = resolve(dir);
  const parent = dirname(target);
  if (!existsSync(parent)) return;
  const prefix = `.${basename(target)}.tmp-`;
  for (const f of readdirSync(parent)) if (f.startsWith(prefix)) rmSync(join(parent, f), { recursive: true, force: true });
}
