import { parseArgs } from 'node:util';
import type { BenchRow } from '../bench/types.js';
import { UsageError } from '../errors.js';
import { formatTable } from '../table.js';

const HELP = `usage: foxgate bench <suite> [--sizes a,b,c] [--seconds S] [--head-dim D] [--json FILE] [--no-tfjs]

suites:
  cpu        float32 matmul on the CPU backend vs @tensorflow/tfjs-backend-cpu (GFLOP/s)
  ops        WebGPU: f32 matmul (TFLOP/s) vs tfjs-webgpu, elementwise add and row softmax (GB/s)
  attention  WebGPU: forgetting attention fwd / fwd+bwd, with and without ACP (ms)

--seconds: GPU time per timed case for ops and attention (default 1; longer runs average more
iterations: a T=16k fwd+bwd case gets three per second). --head-dim: attention's D (default 64).
Prints a table; --json also writes the rows to FILE.`;

type Suite = (opts: { sizes?: number[]; tfjs?: boolean; seconds?: number; D?: number }) => Promise<BenchRow[]>;

async function loadSuite(name: string): Promise<Suite> {
  switch (name) {
    case 'cpu':
      return (await import('../bench/cpu-matmul.js')).benchCpuMatmul;
    case 'ops':
      return (await import('../bench/gpu-ops.js')).benchGpuOps;
    case 'attention':
      return (await import('../bench/attention.js')).benchAttention as Suite;
    default:
      throw new UsageError(`unknown bench suite '${name}' (suites: cpu, ops, attention)`);
  }
}

export function printRows(rows: readonly BenchRow[]): void {
  const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));
  console.log(
    formatTable([
      ['bench', 'case', 'impl', 'value', 'unit', 'note'],
      ...rows.map((r) => [r.bench, r.case, r.impl, fmt(r.value), r.unit, r.note ?? '']),
    ]),
  );
}

export async function runBench(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      sizes: { type: 'string' },
      seconds: { type: 'string' },
      'head-dim': { type: 'string' },
      json: { type: 'string' },
      'no-tfjs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  let sizes: number[] | undefined;
  if (values.sizes !== undefined) {
    sizes = values.sizes.split(',').map((s) => Number(s));
    if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new UsageError(`--sizes must be positive integers, got '${values.sizes}'`);
  }
  let seconds: number | undefined;
  if (values.seconds !== undefined) {
    seconds = Number(values.seconds);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
      throw new UsageError(`--seconds must be a number in (0, 600], got '${values.seconds}'`);
  }
  let D: number | undefined;
  if (values['head-dim'] !== undefined) {
    D = Number(values['head-dim']);
    if (!Number.isInteger(D) || D <= 0 || D > 256)
      throw new UsageError(`--head-dim must be an integer in [1, 256], got '${values['head-dim']}'`);
    const other = positionals.find((n) => n !== 'attention');
    if (other) throw new UsageError(`--head-dim applies to the attention suite only, not '${other}'`);
  }
  const rows: BenchRow[] = [];
  for (const name of positionals) {
    const suite = await loadSuite(name);
    const r = await suite({ sizes, tfjs: !values['no-tfjs'], seconds, D });
    printRows(r);
    rows.push(...r);
  }
  if (values.json) {
    const { writeFile, rename } = await import('node:fs/promises');
    const tmp = `${values.json}.tmp-${process.pid}`;
    await writeFile(tmp, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
    await rename(tmp, values.json);
  }
  return 0;
}
