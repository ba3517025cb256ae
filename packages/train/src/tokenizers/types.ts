/** The tokenizer contract shared by data loading, models (vocab size) and the trainer (config.json). */

/** What `createTokenizer` takes and `Tokenizer.spec()` returns; JSON-serialisable. */
export type TokenizerSpec = { kind: 'byte'; speakers?: number } | { kind: 'gpt2'; speakers?: number };

export interface Tokenizer {
  readonly kind: 'byte' | 'gpt2';
  /** Number of token ids, special tokens included. */
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  readonly pad: number;
  /** Speaker-turn marker tokens (at least 2): speaker 0 is `<A>`, 1 is `<B>`, … */
  readonly speakers: readonly number[];
  /** Token ids of `text`; no BOS/EOS added. */
  encode(text: string): number[];
  /** Text of `ids`; special tokens render as `<bos>`, `<eos>`, `<pad>`, `<A>`, `<B>`, … */
  decode(ids: ArrayLike<number>): string;
  spec(): TokenizerSpec;
}
