import { readFileSync } from 'node:fs';
import { FoxgateError } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { byteTokenizer, createTokenizer, GPT2_BASE_VOCAB, gpt2Tokenizer } from '../src/index.js';
import { sharedData } from './data-shared.js';

const shakespeare = () => readFileSync(sharedData('tinyshakespeare/input.txt'), 'utf8');
// DailyDialog validation holds non-ASCII (’ U+2019) in real sentences.
const dailyNonAscii = () => {
  const lines = readFileSync(sharedData('dailydialog/dialogues_validation.txt'), 'utf8').split('\n');
  const picked = lines.filter((l) => [...l].some((ch) => ch.charCodeAt(0) > 127)).slice(0, 20);
  expect(picked.length).toBe(20);
  return picked.join('\n');
};

describe('byte tokenizer', () => {
  const tok = createTokenizer({ kind: 'byte' });

  it('has 256 bytes, BOS 256, EOS 257, PAD 258, speakers 259.. (vocab 261)', () => {
    expect(tok.kind).toBe('byte');
    expect([tok.bos, tok.eos, tok.pad, tok.vocabSize]).toEqual([256, 257, 258, 261]);
    expect(tok.speakers).toEqual([259, 260]);
    expect(tok.spec()).toEqual({ kind: 'byte', speakers: 2 });
    const t4 = byteTokenizer(4);
    expect(t4.speakers).toEqual([259, 260, 261, 262]);
    expect(t4.vocabSize).toBe(263);
    expect(createTokenizer(t4.spec()).vocabSize).toBe(263);
  });

  it('encodes UTF-8 bytes by hand', () => {
    expect(tok.encode('Aé€😀')).toEqual([0x41, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]);
    expect(tok.encode('')).toEqual([]);
  });

  it('round-trips Tiny Shakespeare and non-ASCII DailyDialog lines', () => {
    const text = shakespeare().slice(0, 200_000);
    const ids = tok.encode(text);
    expect(ids.length).toBe(Buffer.byteLength(text));
    expect(tok.decode(ids)).toBe(text);
    const nonAscii = dailyNonAscii();
    const ids2 = tok.encode(nonAscii);
    expect(ids2.length).toBeGreaterThan(nonAscii.length); // multi-byte characters
    expect(tok.decode(Int32Array.from(ids2))).toBe(nonAscii);
  });

  it('renders special tokens and decodes invalid UTF-8 with U+FFFD without throwing', () => {
    expect(tok.decode([256, 0x68, 0x69, 259, 0x6f, 260, 257, 258])).toBe('<bos>hi<A>o<B><eos><pad>');
    expect(tok.decode([0xff, 0x41])).toBe('\ufffdA');
    // a multi-byte character cut by a special token
    expect(tok.decode([0xe2, 0x82, 259, 0xac])).toBe('\ufffd<A>\ufffd');
    expect(byteTokenizer(3).decode([261])).toBe('<C>');
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([65, 261])).toThrow(FoxgateError);
    expect(() => tok.decode([65, 261])).toThrow('byteTokenizer.decode: ids[1] = 261 is not a token id (vocabulary of 261)');
    expect(() => tok.decode([-1])).toThrow('ids[0] = -1');
  });
});

describe('gpt2 tokenizer (gpt-tokenizer r50k_base, offline)', () => {
  const tok = createTokenizer({ kind: 'gpt2' });

  it('appends BOS/EOS/PAD/speakers after the 50,257 base ids', () => {
    expect(GPT2_BASE_VOCAB).toBe(50257);
    expect([tok.bos, tok.eos, tok.pad]).toEqual([50257, 50258, 50259]);
    expect(tok.speakers).toEqual([50260, 50261]);
    expect(tok.vocabSize).toBe(50262);
    expect(tok.spec()).toEqual({ kind: 'gpt2', speakers: 2 });
    expect(gpt2Tokenizer(3).vocabSize).toBe(50263);
  });

  it('gives the known GPT-2 ids', () => {
    // "Hello" 15496, " world" 995, "," 11 — the GPT-2 vocabulary's ids
    expect(tok.encode('Hello world,')).toEqual([15496, 995, 11]);
    // special-looking text is plain text, never id 50256
    expect(tok.encode('<|endoftext|>')).not.toContain(50256);
    expect(tok.decode(tok.encode('<|endoftext|>'))).toBe('<|endoftext|>');
  });

  it('round-trips Tiny Shakespeare and non-ASCII DailyDialog lines', () => {
    const text = shakespeare().slice(0, 50_000);
    const ids = tok.encode(text);
    expect(ids.length).toBeLessThan(text.length / 2.5); // BPE merges: well under one id per char
    expect(ids.every((i) => i >= 0 && i < GPT2_BASE_VOCAB)).toBe(true);
    expect(tok.decode(ids)).toBe(text);
    const nonAscii = `${dailyNonAscii()}\nnaïve café — 日本語 😀`;
    expect(tok.decode(tok.encode(nonAscii))).toBe(nonAscii);
  });

  it('renders special tokens between BPE runs', () => {
    const hi = tok.encode(' hi');
    expect(tok.decode([tok.bos, tok.speakers[0], ...hi, tok.eos, tok.speakers[1], tok.pad])).toBe('<bos><A> hi<eos><B><pad>');
    expect(() => tok.decode([50262])).toThrow('gpt2Tokenizer.decode: ids[0] = 50262 is not a token id (vocabulary of 50262)');
  });
});

describe('createTokenizer errors', () => {
  it('names the bad kind, field or value', () => {
    expect(() => createTokenizer({ kind: 'bpe' } as never)).toThrow(
      'createTokenizer: unknown tokenizer kind "bpe" (expected "byte" or "gpt2")',
    );
    expect(() => createTokenizer({ kind: 'byte', speakers: 1 })).toThrow('createTokenizer: speakers must be an integer in [2, 64], got 1');
    expect(() => createTokenizer({ kind: 'byte', vocab: 3 } as never)).toThrow('createTokenizer: unknown spec field "vocab"');
    expect(() => createTokenizer(null as never)).toThrow(FoxgateError);
  });
});
