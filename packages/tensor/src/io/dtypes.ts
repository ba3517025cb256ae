/** The safetensors element types foxgate reads and writes, and what they decode to. */

/** dtypes accepted by `parseSafetensors`. */
export const SAFETENSORS_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U32', 'U16', 'U8', 'BOOL'] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** dtypes `serializeSafetensors` writes (the ones foxgate tensors hold natively). */
export const WRITABLE_DTYPES = ['F64', 'F32', 'I32', 'U32', 'U8', 'BOOL'] as const;
export type WritableDType = (typeof WRITABLE_DTYPES)[number];

/** Bytes per element in the file. */
export const ITEM_BYTES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export function isSafetensorsDType(d: unknown): d is SafetensorsDType {
  return typeof d === 'string' && (SAFETENSORS_DTYPES as readonly string[]).includes(d);
}

/** True on little-endian hosts (all common ones); the file format is little-endian. */
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of each `size`-byte element in place (big-endian hosts only). */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}
