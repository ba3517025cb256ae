export { byteTokenizer } from './byte.js';
export { createTokenizer } from './create.js';
export { GPT2_BASE_VOCAB, gpt2Tokenizer } from './gpt2.js';
export type { Tokenizer, TokenizerSpec } from './types.js';
