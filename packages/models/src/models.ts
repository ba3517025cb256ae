import type { ConfigInput } from './config.js';
import { createModel, type Model } from './model.js';

type Overrides = Omit<ConfigInput, 'model' | 'preset'>;

const make =
  (model: ConfigInput['model']) =>
  (preset: string = 'tiny', overrides: Overrides = {}): Model =>
    createModel({ ...overrides, model, preset });

/** Transformer++: RoPE, SwiGLU (r = 4), softmax attention. `transformer('125M', { vocab_size: 50277 })`. */
export const transformer = make('transformer');
/** FoX: the LLaMA block with a forget gate per head, no RoPE. */
export const fox = make('fox');
/** FoX-Pro: forget gate, QK-norm on q and the shifted k, k/v token shift, output norm + gate, r = 3.5. */
export const foxPro = make('foxPro');
/** Transformer-Pro: the Pro block with RoPE and no forget gate. */
export const transformerPro = make('transformerPro');
/** SPARSEK: Transformer++ whose attention is SPARSEK (`sparsek_k` soft-selected older positions) + a `sparsek_window` window. */
export const sparsek = make('sparsek');
