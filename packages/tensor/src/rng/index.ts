/** Counter-based RNG: keys and the Philox-4x32-10 streams every backend reproduces. */
export { foldIn, RngKey, type RngKeyLike, rngKey, split, splitKey } from './key.js';
export { MAX_STREAM_SIZE, philox4x32, philoxRandom, philoxStream } from './philox.js';
