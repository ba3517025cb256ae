import { lines, range } from './util.js';

/** Row reductions across the threads that share a tile row. */

/**
 * `v = comb(v, subgroupShuffleXor(v, 2^i))` for i < `steps`: a butterfly over 2^steps
 * consecutive lanes of a subgroup (every lane ends with the result). `comb` writes the
 * combination of two WGSL expressions (e.g. their max).
 */
export function shuffleReduce(v: string, steps: number, comb: (a: string, b: string) => string, indent = '    '): string {
  return range(steps)
    .map((i) => `${indent}${v} = ${comb(v, `subgroupShuffleXor(${v}, ${1 << i}u)`)};`)
    .join('\n');
}

/**
 * Sums each tile row's partial sums `acc<e>` across the NC threads that share the row (through
 * `red`) and writes them to `out[b, origin + x, h]` (rows below `T`).
 */
export function storeRowSums(tm: number, acc: string, rows: 'BQ' | 'BK', t: 'i' | 'j', origin: string, T: string, out: string): string {
  return `  workgroupBarrier();
${lines(tm, (e) => `  red[(tr * TM + ${e}u) * NC + tc] = ${acc}${e};`)}
  workgroupBarrier();
  for (var x = lid; x < ${rows}; x += NT) {
    let ${t} = ${origin} + x;
    var t = 0.0;
    for (var c = 0u; c < NC; c++) { t += red[x * NC + c]; }
    if (${t} < ${T}) { ${out}[(b * ${T} + ${t}) * P.H + h] = t; }
  }`;
}
