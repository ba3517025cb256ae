/** One measured number of a benchmark, printed as a table row and recorded in BENCHMARKS.md. */
export interface BenchRow {
  bench: string;
  case: string;
  impl: string;
  value: number;
  unit: string;
  note?: string;
}
