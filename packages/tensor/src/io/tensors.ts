/** safetensors ↔ foxgate tensors. */
import type { Backend } from '../backend.js';
import type { DType, TypedArray } from '../dtype.js';
import { fail } from '../errors.js';
import { tensor } from '../ops/creation.js';
import type { Tensor } from '../tensor.js';
import { readSafetensorsFile, writeSafetensorsFile } from './files.js';
import {
  parseSafetensors,
  type SafetensorsContents,
  type SafetensorsEntry,
  serializeSafetensors,
  type WritableDType,
} from './safetensors.js';

export interface LoadOptions {
  /** Backend name or object; default: the default backend. */
  backend?: string | Backend;
}

const FILE_DTYPE: Record<DType, WritableDType> = {
  float64: 'F64',
  float32: 'F32',
  int32: 'I32',
  uint32: 'U32',
  bool: 'BOOL',
};

/** The tensor dtype for decoded data: U8 (a Uint8Array that is not bool) is widened to int32. */
function toTensorData(fileDtype: string, data: TypedArray): { data: TypedArray; dtype: DType } {
  if (data instanceof Float64Array) return { data, dtype: 'float64' };
  if (data instanceof Float32Array) return { data, dtype: 'float32' };
  if (data instanceof Int32Array) return { data, dtype: 'int32' };
  if (data instanceof Uint32Array) return { data, dtype: 'uint32' };
  if (fileDtype === 'BOOL') return { data, dtype: 'bool' };
  return { data: Int32Array.from(data), dtype: 'int32' };
}

/** Tensors of parsed safetensors contents, on `backend`. */
export function tensorsFromSafetensors(contents: SafetensorsContents, opts: LoadOptions = {}): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of contents.tensors) {
    const { data, dtype } = toTensorData(t.dtype, t.data);
    const value = tensor(data, t.shape, { dtype, backend: opts.backend });
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Loads every tensor of a safetensors file (a path, in Node) or of its bytes. F16/BF16 become
 * float32, U8/I8/I16/U16/I64 become int32, BOOL becomes bool.
 */
export async function loadSafetensors(src: string | Uint8Array, opts: LoadOptions = {}): Promise<Record<string, Tensor>> {
  const contents = typeof src === 'string' ? await readSafetensorsFile(src) : parseSafetensors(src);
  return tensorsFromSafetensors(contents, opts);
}

async function toEntries(tensors: Record<string, Tensor>): Promise<Record<string, SafetensorsEntry>> {
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = FILE_DTYPE[t?.dtype as DType];
    if (dtype === undefined) fail('safetensors', `cannot write ${JSON.stringify(name)}: not a tensor`);
    const entry: SafetensorsEntry = { dtype, shape: [...t.shape], data: await t.data() };
    Object.defineProperty(entries, name, { value: entry, enumerable: true, writable: true, configurable: true });
  }
  return entries;
}

/** The safetensors bytes of `tensors` (works in browsers too). */
export async function safetensorsBytes(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  return serializeSafetensors(await toEntries(tensors), metadata);
}

/** Writes `tensors` (+ string metadata) to a safetensors file, atomically (Node only). */
export async function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): Promise<void> {
  await writeSafetensorsFile(path, await toEntries(tensors), metadata);
}
