import type { Backend, BackendMemory, Storage } from './backend.js';
import { isTensor } from './is-tensor.js';
import type { Tensor } from './tensor.js';

/**
 * Tensor lifetimes. Storages are reference-counted by the tensors (views) that use them and
 * freed to their backend when the last one is disposed. `tidy(fn)` disposes every tensor
 * created inside `fn` except those it returns; a FinalizationRegistry is only a safety net.
 */

interface StorageEntry {
  backend: Backend;
  refs: number;
}
const storages = new Map<Storage, StorageEntry>();
const liveTensors = new Map<string, number>();
const scopes: Set<Tensor>[] = [];

const registry = new FinalizationRegistry<{ storage: Storage; backend: string }>((held) => {
  // A tensor was garbage-collected without dispose(): release its storage reference.
  liveTensors.set(held.backend, (liveTensors.get(held.backend) ?? 1) - 1);
  releaseStorage(held.storage);
});

export function retainStorage(storage: Storage, backend: Backend): void {
  const e = storages.get(storage);
  if (e) e.refs++;
  else storages.set(storage, { backend, refs: 1 });
}

function releaseStorage(storage: Storage): void {
  const e = storages.get(storage);
  if (!e) return;
  if (--e.refs === 0) {
    storages.delete(storage);
    e.backend.free(storage);
  }
}

/** Called by the Tensor constructor. */
export function trackTensor(t: Tensor): void {
  retainStorage(t.storage, t.backend);
  liveTensors.set(t.backend.name, (liveTensors.get(t.backend.name) ?? 0) + 1);
  registry.register(t, { storage: t.storage, backend: t.backend.name }, t);
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Called by Tensor.dispose() once. */
export function untrackTensor(t: Tensor): void {
  registry.unregister(t);
  liveTensors.set(t.backend.name, (liveTensors.get(t.backend.name) ?? 1) - 1);
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].delete(t)) break;
  releaseStorage(t.storage);
}

/** Visits every tensor in a nested structure of records, arrays, Maps and tensors. */
export function forEachTensor(value: unknown, fn: (t: Tensor) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    fn(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) forEachTensor(v, fn, seen);
  else if (value instanceof Map) for (const v of value.values()) forEachTensor(v, fn, seen);
  else for (const v of Object.values(value)) forEachTensor(v, fn, seen);
}

/**
 * Runs `fn` and disposes every tensor created inside it that is not part of its result
 * (tensors nested anywhere in the returned records/arrays survive and move to the enclosing
 * scope). `fn` must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) if (!t.isDisposed) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error('tidy: the function returned a Promise; tidy() only takes synchronous functions');
  }
  const keepSet = new Set<Tensor>();
  forEachTensor(result, (t) => keepSet.add(t));
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keepSet.has(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
  return result;
}

/** Removes `t` from every tidy scope, so that it outlives them (dispose it yourself). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Disposes every tensor in a nested structure. */
export function dispose(value: unknown): void {
  forEachTensor(value, (t) => {
    if (!t.isDisposed) t.dispose();
  });
}

export interface MemoryStats {
  /** Per backend: live tensors (views included) and the backend's own counters. */
  backends: Record<string, BackendMemory & { tensors: number }>;
}

const knownBackends = new Map<string, Backend>();
export function registerBackendForStats(b: Backend): void {
  knownBackends.set(b.name, b);
}

/**
 * Returns every backend's cached free memory (the WebGPU buffer pool) to the device, like
 * `torch.cuda.empty_cache()`: live tensors are untouched, and later allocations create buffers
 * afresh. Useful between phases of very different sizes.
 */
export function emptyCache(): void {
  for (const b of knownBackends.values()) b.emptyCache?.();
}

/**
 * Starts a new peak on every backend: `memoryStats().backends[name].peakBytes` then counts from
 * the bytes in use now (like `torch.cuda.reset_peak_memory_stats()`).
 */
export function resetPeakMemory(): void {
  for (const b of knownBackends.values()) b.resetPeak?.();
}

/** Live tensors and bytes per backend. */
export function memoryStats(): MemoryStats {
  const backends: MemoryStats['backends'] = {};
  for (const [name, b] of knownBackends) {
    backends[name] = { tensors: liveTensors.get(name) ?? 0, ...b.memory() };
  }
  return { backends };
}
