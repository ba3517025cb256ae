import { fail } from '@foxgate/tensor';
import { byteTokenizer } from './byte.js';
import { gpt2Tokenizer } from './gpt2.js';
import type { Tokenizer, TokenizerSpec } from './types.js';

/** The tokenizer a spec (as stored in config.json) describes. */
export function createTokenizer(spec: TokenizerSpec): Tokenizer {
  if (spec === null || typeof spec !== 'object')
    fail('createTokenizer', `spec must be an object like {"kind":"byte"}, got ${JSON.stringify(spec)}`);
  for (const key of Object.keys(spec)) {
    if (key !== 'kind' && key !== 'speakers') fail('createTokenizer', `unknown spec field "${key}" (expected kind, speakers)`);
  }
  const kind = (spec as { kind: unknown }).kind;
  if (kind === 'byte') return byteTokenizer(spec.speakers);
  if (kind === 'gpt2') return gpt2Tokenizer(spec.speakers);
  fail('createTokenizer', `unknown tokenizer kind ${JSON.stringify(kind)} (expected "byte" or "gpt2")`);
}
