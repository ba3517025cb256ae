export type { BenchRow } from './bench/types.js';
export { main, usage } from './main.js';
