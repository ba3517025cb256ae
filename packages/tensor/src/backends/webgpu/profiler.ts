import { FoxgateError } from '../../errors.js';
import type { Engine } from './engine.js';

/**
 * Per-dispatch GPU time from timestamp queries, for profiling (off by default). While a profile
 * runs, the engine gives every dispatch its own compute pass whose beginning and end write
 * timestamps into a query set of the current command buffer; before the submit the queries are
 * resolved into a buffer that is mapped once the work is done. Off, the only cost is one null
 * check per dispatch (`engine.profiler`).
 *
 * Dawn rounds timestamps (to tens of microseconds) unless its `timestamp_quantization` toggle is
 * off: create the instance with `initWebGPU({ profiling: true })` for single-dispatch resolution.
 * A separate pass per dispatch costs a little GPU time itself, so time throughput without a
 * profile and use the profile for the split.
 */

/** Dawn toggle that rounds timestamps (turned off for profiling). */
export const TIMESTAMP_QUANTIZATION_TOGGLE = 'timestamp_quantization';

/** Kernel families of a profile: forgetting/softmax/SPARSEK attention kernels, matmuls, the rest. */
export type KernelFamily = 'attention' | 'matmul' | 'other';
export const KERNEL_FAMILIES: readonly KernelFamily[] = ['attention', 'matmul', 'other'];

/** The family of a dispatch by its kernel name (`fox_*`, `sparsek_*`: attention; `matmul*`: matmul). */
export function kernelFamily(kernel: string): KernelFamily {
  // a profile by detail names kernels `name detail`
  const name = kernel.split(' ', 1)[0];
  if (name.startsWith('fox_') || name.startsWith('sparsek_')) return 'attention';
  if (name.startsWith('matmul')) return 'matmul';
  return 'other';
}

export interface KernelTime {
  kernel: string;
  family: KernelFamily;
  dispatches: number;
  /** GPU time summed over its dispatches, milliseconds. */
  ms: number;
}

/** Options of `startProfile`. */
export interface ProfileOptions {
  /**
   * Key kernel times by name and detail (`matmul 32768×2304×768 a v4k b v4w tile …`: shapes, layouts, tiles,
   * where the kernel gives one) instead of by name alone; families stay by name. Off by default.
   */
  detail?: boolean;
}

/** What `stopProfile()` returns: GPU time per kernel name and per family. */
export interface DispatchProfile {
  /** Per kernel name, the most time first. */
  kernels: KernelTime[];
  /** Milliseconds per family. */
  families: Record<KernelFamily, number>;
  /** Milliseconds of every timed dispatch together (GPU busy time, not wall time). */
  totalMs: number;
  /** Dispatches timed. */
  dispatches: number;
  /** Dispatches that found no free query slot (their time is missing; 0 in normal use). */
  untimed: number;
}

const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const QUERY_RESOLVE = 0x200;

/** The queries of one command buffer: two timestamps per dispatch. */
interface Batch {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
  names: string[];
}

export class DispatchProfiler {
  private current: Batch | null = null;
  private readonly spare: Batch[] = [];
  private readonly all: Batch[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly totals = new Map<string, { dispatches: number; ns: number }>();
  private untimed = 0;
  private failure: Error | null = null;

  constructor(
    private readonly device: GPUDevice,
    /** Dispatches one command buffer holds at most (the engine's batch size). */
    private readonly capacity: number,
    /** Key the times by name and the dispatch's detail (`ProfileOptions.detail`). */
    private readonly detail = false,
  ) {}

  private batch(): Batch {
    const reused = this.spare.pop();
    if (reused) return reused;
    const count = 2 * this.capacity;
    const bytes = count * 8;
    const b: Batch = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count, label: 'foxgate-profile' }),
      resolve: this.device.createBuffer({ size: bytes, usage: QUERY_RESOLVE | COPY_SRC, label: 'foxgate-profile-resolve' }),
      readback: this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST, label: 'foxgate-profile-read' }),
      names: [],
    };
    this.all.push(b);
    return b;
  }

  /** The timestamp writes of the next dispatch's pass (undefined when this batch is full). */
  writes(name: string, detail?: () => string): GPUComputePassTimestampWrites | undefined {
    this.current ??= this.batch();
    const b = this.current;
    if (b.names.length >= this.capacity) {
      this.untimed++;
      return undefined;
    }
    const i = b.names.length;
    b.names.push(this.detail && detail ? `${name} ${detail()}` : name);
    return { querySet: b.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Before the submit: resolves this command buffer's queries into its readback buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    const b = this.current;
    if (!b || b.names.length === 0) return;
    const n = 2 * b.names.length;
    encoder.resolveQuerySet(b.querySet, 0, n, b.resolve, 0);
    encoder.copyBufferToBuffer(b.resolve, 0, b.readback, 0, n * 8);
  }

  /** After the submit: maps the readback buffer once the work is done and adds the durations. */
  submitted(): void {
    const b = this.current;
    if (!b || b.names.length === 0) return;
    this.current = null;
    const n = b.names.length;
    const p = b.readback
      .mapAsync(MAP_READ, 0, n * 16)
      .then(() => {
        const t = new BigUint64Array(b.readback.getMappedRange(0, n * 16));
        for (let i = 0; i < n; i++) {
          const ns = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
          const e = this.totals.get(b.names[i]);
          if (e) {
            e.dispatches++;
            e.ns += ns;
          } else this.totals.set(b.names[i], { dispatches: 1, ns });
        }
        b.readback.unmap();
        b.names = [];
        this.spare.push(b);
      })
      .catch((e: Error) => {
        this.failure ??= e;
      });
    const q = p.finally(() => this.pending.delete(q));
    this.pending.add(q);
  }

  /** Waits for every mapped batch and sums them up; frees the query sets and buffers. */
  async finish(): Promise<DispatchProfile> {
    while (this.pending.size) await Promise.all([...this.pending]);
    for (const b of this.all) {
      b.querySet.destroy();
      b.resolve.destroy();
      b.readback.destroy();
    }
    if (this.failure) throw new FoxgateError(`webgpu profile: reading the timestamps failed (${this.failure.message})`);
    const kernels: KernelTime[] = [...this.totals]
      .map(([kernel, e]) => ({ kernel, family: kernelFamily(kernel), dispatches: e.dispatches, ms: e.ns / 1e6 }))
      .sort((a, b) => b.ms - a.ms);
    const families: Record<KernelFamily, number> = { attention: 0, matmul: 0, other: 0 };
    for (const k of kernels) families[k.family] += k.ms;
    return {
      kernels,
      families,
      totalMs: kernels.reduce((s, k) => s + k.ms, 0),
      dispatches: kernels.reduce((s, k) => s + k.dispatches, 0),
      untimed: this.untimed,
    };
  }
}

/**
 * Starts timing every dispatch of `engine` (queued work is submitted first, untimed). The device
 * needs the `timestamp-query` feature, which `initWebGPU` requests where the adapter has it.
 */
export function startProfile(engine: Engine, capacity: number, opts: ProfileOptions = {}): void {
  if (engine.profiler) throw new FoxgateError('webgpu profile: a profile is already running (stopProfile() first)');
  if (!engine.device.features.has('timestamp-query'))
    throw new FoxgateError("webgpu profile: the device has no 'timestamp-query' feature (the adapter does not offer it)");
  engine.flush();
  engine.profiler = new DispatchProfiler(engine.device, capacity, opts.detail === true);
}

/** Submits the queued work, stops timing and returns the profile once the GPU has finished. */
export async function stopProfile(engine: Engine): Promise<DispatchProfile> {
  const p = engine.profiler;
  if (!p) throw new FoxgateError('webgpu profile: no profile is running (startProfile() first)');
  engine.flush();
  engine.profiler = null;
  return p.finish();
}
