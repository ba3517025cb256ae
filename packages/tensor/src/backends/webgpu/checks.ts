import type { View } from '../../backend.js';
import { FoxgateError, fail } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import type { Engine, GpuStorage } from './engine.js';
import { gpuOf } from './kernels/common.js';
import { runKernel } from './run-kernel.js';

/**
 * Deferred device-side checks, in the way CUDA device asserts work: an op that would need a
 * readback to validate its input (say, "logF ≤ 0") computes a flag on the GPU instead and
 * registers it with `checkLater`; the pending flags are copied into the staging buffer of the
 * next readback of any tensor (or read at `sync()`), so checking costs no extra round trip, and
 * the first failed one throws its FoxgateError there. Each registered check is read once.
 *
 * Flags with the same op and message are folded into one word on the device (`max`), so a loop
 * that never reads back keeps one pending word per distinct check, not one per call.
 */
interface Pending {
  op: string;
  message: string;
  /** One u32: nonzero = failed. Owned here, freed when read. */
  word: GpuStorage;
}

export class DeviceChecks {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly engine: Engine) {}

  /** Number of pending checks (each one u32 word in the next readback). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Registers `flag` (a one-element view on this device: nonzero, or NaN, means failed); the
   * value is taken now (a tiny dispatch), so the caller may dispose the flag afterwards.
   */
  add(flag: View, op: string, message: string): void {
    if (sizeOf(flag.shape) !== 1) fail('checkLater', `the flag must have one element, got shape [${flag.shape.join(',')}]`);
    if (flag.dtype === 'float64') fail('checkLater', 'the flag must be a webgpu dtype (float32, int32, uint32, bool)');
    gpuOf('checkLater', flag);
    const key = `${op}\u0000${message}`;
    const prev = this.pending.get(key);
    // floats by their bits (±0 pass; NaN fails, which a float comparison may not see)
    const failed =
      flag.dtype === 'float32'
        ? '(bitcast<u32>(flag[P.flag_offset]) & 0x7fffffffu) != 0u'
        : `flag[P.flag_offset] != ${flag.dtype === 'int32' ? '0i' : '0u'}`;
    const [word] = runKernel(
      this.engine,
      {
        name: 'check_later',
        code: `@compute @workgroup_size(1)
fn main() {
  var w = select(0u, 1u, ${failed});
${prev ? '  w = max(w, prev[0]);\n' : ''}  word[0] = w;
}`,
        inputs: [{ name: 'flag', data: flag }, ...(prev ? [{ name: 'prev', data: prev.word, dtype: 'uint32' as const }] : [])],
        outputs: [{ name: 'word', size: 1, dtype: 'uint32' }],
        workgroups: 1,
      },
      new Set(),
    );
    if (prev) this.engine.free(prev.word);
    this.pending.set(key, { op, message, word });
  }

  /**
   * Takes every pending check and records the copies of their words into `dst` from byte
   * `offset` on (one u32 each, in the order returned).
   */
  take(encoder: GPUCommandEncoder, dst: GPUBuffer, offset: number): Pending[] {
    const taken = [...this.pending.values()];
    this.pending.clear();
    taken.forEach((c, i) => {
      encoder.copyBufferToBuffer(c.word.buffer, 0, dst, offset + 4 * i, 4);
    });
    return taken;
  }

  /** Frees the taken checks' words and throws the first whose word (in `words`) is nonzero. */
  verify(taken: readonly Pending[], words: Uint32Array): void {
    for (const c of taken) this.engine.free(c.word);
    const failed = taken.findIndex((_, i) => words[i] !== 0);
    if (failed >= 0) throw new FoxgateError(`${taken[failed].op}: ${taken[failed].message}`);
  }

  /** Drops pending checks without reading them (device destroyed). */
  clear(): void {
    this.pending.clear();
  }
}
