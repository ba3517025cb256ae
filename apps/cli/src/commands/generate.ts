import { generate, loadCheckpoint } from '@foxgate/models';
import { dispose } from '@foxgate/tensor';
import { openDevice } from '@foxgate/train';
import { defineCommand, flag, outputFlags } from '../args.js';
import { UsageError } from '../errors.js';
import { findCheckpoint, promptCodec } from './run-folder.js';

/** `foxgate generate`: continues a prompt with a checkpoint (KV cache; optional ACP eviction). */
export const generateCommand = defineCommand(
  {
    name: 'generate',
    summary: 'continues a prompt with a checkpoint (KV cache, greedy or sampled, optional ACP KV eviction)',
    flags: {
      checkpoint: flag.file({ help: 'a run folder of foxgate train, or a checkpoint folder', required: true }),
      prompt: flag.string({
        help: "the text to continue (synthetic tasks: space-separated token names as the task prints them, e.g. '<bos> k1 v0 k1')",
        required: true,
      }),
      'max-new': flag.positiveInt({ help: 'new tokens at most (fewer when EOS comes)', max: 1 << 16, default: 32 }),
      temperature: flag.float({ help: 'sampling temperature (0: greedy)', min: 0, max: 100, default: 0 }),
      'top-k': flag.positiveInt({ help: 'sample among the K most likely tokens only', max: 1 << 24 }),
      'top-p': flag.float({
        help: 'nucleus sampling: the smallest set of tokens whose probability reaches P',
        min: 0,
        minExclusive: true,
        max: 1,
      }),
      seed: flag.nonNegativeInt({ help: 'seed of the sampling', max: 2 ** 31 - 1, default: 0 }),
      'kv-evict': flag.enum(['none', 'acp'] as const, {
        help: 'acp: drop cached keys ACP prunes for every later query (FoX models; within the ε bound)',
        default: 'none',
      }),
      tokenizer: flag.enum(['byte', 'gpt2'] as const, {
        help: 'tokenizer of a checkpoint without its run folder',
        defaultHint: "the run's, else byte",
      }),
      device: flag.enum(['cpu', 'webgpu', 'auto'] as const, { help: 'where to run (auto: a hardware GPU, else the CPU)', default: 'auto' }),
      ...outputFlags,
    },
    notes:
      'Prints the continuation; --json prints { text, tokens, tokensPerSecond, prompt, cache: { kept, full } (with\n--kv-evict acp: cache entries kept vs the full length, summed over layers and heads) }.',
    examples: [
      'foxgate generate --checkpoint runs/shakespeare --prompt "ROMEO:" --max-new 200 --temperature 0.8 --top-p 0.95',
      "foxgate generate --checkpoint runs/demo --prompt '<bos> k1 v0 k5 v3 k1' --max-new 1",
      'foxgate generate --checkpoint runs/fox --prompt "Once" --kv-evict acp --json',
    ],
  },
  async ({ flags }) => {
    if (flags.temperature === 0 && (flags.topK !== undefined || flags.topP !== undefined))
      throw new UsageError('generate: --top-k and --top-p need sampling: give --temperature > 0 (0 is greedy)');
    const folder = findCheckpoint('generate', flags.checkpoint);
    if (folder.run && flags.tokenizer !== undefined)
      throw new UsageError(`generate: --tokenizer applies to a checkpoint without its run folder (this run's data sets it)`);
    const codec = promptCodec('generate', folder.run, flags.tokenizer ?? 'byte');
    const prompt = codec.encode(flags.prompt);
    const device = await openDevice(flags.device);
    try {
      const ck = await loadCheckpoint(folder.checkpointDir, { backend: device.backend });
      try {
        const V = ck.config.vocab_size;
        if (V !== codec.vocabSize)
          throw new UsageError(
            `generate: the checkpoint's vocabulary (${V} tokens) does not match the prompt's ${codec.describe} (${codec.vocabSize})${folder.run ? '' : '; give --tokenizer'}`,
          );
        const r = await generate(ck.model, ck.params, [prompt], {
          maxNewTokens: flags.maxNew,
          temperature: flags.temperature,
          topK: flags.topK,
          topP: flags.topP,
          seed: flags.seed,
          stop: codec.stop,
          kvEvict: flags.kvEvict,
        });
        const tokens = r.tokens[0];
        const text = codec.decode(tokens);
        const s = r.stats;
        if (flags.json) {
          const out: Record<string, unknown> = {
            text,
            tokens,
            tokensPerSecond: s.tokensPerSecond,
            prompt: flags.prompt,
            promptTokens: prompt.length,
          };
          if (flags.kvEvict === 'acp') out.cache = { kept: s.cache.kept, full: s.cache.full };
          console.log(JSON.stringify(out));
          return 0;
        }
        console.log(text);
        if (!flags.quiet) {
          const cache = flags.kvEvict === 'acp' ? `; cache kept ${s.cache.kept} of ${s.cache.full} entries (ACP eviction)` : '';
          console.error(
            `foxgate generate: ${tokens.length} tokens after a ${prompt.length}-token prompt, ${s.tokensPerSecond.toFixed(1)} tokens/s on ${device.describe}${cache}`,
          );
        }
        return 0;
      } finally {
        dispose(ck.params);
      }
    } finally {
      await device.release();
    }
  },
);
