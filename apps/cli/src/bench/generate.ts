import { benchGenerate, type ModelName, type PresetName } from '@foxgate/models';
import { openDevice } from '@foxgate/train';
import { formatBytes } from '../args.js';
import { failedRow, firstLine } from './failed.js';
import type { BenchRow } from './types.js';

export interface BenchGenerateCliOptions {
  device?: 'cpu' | 'webgpu';
  presets?: readonly PresetName[];
  models?: readonly ModelName[];
  /** Prompt tokens (default 4096). */
  context?: number;
  /** New tokens of the cached run (default 32). */
  steps?: number;
}

export const BENCH_GENERATE_DEFAULTS = { presets: ['tiny', 'small'], models: ['foxPro', 'transformer'], context: 4096, steps: 32 } as const;

/**
 * `foxgate bench generate`: `benchGenerate` per model and preset — decode tokens/s with the KV
 * cache and recomputing the whole prefix per token, then (FoX models, trained-like gates) the
 * cache's bytes and entries kept vs the generated length, without and with ACP eviction.
 */
export async function benchGenerateRows(o: BenchGenerateCliOptions = {}): Promise<BenchRow[]> {
  const P = o.context ?? BENCH_GENERATE_DEFAULTS.context;
  const n = o.steps ?? BENCH_GENERATE_DEFAULTS.steps;
  const dev = await openDevice(o.device ?? 'cpu');
  const rows: BenchRow[] = [];
  try {
    for (const model of o.models ?? BENCH_GENERATE_DEFAULTS.models) {
      for (const preset of o.presets ?? BENCH_GENERATE_DEFAULTS.presets) {
        const kase = `${model} ${preset} prompt=${P}`;
        const impl = `foxgate ${dev.name}`;
        try {
          for (const r of await benchGenerate({ model, preset, promptLength: P, newTokens: n, backend: dev.backend })) {
            if (r.kind === 'speed') {
              rows.push({
                bench: 'generate',
                case: `${kase} decode`,
                impl: `${impl} ${r.mode === 'cache' ? 'kv-cache' : 'recompute'}`,
                value: r.tokensPerSecond,
                unit: 'tok/s',
                note: `${r.tokens} tokens, prefill ${r.prefillSeconds.toFixed(2)} s`,
              });
            } else {
              rows.push({
                bench: 'generate',
                case: `${kase} cache after ${r.generated} new`,
                impl: `${impl} evict ${r.evict}`,
                value: r.bytes / 1e6,
                unit: 'MB',
                note: `kept ${r.kept} of ${r.full} entries (${((100 * r.kept) / r.full).toFixed(1)}%), ${formatBytes(r.keptBytes)} of them`,
              });
            }
          }
        } catch (e) {
          rows.push(failedRow('generate', kase, impl, firstLine(e)));
        }
      }
    }
  } finally {
    await dev.release();
  }
  return rows;
}
