/** One measured number of a benchmark, printed as a table row and recorded in BENCHMARKS.md. */
export interface BenchRow {
  bench: string;
  case: string;
  impl: string;
  value: number;
  unit: string;
  note?: string;
  /** The case failed its correctness check or threw (value NaN); `foxgate bench` exits non-zero. */
  failed?: boolean;
  /** Machine-readable details for the JSON rows (bench train: ms/step, peak bytes, time split, losses). */
  data?: Record<string, unknown>;
}
