export { main, usage } from './main.js';
export type { BenchRow } from './bench/types.js';
