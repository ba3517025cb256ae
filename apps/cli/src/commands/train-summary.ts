import type { EvalResult, TrainResult } from '@foxgate/train';

/** A fraction as a percentage with one decimal. */
export const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

/** The recall-accuracy lines (also at each extrapolated context) and the dialog-perplexity line of `e`, where it has them. */
export function accuracyLines(e: EvalResult): string[] {
  const lines: string[] = [];
  if (e.accuracy) {
    const a = e.accuracy;
    lines.push(
      `${a.name} recall accuracy ${pct(a.value)} (${a.correct}/${a.total}) against chance ${pct(a.chance)}: ${(a.value / a.chance).toFixed(1)}× chance`,
    );
    for (const x of e.extrapolation)
      if (x.accuracy) lines.push(`  at ${x.factor}× the context (T=${x.context}): accuracy ${pct(x.accuracy.value)}`);
  }
  if (e.perplexity !== undefined) lines.push(`dialog perplexity ${e.perplexity.toFixed(3)} over ${e.samples} responses`);
  return lines;
}

/** Position ranges: about `rows` equal ones over the training context, then doublings up to the longest context. */
function ranges(context: number, longest: number, rows: number): [number, number][] {
  const span = Math.max(1, Math.ceil(context / rows));
  const out: [number, number][] = [];
  for (let a = 0; a < context; a += span) out.push([a, Math.min(context, a + span)]);
  for (let a = context; a < longest; a *= 2) out.push([a, Math.min(longest, 2 * a)]);
  return out;
}

/** The per-position loss table: a row per position range, a column per evaluated context. */
export function perPositionTable(e: EvalResult, rows = 8): string[] {
  const cols = [e, ...e.extrapolation];
  const longest = Math.max(...cols.map((c) => c.context));
  const out = [`  ${'positions'.padEnd(13)}${cols.map((c) => `T=${c.context}`.padStart(10)).join('')}`];
  for (const [start, end] of ranges(e.context, longest, rows)) {
    const cells = cols.map((c) => {
      let s = 0;
      let n = 0;
      for (const b of c.perPosition) {
        if (b.loss !== null && b.start >= start && b.start < end) {
          s += b.loss;
          n++;
        }
      }
      return n ? (s / n).toFixed(4) : '';
    });
    if (cells.every((x) => x === '')) continue;
    out.push(`  ${`${start}–${end}`.padEnd(13)}${cells.map((x) => x.padStart(10)).join('')}`);
  }
  return out;
}

/** What `foxgate train` prints when a run ends. */
export function summaryLines(r: TrainResult, e: EvalResult | null, out: string): string[] {
  const lines: string[] = [];
  const first = r.losses[0];
  lines.push(
    `trained ${r.step} steps (${r.tokens.toLocaleString('en-US')} tokens) in ${r.seconds.toFixed(1)} s on ${r.device}: training loss ${first !== undefined ? `${first.toFixed(4)} → ` : ''}${r.loss.toFixed(4)}`,
  );
  if (!e) return lines;
  lines.push(`validation loss ${e.loss.toFixed(4)} over ${e.targets} targets at context ${e.context}`);
  lines.push('per-position loss (validation):');
  lines.push(...perPositionTable(e));
  lines.push(...accuracyLines(e));
  if (e.sample) {
    lines.push(`sample — prompt: ${JSON.stringify(e.sample.prompt)}`);
    lines.push(
      `         model:  ${e.sample.total ? e.sample.text : JSON.stringify(e.sample.text)}${e.sample.total ? ` (${e.sample.correct}/${e.sample.total} right)` : ''}`,
    );
  }
  if (r.config.acp) {
    const f = e.acp?.prunedFraction ?? [];
    const tiles = Math.ceil(e.context / 64);
    lines.push(
      `ACP pruned ${f.length ? f.map((v, i) => `layer ${i} ${pct(v)}`).join(', ') : 'nothing'} of the 64×64 attention tiles at T=${e.context}` +
        (tiles < 3
          ? ` (${tiles} tile${tiles > 1 ? 's' : ''} per row: ACP prunes whole tiles two or more tiles left of the diagonal, so short contexts prune nothing)`
          : ''),
    );
    for (const x of e.extrapolation) {
      if (x.acp)
        lines.push(
          `  at T=${x.context}${x.context > e.context ? ' (rows of several episodes, the forget gate reset at each)' : ''}: ACP pruned ${x.acp.prunedFraction.map((v, i) => `layer ${i} ${pct(v)}`).join(', ')}`,
        );
    }
  } else lines.push('ACP off');
  lines.push(`run folder: ${out}`);
  return lines;
}
