import { createRequire } from 'node:module';
import type * as R50k from 'gpt-tokenizer/encoding/r50k_base';
import { checkId, checkSpeakers, specialTokens } from './specials.js';
import type { Tokenizer, TokenizerSpec } from './types.js';

/** Size of the GPT-2 BPE vocabulary (r50k_base: 50,000 merges + 256 bytes + `<|endoftext|>`). */
export const GPT2_BASE_VOCAB = 50257;

let bpe: typeof R50k | undefined;

/** The BPE tables of `gpt-tokenizer` (shipped in the package, no network), loaded on first use. */
function loadBpe(): typeof R50k {
  bpe ??= createRequire(import.meta.url)('gpt-tokenizer/encoding/r50k_base') as typeof R50k;
  return bpe;
}

const noSpecials = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

/**
 * GPT-2 BPE (the r50k_base tables of `gpt-tokenizer`); BOS, EOS, PAD and the speakers follow the
 * 50,257 base ids. Text that looks like `<|endoftext|>` is encoded as ordinary text.
 */
export function gpt2Tokenizer(speakers?: number): Tokenizer {
  const n = checkSpeakers('createTokenizer', speakers);
  const { names, ...special } = specialTokens(GPT2_BASE_VOCAB, n);
  const lib = loadBpe();
  return {
    kind: 'gpt2',
    ...special,
    encode(text: string): number[] {
      return lib.encode(text, noSpecials);
    },
    decode(ids: ArrayLike<number>): string {
      let out = '';
      let run: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        checkId('gpt2Tokenizer.decode', id, i, special.vocabSize);
        if (id < GPT2_BASE_VOCAB) {
          run.push(id);
        } else {
          if (run.length > 0) out += lib.decode(run);
          run = [];
          out += names[id - GPT2_BASE_VOCAB];
        }
      }
      if (run.length > 0) out += lib.decode(run);
      return out;
    },
    spec(): TokenizerSpec {
      return { kind: 'gpt2', speakers: n };
    },
  };
}
