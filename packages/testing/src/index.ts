/**
 * @foxgate/testing (private, not published): the test utilities of every foxgate suite.
 */

export { rejectsNaming, throwsNaming } from './errors.js';
export { xorshift32 } from './random.js';
export { repoRoot } from './repo.js';
export { destroyTestWebGPU, testWebGPU } from './webgpu.js';
