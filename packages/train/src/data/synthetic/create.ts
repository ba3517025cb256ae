import { fail } from '@foxgate/tensor';
import { type DialogTaskOptions, dialogTask, type ResolvedDialogTaskOptions } from './dialog.js';
import { type MqarOptions, mqarTask, type ResolvedMqarOptions } from './mqar.js';
import { type NeedleOptions, needleTask, type ResolvedNeedleOptions } from './needle.js';
import type { SyntheticTask, TaskName } from './task.js';

export const TASK_NAMES: readonly TaskName[] = ['mqar', 'needle', 'dialog'];

/** A synthetic long-context task by name: 'mqar', 'needle' or 'dialog'. */
export function createTask(name: 'mqar', opts?: MqarOptions): SyntheticTask<ResolvedMqarOptions>;
export function createTask(name: 'needle', opts?: NeedleOptions): SyntheticTask<ResolvedNeedleOptions>;
export function createTask(name: 'dialog', opts?: DialogTaskOptions): SyntheticTask<ResolvedDialogTaskOptions>;
export function createTask(name: string, opts?: object): SyntheticTask<Record<string, unknown>>;
export function createTask(name: string, opts: object = {}): SyntheticTask<any> {
  if (opts === null || typeof opts !== 'object') fail('createTask', `options must be an object, got ${JSON.stringify(opts)}`);
  if (name === 'mqar') return mqarTask(opts);
  if (name === 'needle') return needleTask(opts);
  if (name === 'dialog') return dialogTask(opts);
  fail('createTask', `unknown task ${JSON.stringify(name)} (expected one of ${TASK_NAMES.join(', ')})`);
}
