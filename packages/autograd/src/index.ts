/**
 * @foxgate/autograd — reverse-mode automatic differentiation over parameter trees for
 * @foxgate/tensor: `valueAndGrad` / `grad`, one VJP rule per primitive, `customOp()` for fused
 * kernels with their own backward, `stopGradient` / `noGrad`, and `gradcheck`.
 */

export { type CustomForwardResult, type CustomOp, type CustomOpSpec, customOp } from './custom.js';
export { type AuxOf, type GradOptions, grad, type LossOutput, type ValueAndGrad, valueAndGrad } from './grad.js';
export { type GradcheckInputReport, type GradcheckOptions, type GradcheckReport, gradcheck } from './gradcheck.js';
export { noGrad, stopGradient } from './nograd.js';
export { type NodeValues, type Rule, rules, type Save } from './rules.js';
export {
  checkSameTree,
  dottedPath,
  flattenTree,
  fmtPath,
  mapTree,
  type Params,
  type PathSegment,
  treeLeaves,
  unflattenTree,
  zipTree,
} from './tree.js';
export { unbroadcast } from './unbroadcast.js';
