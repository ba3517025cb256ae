/** safetensors IO: data level (`parseSafetensors`, `serializeSafetensors`), files, tensors. */

export { SAFETENSORS_DTYPES, WRITABLE_DTYPES } from './dtypes.js';
export { readSafetensorsFile, writeSafetensorsFile } from './files.js';
export { bf16BitsToF32Bits, f16BitsToF32Bits, f16ToNumber } from './half.js';
export {
  MAX_HEADER_BYTES,
  parseSafetensors,
  type SafetensorsContents,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsTensor,
  serializeSafetensors,
  type WritableDType,
} from './safetensors.js';
export { type LoadOptions, loadSafetensors, safetensorsBytes, saveSafetensors, tensorsFromSafetensors } from './tensors.js';
