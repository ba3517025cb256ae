import { checkId, checkSpeakers, specialTokens } from './specials.js';
import type { Tokenizer, TokenizerSpec } from './types.js';

const utf8 = new TextEncoder();
const lenient = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Byte-level tokenizer: ids 0..255 are the UTF-8 bytes, 256 BOS, 257 EOS, 258 PAD, 259.. the
 * speaker tokens (vocab 261 with the default 2 speakers). Invalid UTF-8 decodes to U+FFFD.
 */
export function byteTokenizer(speakers?: number): Tokenizer {
  const n = checkSpeakers('createTokenizer', speakers);
  const { names, ...special } = specialTokens(256, n);
  return {
    kind: 'byte',
    ...special,
    encode(text: string): number[] {
      return Array.from(utf8.encode(text));
    },
    decode(ids: ArrayLike<number>): string {
      let out = '';
      const bytes = new Uint8Array(ids.length);
      let nb = 0;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        checkId('byteTokenizer.decode', id, i, special.vocabSize);
        if (id < 256) {
          bytes[nb++] = id;
        } else {
          if (nb > 0) out += lenient.decode(bytes.subarray(0, nb));
          nb = 0;
          out += names[id - 256];
        }
      }
      if (nb > 0) out += lenient.decode(bytes.subarray(0, nb));
      return out;
    },
    spec(): TokenizerSpec {
      return { kind: 'byte', speakers: n };
    },
  };
}
