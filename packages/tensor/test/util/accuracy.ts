/** n float32 values in [0.1, 1.1) with their float64 sum (for large-reduction accuracy checks). */
export function sumAccuracyData(n: number): { data: Float32Array; exact: number } {
  const data = new Float32Array(n);
  let exact = 0;
  for (let i = 0; i < n; i++) {
    data[i] = 0.1 + ((i * 7919) % 1000) / 997;
    exact += data[i];
  }
  return { data, exact };
}
