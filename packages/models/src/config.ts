import { fail } from '@foxgate/tensor';

/** The four model families; each is a set of defaults over the one block below. */
export const MODEL_NAMES = ['transformer', 'fox', 'foxPro', 'transformerPro', 'sparsek'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/**
 * One config for every model, with the official FoX code's field names (so its `config.json`
 * files are accepted as they are) plus our `model` name.
 */
export interface ModelConfig {
  model: ModelName;
  vocab_size: number;
  hidden_size: number;
  /** MLP width ratio r: intermediate = 256·ceil(int(h·r·2/3)/256) unless `intermediate_size` is set. */
  hidden_ratio: number;
  intermediate_size: number | null;
  num_hidden_layers: number;
  num_heads: number;
  /** RoPE (rotate-half) on q and k, base `rope_base`. */
  use_rope: boolean;
  rope_base: number;
  /** 'full': a forget gate per head (forgetting attention); 'none': softmax attention. */
  fgate_type: 'full' | 'none';
  /** Per-head RMSNorm (eps 1e-5) on q and on the shifted k. */
  qk_norm: boolean;
  /** One `[head_dim]` q/k norm weight shared by all heads instead of `[hidden]`. */
  qk_norm_share_param_across_head: boolean;
  use_k_shift: boolean;
  use_v_shift: boolean;
  use_output_gate: boolean;
  use_output_norm: boolean;
  norm_eps: number;
  tie_word_embeddings: boolean;
  /** Standard deviation of the weight init. */
  initializer_range: number;
  hidden_act: 'swish';
  /** SPARSEK budget k of older positions per query (model 'sparsek' only; > 0). */
  sparsek_k?: number;
  /** SPARSEK local window (model 'sparsek' only; an integer ≥ 0). */
  sparsek_window?: number;
  /** How the SPARSEK gates enter (model 'sparsek' only): 'kv' (the paper's), 'v' or 'logit'. */
  sparsek_gate?: 'kv' | 'v' | 'logit';
}

/** The config fields that only the 'sparsek' model has (refused on the others). */
export const SPARSEK_FIELDS = ['sparsek_k', 'sparsek_window', 'sparsek_gate'] as const;

/** Fields of the official configs that we accept and ignore (they do not change the math). */
const IGNORED = new Set([
  'fuse_cross_entropy',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'architectures',
  'transformers_version',
  'torch_dtype',
  'use_cache',
  'model_type',
  'max_position_embeddings',
  'attention_bias',
  'preset',
]);

type Kind = 'int' | 'posint' | 'nonnegint' | 'number' | 'bool' | 'enum' | 'intOrNull';
interface Field {
  kind: Kind;
  values?: readonly string[];
}

const FIELDS: Record<keyof ModelConfig, Field> = {
  model: { kind: 'enum', values: MODEL_NAMES },
  vocab_size: { kind: 'posint' },
  hidden_size: { kind: 'posint' },
  hidden_ratio: { kind: 'number' },
  intermediate_size: { kind: 'intOrNull' },
  num_hidden_layers: { kind: 'posint' },
  num_heads: { kind: 'posint' },
  use_rope: { kind: 'bool' },
  rope_base: { kind: 'number' },
  fgate_type: { kind: 'enum', values: ['full', 'none'] },
  qk_norm: { kind: 'bool' },
  qk_norm_share_param_across_head: { kind: 'bool' },
  use_k_shift: { kind: 'bool' },
  use_v_shift: { kind: 'bool' },
  use_output_gate: { kind: 'bool' },
  use_output_norm: { kind: 'bool' },
  norm_eps: { kind: 'number' },
  tie_word_embeddings: { kind: 'bool' },
  initializer_range: { kind: 'number' },
  hidden_act: { kind: 'enum', values: ['swish'] },
  sparsek_k: { kind: 'number' },
  sparsek_window: { kind: 'nonnegint' },
  sparsek_gate: { kind: 'enum', values: ['kv', 'v', 'logit'] },
};

const BASE: Omit<ModelConfig, 'model'> = {
  vocab_size: 261,
  hidden_size: 64,
  hidden_ratio: 4,
  intermediate_size: null,
  num_hidden_layers: 2,
  num_heads: 2,
  use_rope: false,
  rope_base: 500000,
  fgate_type: 'full',
  qk_norm: false,
  qk_norm_share_param_across_head: false,
  use_k_shift: false,
  use_v_shift: false,
  use_output_gate: false,
  use_output_norm: false,
  norm_eps: 1e-6,
  tie_word_embeddings: false,
  initializer_range: 0.02,
  hidden_act: 'swish',
};

const PRO = {
  hidden_ratio: 3.5,
  qk_norm: true,
  use_k_shift: true,
  use_v_shift: true,
  use_output_gate: true,
  use_output_norm: true,
} as const;

/** What each model name sets over the base defaults. */
export const MODEL_DEFAULTS: Record<ModelName, Partial<ModelConfig>> = {
  transformer: { use_rope: true, fgate_type: 'none' },
  fox: { use_rope: false, fgate_type: 'full' },
  foxPro: { ...PRO, use_rope: false, fgate_type: 'full' },
  transformerPro: { ...PRO, use_rope: true, fgate_type: 'none' },
  /** Transformer++ whose attention is SPARSEK (k older positions, soft-selected) + a sliding window. */
  sparsek: { use_rope: true, fgate_type: 'none', sparsek_k: 64, sparsek_window: 64, sparsek_gate: 'kv' },
};

/** Sizes; head dim 64 except `tiny`. The paper's nominal sizes count embeddings with its 50k vocab. */
export const PRESETS = {
  tiny: { hidden_size: 64, num_hidden_layers: 2, num_heads: 2 },
  small: { hidden_size: 512, num_hidden_layers: 6, num_heads: 8 },
  '125M': { hidden_size: 768, num_hidden_layers: 12, num_heads: 12 },
  '360M': { hidden_size: 1024, num_hidden_layers: 24, num_heads: 16 },
  '760M': { hidden_size: 1536, num_hidden_layers: 24, num_heads: 24 },
} as const satisfies Record<string, Partial<ModelConfig>>;
export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

const OP = 'modelConfig';

function checkField(name: keyof ModelConfig, v: unknown, where: string): void {
  const f = FIELDS[name];
  const bad = (want: string) => fail(OP, `${where}${name} must be ${want}, got ${JSON.stringify(v)}`);
  switch (f.kind) {
    case 'bool':
      if (typeof v !== 'boolean') bad('true or false');
      break;
    case 'posint':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad('a positive integer');
      break;
    case 'nonnegint':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad('an integer ≥ 0');
      break;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) bad('an integer');
      break;
    case 'intOrNull':
      if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) bad('a positive integer or null');
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad('a finite number > 0');
      break;
    case 'enum':
      if (typeof v !== 'string' || !f.values?.includes(v)) bad(`one of ${f.values?.map((s) => `'${s}'`).join(', ')}`);
      break;
  }
}

/** The model family a config without `model` describes (official configs carry only the flags). */
function inferModel(raw: Record<string, unknown>): ModelName {
  const type = raw.model_type;
  const gated =
    raw.fgate_type !== undefined ? raw.fgate_type !== 'none' : typeof type === 'string' ? type.startsWith('forgetting_transformer') : true;
  const pro = raw.qk_norm === true || raw.use_k_shift === true || raw.use_output_gate === true;
  if (gated) return pro ? 'foxPro' : 'fox';
  return pro ? 'transformerPro' : 'transformer';
}

export interface ConfigInput extends Partial<Omit<ModelConfig, 'model'>> {
  model?: ModelName | string;
  preset?: PresetName | string;
  [key: string]: unknown;
}

/**
 * A full, validated config from a partial one: `model` (or, for official configs, the flags and
 * `model_type`) picks the family defaults, `preset` the sizes, then every given field overrides.
 * Unknown fields, wrong types and impossible combinations throw one line naming the field.
 */
export function modelConfig(input: ConfigInput, where = ''): ModelConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail(OP, `${where}config must be an object`);
  const raw = input as Record<string, unknown>;
  for (const k of Object.keys(raw)) {
    if (!(k in FIELDS) && !IGNORED.has(k)) {
      fail(OP, `${where}unknown field '${k}' (fields: ${Object.keys(FIELDS).join(', ')}, preset)`);
    }
  }
  if (raw.model !== undefined) checkField('model', raw.model, where);
  const model = (raw.model as ModelName | undefined) ?? inferModel(raw);
  let preset: Partial<ModelConfig> = {};
  if (raw.preset !== undefined) {
    if (typeof raw.preset !== 'string' || !(raw.preset in PRESETS)) {
      fail(OP, `${where}preset must be one of ${PRESET_NAMES.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(raw.preset)}`);
    }
    preset = PRESETS[raw.preset as PresetName];
  }
  const cfg: Record<string, unknown> = { ...BASE, ...MODEL_DEFAULTS[model], ...preset, model };
  const sparseK = model === 'sparsek';
  for (const k of Object.keys(FIELDS) as (keyof ModelConfig)[]) {
    const only = (SPARSEK_FIELDS as readonly string[]).includes(k);
    if (only && !sparseK) {
      if (raw[k] !== undefined) fail(OP, `${where}${k} is only for model 'sparsek', but model is '${model}'`);
      continue;
    }
    if (raw[k] !== undefined) cfg[k] = raw[k];
    checkField(k, cfg[k], where);
  }
  const c = cfg as unknown as ModelConfig;
  if (c.hidden_size % c.num_heads !== 0) {
    fail(OP, `${where}num_heads ${c.num_heads} must divide hidden_size ${c.hidden_size}`);
  }
  const d = c.hidden_size / c.num_heads;
  if (c.use_rope && d % 2 !== 0) fail(OP, `${where}use_rope needs an even head dim, got hidden_size/num_heads = ${d}`);
  if (c.qk_norm_share_param_across_head && !c.qk_norm) {
    fail(OP, `${where}qk_norm_share_param_across_head needs qk_norm: true`);
  }
  return c;
}

/** Head dim `hidden_size / num_heads`. */
export function headDim(c: ModelConfig): number {
  return c.hidden_size / c.num_heads;
}

/** The MLP width: `intermediate_size`, or 256·ceil(int(h·r·2/3)/256) as the official code computes it. */
export function intermediateSize(c: Pick<ModelConfig, 'hidden_size' | 'hidden_ratio' | 'intermediate_size'>): number {
  if (c.intermediate_size !== null) return c.intermediate_size;
  const i = Math.trunc((c.hidden_size * c.hidden_ratio * 2) / 3);
  return 256 * Math.ceil(i / 256);
}

/** The config as the official code writes it: our fields plus its `model_type`. */
export function officialConfigJson(c: ModelConfig): Record<string, unknown> {
  const gated = c.fgate_type !== 'none';
  return { ...c, model_type: gated ? 'forgetting_transformer-project_fox' : 'transformer-project_fox' };
}
