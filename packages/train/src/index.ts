/**
 * @foxgate/train — training utilities for foxgate models. So far: the AdamW optimizer over
 * parameter trees.
 */

export const PACKAGE = '@foxgate/train';

export { type AdamW, type AdamWOptions, type AdamWState, adamw } from './adamw.js';
