import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { flattenTree, unflattenTree } from '@foxgate/autograd';
import {
  createModel,
  loadCheckpoint,
  type Model,
  type ModelConfig,
  type ModelParams,
  PRESETS,
  type PresetName,
  SPARSEK_FIELDS,
} from '@foxgate/models';
import { type Backend, dispose, FoxgateError, fail, fmtShape, rngKey, type Tensor } from '@foxgate/tensor';

const OP = 'train';

/** The models a `sparsek` run may start from: softmax Transformers (their weights are sparsek's, less the scoring network). */
export const SPARSEK_SOURCES: readonly string[] = ['transformer', 'transformerPro'];

/** The checkpoint folder of `path`: a run folder's `checkpoint/`, else the folder itself. */
export function initFromDir(path: string): string {
  if (!existsSync(path)) fail(OP, `--init-from ${path}: no such folder`);
  if (!statSync(path).isDirectory()) fail(OP, `--init-from ${path}: not a folder (give a run folder or a checkpoint folder)`);
  if (existsSync(join(path, 'checkpoint', 'config.json'))) return join(path, 'checkpoint');
  if (!existsSync(join(path, 'config.json'))) {
    fail(OP, `--init-from ${path}: no config.json (not a run folder of foxgate train nor a checkpoint folder)`);
  }
  return path;
}

export interface InitFromOptions {
  /** The model fields the run's settings give explicitly (`model`, `preset`, config fields), before any defaults. */
  given: Record<string, unknown>;
  /** The data's vocabulary. */
  vocabSize: number;
  seed: number;
  backend: Backend;
}

/**
 * A new run's model and weights from a checkpoint (`initFrom`: a run folder, its `checkpoint/`,
 * or a Hugging Face folder that `loadCheckpoint` reads). The model is the checkpoint's (a
 * fine-tune) unless the settings name another: `sparsek` may start from `transformer` or
 * `transformerPro`, every weight loaded by name and the scoring network `score_proj` initialised
 * from the seed; checkpoints with forget gates (FoX, FoX-Pro) are refused. The config fields come
 * from the checkpoint: a given field or preset that says otherwise is refused (the `sparsek_*`
 * fields may be given: they shape no weight). Every tensor is checked by name and shape: one line
 * names the first one missing, unexpected or of the wrong shape.
 */
export async function initFromCheckpoint(path: string, o: InitFromOptions): Promise<{ model: Model; params: ModelParams; dir: string }> {
  const dir = initFromDir(path);
  const where = `--init-from ${path}`;
  let ck: Awaited<ReturnType<typeof loadCheckpoint>>;
  try {
    ck = await loadCheckpoint(dir, { backend: o.backend });
  } catch (e) {
    // the checkpoint's own problems (a missing or misshapen tensor, a bad config.json) are already one line
    if (e instanceof FoxgateError) fail(OP, `${where}: ${e.message}`);
    throw e;
  }
  try {
    const src = ck.config;
    const target = (o.given.model as string | undefined) ?? src.model;
    if (target !== src.model) {
      if (target !== 'sparsek') {
        fail(
          OP,
          `${where}: a '${src.model}' checkpoint cannot start a '${target}' run (only the same model, or sparsek from ${SPARSEK_SOURCES.join('/')})`,
        );
      }
      if (src.fgate_type !== 'none') {
        fail(
          OP,
          `${where}: a '${src.model}' checkpoint has forget gates (fgate_proj), which sparsek has no place for; start sparsek from ${SPARSEK_SOURCES.join(' or ')}`,
        );
      }
      if (!SPARSEK_SOURCES.includes(src.model))
        fail(OP, `${where}: sparsek starts from ${SPARSEK_SOURCES.join(' or ')}, not '${src.model}'`);
    }
    const fields: Record<string, unknown> = { ...src, model: target };
    if (target !== 'sparsek') for (const k of SPARSEK_FIELDS) delete fields[k];
    for (const [k, v] of Object.entries(o.given)) {
      if (k === 'model') continue;
      if ((SPARSEK_FIELDS as readonly string[]).includes(k)) {
        fields[k] = v; // modelConfig refuses them on the other models
        continue;
      }
      if (k === 'preset') {
        const sizes = PRESETS[v as PresetName] as Record<string, number> | undefined;
        if (!sizes) fail(OP, `${where}: unknown preset ${JSON.stringify(v)}`);
        for (const [f, n] of Object.entries(sizes)) {
          if (src[f as keyof ModelConfig] !== n) {
            fail(
              OP,
              `${where}: preset '${String(v)}' sets ${f} ${n}, but the checkpoint has ${String(src[f as keyof ModelConfig])}; leave the preset out (the checkpoint's sizes are used)`,
            );
          }
        }
        continue;
      }
      if (JSON.stringify(src[k as keyof ModelConfig]) !== JSON.stringify(v)) {
        fail(
          OP,
          `${where}: ${k} ${JSON.stringify(v)} clashes with the checkpoint's ${JSON.stringify(src[k as keyof ModelConfig])}; leave it out (the checkpoint's config is used)`,
        );
      }
    }
    if (src.vocab_size !== o.vocabSize) {
      fail(OP, `${where}: the checkpoint's vocab_size ${src.vocab_size} does not match the data's tokenizer (${o.vocabSize})`);
    }
    const model = createModel(fields as never);
    const fresh = flattenTree(model.init(rngKey(o.seed), { backend: o.backend }));
    const loaded = flattenTree(ck.params);
    const problem = (): string | null => {
      for (const [name, t] of fresh) {
        const l = loaded.get(name);
        if (!l) {
          if (target === 'sparsek' && src.model !== 'sparsek' && name.includes('.attn.score_proj.')) continue;
          return `the checkpoint has no tensor ${name} ${fmtShape(t.shape)}, which model '${target}' needs`;
        }
        if (l.shape.length !== t.shape.length || l.shape.some((d, i) => d !== t.shape[i])) {
          return `tensor ${name} is ${fmtShape(l.shape)} in the checkpoint but ${fmtShape(t.shape)} in model '${target}'`;
        }
        if (l.dtype !== t.dtype) return `tensor ${name} is ${l.dtype} in the checkpoint but ${t.dtype} in model '${target}'`;
      }
      for (const [name, l] of loaded) {
        if (!fresh.has(name)) return `the checkpoint holds ${name} ${fmtShape(l.shape)}, which model '${target}' has no place for`;
      }
      return null;
    };
    const bad = problem();
    if (bad) {
      dispose([...fresh.values()]);
      fail(OP, `${where}: ${bad}`);
    }
    const leaves: [string, Tensor][] = [];
    for (const [name, t] of fresh) {
      const l = loaded.get(name);
      if (l) {
        t.dispose();
        leaves.push([name, l]);
        loaded.delete(name);
      } else leaves.push([name, t]); // the scoring network: the seed's init
    }
    return { model, params: unflattenTree<ModelParams>(leaves), dir };
  } catch (e) {
    dispose(ck.params);
    throw e;
  }
}
