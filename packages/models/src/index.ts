/**
 * @foxgate/models — layers and models as pure functions of parameter trees: `initX(key, …)`
 * returns a plain record of tensors, `x(params, input)` applies it.
 */

export const PACKAGE = '@foxgate/models';

export {
  type InitOptions,
  initLinear,
  type LinearInitOptions,
  type LinearParams,
  linear,
} from './layers/linear.js';
export { initRMSNorm, RMS_NORM_EPS, type RMSNormParams, rmsNormLayer } from './layers/norm.js';
export { initSwiGLU, type SwiGLUInitOptions, type SwiGLUParams, swiglu } from './layers/swiglu.js';
