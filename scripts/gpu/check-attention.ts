/*
 * Forgetting / softmax attention on a hardware WebGPU adapter against the fused CPU kernel in
 * float64: output and all four gradients, for the head dims, odd lengths, Tq < Tk and ACP cases
 * of the test suite (which runs on lavapipe, where the kernels take their software variants).
 * Tolerances: those of the test suite (`compareResults`). `checkWindows`: the same with the
 * sliding-window option (`window`).
 */

import { type FoxTileOverrides, foxTilesFor, setFoxTiles } from '../../packages/attention/src/dev.js';
import { compareResults, problem, runFox } from '../../packages/attention/test/util/fox.js';
import { initWebGPU, type WebGPUBackend } from '../../packages/tensor/src/index.js';

type Result = { name: string; ok: boolean; msg?: string };

const LABELS = [
  ['gated', { gated: true }, [0, 5]],
  ['gated ACP', { gated: true, acp: true, stats: true }, [-3, 1]],
  ['softmax', { gated: false }, [0, 5]],
] as const;

export async function checkAttention(): Promise<Result[]> {
  const gpu = await initWebGPU();
  const results: Result[] = [];
  const cases: [B: number, Tq: number, Tk: number, H: number, D: number][] = [
    [2, 133, 133, 3, 64],
    [1, 75, 301, 2, 64],
    [2, 257, 257, 2, 8],
    [1, 190, 190, 3, 24],
    [2, 129, 200, 2, 100],
    [1, 300, 300, 2, 128],
    [1, 97, 97, 1, 256],
    [1, 1, 150, 2, 64],
  ];
  // the default tiles on every case; the opt-in variants (no pipelining, other wide
  // configurations) on the D = 64 cases
  const def = foxTilesFor(gpu, 64);
  const wide128 = { bk: 64, tm: 4, pf: true, sg: true };
  const variants: [string, FoxTileOverrides][] = [
    ['', {}],
    [' [tiled]', { wide: false, wideDq: false, wideDkv: false }],
    [' [wide dkv 32]', { wideDkv: { bk: 32, tm: 4, pf: true } }],
    [
      ' [wide dch 4]',
      {
        wide: { bk: 64, tm: 4, pf: true, dch: 4 },
        wideDq: { bk: 64, tm: 4, pf: true, dch: 4 },
        wideDkv: { bk: 64, tm: 4, pf: true, dch: 4 },
      },
    ],
    [' [wide 8 rows]', { wide: { bk: 64 }, wideDq: { bk: 64 }, wideDkv: { bk: 64 } }],
    [
      ' [wide no sg]',
      {
        wide: { bk: 64, tm: 4, pf: true },
        wideDq: { bk: 64, tm: 4, pf: true },
        wideDkv: { bk: 64, tm: 4, pf: true },
      },
    ],
    [' [no pf]', { fwd: { ...def.fwd, pf: false }, dkv: { ...def.dkv, pf: false }, dq: { ...def.dq, pf: false } }],
    [' [wide set above 64]', { wide: wide128, wideDq: wide128, wideDkv: wide128 }],
    [' [fuse dq]', { wideDkv: { ...wide128, fuseDq: true } }],
    [' [wide set above 64, fuse dq]', { wide: wide128, wideDq: wide128, wideDkv: { ...wide128, fuseDq: true } }],
    [' [fuse dq, 32 columns]', { wideDkv: { ...wide128, bk: 32, fuseDq: true } }],
  ];
  // which head dims each variant runs on (the opt-in ones: D = 64; dQ fused: every wide head dim)
  const runsOn = (vname: string, D: number) =>
    vname.startsWith(' [wide set above 64')
      ? D > 64 && D <= 128
      : vname.startsWith(' [fuse dq')
        ? D <= 64 && D % 4 === 0
        : !vname || D === 64;
  let seed = 1;
  for (const [vname, tiles] of variants)
    for (const [B, Tq, Tk, H, D] of cases) {
      if (!runsOn(vname, D)) continue;
      setFoxTiles(tiles);
      for (const [label, opts, gate] of LABELS) {
        const name = `${label} B=${B} Tq=${Tq} Tk=${Tk} H=${H} D=${D}${vname}`;
        try {
          const p = problem(B, Tq, Tk, H, D, seed++, [gate[0], gate[1]], 0.5);
          const want = await runFox(p, 'cpu', 'float64', opts);
          const got = await runFox(p, gpu, 'float32', opts);
          const cmp = compareResults(got, want);
          const bad = Object.entries(cmp).filter(([, m]) => m !== null);
          const frac = got.fraction !== undefined ? ` (tiles computed ${(100 * got.fraction).toFixed(1)}%)` : '';
          results.push({ name: name + frac, ok: bad.length === 0, msg: bad.map(([k, m]) => `${k}: ${m}`).join('; ') || undefined });
        } catch (e) {
          results.push({ name, ok: false, msg: `threw ${(e as Error).message}` });
        }
      }
    }
  setFoxTiles({});
  results.push(...(await checkWindows(gpu, variants, runsOn)));
  await gpu.destroy();
  return results;
}

/**
 * Sliding windows (query p attends to keys p − window < j ≤ p): windows 1, 5, 64, 200 and ≥ Tk
 * (full causal attention) on odd lengths, Tq < Tk and a one-query decode, D = 64, 128 and 24,
 * gated, gated + ACP and softmax, output and all gradients against the fused CPU kernel in float64
 * (`compareResults`); without ACP the fraction of 64×64 tiles computed must equal the CPU's. With
 * `variants`, one windowed case per opt-in tile variant (those that run on D = 64). `small`: a
 * few cases for software adapters.
 */
export async function checkWindows(
  gpu: WebGPUBackend,
  variants: [string, FoxTileOverrides][] = [['', {}]],
  runsOn: (vname: string, D: number) => boolean = () => true,
  small = false,
): Promise<Result[]> {
  const results: Result[] = [];
  const cases: [B: number, Tq: number, Tk: number, H: number, D: number, windows: number[]][] = small
    ? [
        [1, 75, 75, 1, 8, [1, 5, 64, 75]],
        [1, 40, 133, 2, 24, [5, 100]],
      ]
    : [
        [1, 333, 333, 2, 64, [1, 5, 64, 200, 333, 1000]],
        [2, 75, 301, 2, 64, [5, 64, 200, 301]],
        [1, 1, 150, 2, 64, [5, 200]],
        [1, 190, 190, 2, 128, [1, 64, 200]],
        [1, 257, 257, 3, 24, [5, 37, 300]],
      ];
  // the opt-in variants on one case whose window ends inside a tile
  const runs: [vname: string, tiles: FoxTileOverrides, c: (typeof cases)[number]][] = [];
  for (const c of cases) runs.push(['', {}, c]);
  const vcase: (typeof cases)[number] = small ? [1, 75, 75, 1, 8, [37]] : [1, 333, 333, 2, 64, [100]];
  for (const [vname, tiles] of variants) if (vname && runsOn(vname, vcase[4])) runs.push([vname, tiles, vcase]);
  let seed = 1000;
  for (const [vname, tiles, [B, Tq, Tk, H, D, windows]] of runs) {
    setFoxTiles(tiles);
    for (const window of windows)
      for (const [label, opts, gate] of LABELS) {
        const name = `${label} window ${window} B=${B} Tq=${Tq} Tk=${Tk} H=${H} D=${D}${vname}`;
        try {
          const p = problem(B, Tq, Tk, H, D, seed++, [gate[0], gate[1]], 0.5);
          const o = { ...opts, window, stats: true };
          const want = await runFox(p, 'cpu', 'float64', o);
          const got = await runFox(p, gpu, 'float32', o);
          const bad = Object.entries(compareResults(got, want))
            .filter(([, m]) => m !== null)
            .map(([k, m]) => `${k}: ${m}`);
          const acp = 'acp' in opts;
          if (!acp && !(Math.abs((got.fraction as number) - (want.fraction as number)) < 1e-6))
            bad.push(`tiles computed ${got.fraction}, the CPU ${want.fraction}`);
          const frac = ` (tiles computed ${(100 * (got.fraction as number)).toFixed(1)}%)`;
          results.push({ name: name + frac, ok: bad.length === 0, msg: bad.join('; ') || undefined });
        } catch (e) {
          results.push({ name, ok: false, msg: `threw ${(e as Error).message}` });
        }
      }
  }
  setFoxTiles({});
  return results;
}
