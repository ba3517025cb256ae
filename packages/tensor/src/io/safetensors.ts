/**
 * safetensors reading and writing at the data level (typed arrays, no Tensor dependency).
 *
 * Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]}, ...,
 *    "__metadata__": {"key": "string value", ...}}          (optional)
 * then the data buffer; offsets are relative to the buffer start, tensors are little-endian,
 * row-major, and must tile the buffer exactly (no gaps, no overlaps).
 *
 * Reading converts F16/BF16 → Float32Array, I8/I16/U16 → Int32Array, I64 → Int32Array (only
 * if every value fits), BOOL → Uint8Array of 0/1; F64, F32, I32, U32 and U8 keep their type.
 * Every defect gives one FoxgateError `safetensors: <source>: <what is wrong>`.
 */
import type { TypedArray } from '../dtype.js';
import { fail, fmtShape } from '../errors.js';
import {
  HOST_LE,
  ITEM_BYTES,
  isSafetensorsDType,
  SAFETENSORS_DTYPES,
  type SafetensorsDType,
  swapBytes,
  WRITABLE_DTYPES,
  type WritableDType,
} from './dtypes.js';
import { decodeHalves } from './half.js';

export type { SafetensorsDType, WritableDType } from './dtypes.js';

export interface SafetensorsTensor {
  /** The dtype stored in the file (the data may be widened, e.g. F16 → Float32Array). */
  dtype: SafetensorsDType;
  shape: number[];
  data: TypedArray;
}

export interface SafetensorsContents {
  /** Tensors in the order of their data offsets. */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export interface SafetensorsEntry {
  dtype: WritableDType;
  shape: readonly number[];
  data: TypedArray;
}

/** Headers above this size are refused (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

function bad(source: string, msg: string): never {
  fail('safetensors', `${source}: ${msg}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

interface Located {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

function checkEntry(source: string, name: string, info: unknown, bufLen: number): Located {
  const where = `tensor ${JSON.stringify(name)}`;
  if (!isRecord(info)) bad(source, `${where}: entry must be an object {dtype, shape, data_offsets}, got ${describe(info)}`);
  const { dtype, shape, data_offsets: offs } = info;
  if (!isSafetensorsDType(dtype)) {
    bad(source, `${where}: unknown or unsupported dtype ${describe(dtype)} (supported: ${SAFETENSORS_DTYPES.join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(source, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    bad(source, `${where}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as [number, number];
  if (begin > end || end > bufLen) {
    bad(source, `${where}: data_offsets [${begin},${end}] out of range (data buffer holds ${bufLen} bytes)`);
  }
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  const bytes = size * ITEM_BYTES[dtype];
  if (bytes !== end - begin) {
    bad(
      source,
      `${where}: shape ${fmtShape(shape)} of ${dtype} needs ${bytes} bytes but data_offsets [${begin},${end}] hold ${end - begin}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

function checkTiling(source: string, entries: Located[], bufLen: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Located | undefined;
  for (const e of sorted) {
    if (e.begin < pos) {
      bad(
        source,
        `tensor ${JSON.stringify(e.name)} (data_offsets [${e.begin},${e.end}]) overlaps tensor ${JSON.stringify(prev?.name)} ([${prev?.begin},${prev?.end}])`,
      );
    }
    if (e.begin > pos) {
      bad(source, `bytes [${pos},${e.begin}) of the data buffer belong to no tensor (gap before tensor ${JSON.stringify(e.name)})`);
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== bufLen) {
    bad(source, `the data buffer has ${bufLen} bytes but the tensors cover only ${pos} (${bufLen - pos} bytes belong to no tensor)`);
  }
  entries.splice(0, entries.length, ...sorted);
}

function decode(source: string, e: Located, raw: Uint8Array): TypedArray {
  const copy = new Uint8Array(raw.length); // aligned, owned (Buffer#slice would be a view)
  copy.set(raw);
  const item = ITEM_BYTES[e.dtype];
  if (!HOST_LE) swapBytes(copy, item);
  const buf = copy.buffer;
  switch (e.dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'U32':
      return new Uint32Array(buf);
    case 'U8':
      return copy;
    case 'BOOL':
      for (let i = 0; i < copy.length; i++) copy[i] = copy[i] !== 0 ? 1 : 0;
      return copy;
    case 'F16':
    case 'BF16':
      return decodeHalves(new Uint16Array(buf), e.dtype);
    case 'I16':
      return new Int32Array(new Int16Array(buf));
    case 'U16':
      return new Int32Array(new Uint16Array(buf));
    case 'I8':
      return new Int32Array(new Int8Array(buf));
    case 'I64': {
      const w = new Int32Array(buf);
      const out = new Int32Array(w.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = w[2 * i];
        const hi = w[2 * i + 1];
        if (hi !== lo >> 31) {
          const v = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          bad(source, `tensor ${JSON.stringify(e.name)}: I64 value ${v} at index ${i} does not fit in int32`);
        }
        out[i] = lo;
      }
      return out;
    }
  }
}

/** Parses a whole safetensors file; `source` (a path or label) is named in every error. */
export function parseSafetensors(bytes: Uint8Array, source = '<bytes>'): SafetensorsContents {
  if (!(bytes instanceof Uint8Array)) bad(source, `expected the file contents as a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8) bad(source, `file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, true) * 2 ** 32 + view.getUint32(0, true);
  if (n > bytes.length - 8) {
    bad(source, `header length ${n} runs past the end of the file (${bytes.length - 8} bytes follow the length field)`);
  }
  if (n > MAX_HEADER_BYTES) bad(source, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    bad(source, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    bad(source, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(header)) bad(source, `header must be a JSON object, got ${describe(header)}`);

  const metadata: Record<string, string> = {};
  if (Object.hasOwn(header, METADATA_KEY)) {
    const meta = header[METADATA_KEY];
    if (!isRecord(meta)) bad(source, `__metadata__ must be an object of strings, got ${describe(meta)}`);
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string') bad(source, `__metadata__ value of ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
      Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }

  const bufStart = 8 + n;
  const bufLen = bytes.length - bufStart;
  const located: Located[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name !== METADATA_KEY) located.push(checkEntry(source, name, info, bufLen));
  }
  checkTiling(source, located, bufLen);

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of located) {
    const data = decode(source, e, bytes.subarray(bufStart + e.begin, bufStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

const ARRAY_OF: Record<WritableDType, string> = {
  F64: 'Float64Array',
  F32: 'Float32Array',
  I32: 'Int32Array',
  U32: 'Uint32Array',
  U8: 'Uint8Array',
  BOOL: 'Uint8Array',
};

function checkWritable(name: string, e: SafetensorsEntry): void {
  const where = `cannot write tensor ${JSON.stringify(name)}`;
  if (name === METADATA_KEY) fail('safetensors', `${where}: the name __metadata__ is reserved`);
  if (!e || !(WRITABLE_DTYPES as readonly string[]).includes(e.dtype)) {
    fail('safetensors', `${where}: dtype must be one of ${WRITABLE_DTYPES.join(', ')}, got ${describe(e?.dtype)}`);
  }
  if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail('safetensors', `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
  }
  // the typed-array tag is realm-independent and sees through subclasses (Node's Buffer)
  const ctor = ArrayBuffer.isView(e.data) ? (e.data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined;
  if (ctor !== ARRAY_OF[e.dtype]) {
    fail('safetensors', `${where}: dtype ${e.dtype} needs a ${ARRAY_OF[e.dtype]}, got ${ctor ?? describe(e.data)}`);
  }
  const size = e.shape.reduce((a, b) => a * b, 1);
  if (size !== e.data.length) {
    fail('safetensors', `${where}: shape ${fmtShape(e.shape)} has ${size} elements but the data has ${e.data.length}`);
  }
}

/**
 * Encodes tensors (+ optional string metadata) as a safetensors file: tensors sorted by name,
 * contiguous offsets, the JSON header padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(entries: Record<string, SafetensorsEntry>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(entries).sort();
  for (const name of names) checkWritable(name, entries[name]);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (!isRecord(metadata)) fail('safetensors', `metadata must be an object of strings, got ${describe(metadata)}`);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail('safetensors', `metadata value of ${JSON.stringify(k)} must be a string, got ${describe(v)}`);
    }
    header[METADATA_KEY] = metadata;
  }
  let offset = 0;
  for (const name of names) {
    const e = entries[name];
    const end = offset + e.data.byteLength;
    Object.defineProperty(header, name, {
      value: { dtype: e.dtype, shape: [...e.shape], data_offsets: [offset, end] },
      enumerable: true,
      writable: true,
      configurable: true,
    });
    offset = end;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded % 2 ** 32, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  out.set(json, 8);
  let pos = 8 + padded;
  for (const name of names) {
    const e = entries[name];
    const src = new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength);
    if (e.dtype === 'BOOL') {
      for (let i = 0; i < src.length; i++) out[pos + i] = src[i] !== 0 ? 1 : 0;
    } else {
      out.set(src, pos);
      if (!HOST_LE) swapBytes(out.subarray(pos, pos + src.length), ITEM_BYTES[e.dtype]);
    }
    pos += src.length;
  }
  return out;
}
