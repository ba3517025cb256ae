import type { Storage } from '../../backend.js';
import { FoxgateError } from '../../errors.js';
import { DeviceChecks } from './checks.js';
import { BufferPool } from './pool.js';
import type { DispatchProfiler } from './profiler.js';
import { type Access, type Params, PRELUDE } from './wgsl.js';

/** WebGPU flag values (fixed by the spec; the globals do not exist everywhere, e.g. in Node). */
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_READ_MODE = 0x1;

/** A tensor storage on the GPU: one pooled buffer (bool elements are stored as u32). */
export class GpuStorage implements Storage {
  freed = false;
  constructor(
    readonly buffer: GPUBuffer,
    /** Bytes the storage needs (4 per element). */
    readonly bytes: number,
  ) {}
  /** Bytes the backend holds for it (the pooled buffer's size). */
  get byteLength(): number {
    return this.buffer.size;
  }
}

/** One storage-buffer binding of a dispatch, in binding order. */
export interface Binding {
  buffer: GPUBuffer;
  access: Access;
}

/** One compute dispatch as the engine encodes it. */
export interface Dispatch {
  /** Kernel name, for error messages and labels. */
  name: string;
  /** Pipeline cache key: must determine `code()` (defaults to the code itself). */
  key?: string;
  /** Full WGSL source (without the shared prelude), called once per key. */
  code: () => string;
  bindings: Binding[];
  /** Uniform block, bound after the storage bindings (binding = bindings.length). */
  params?: Params;
  /** Grid `[x, y, z]`, each ≤ 65535 (see `foldGrid`). */
  workgroups: [number, number, number];
  /** What a profile by detail (`startProfile({ detail: true })`) adds to the name: shapes, layouts, tiles. */
  detail?: () => string;
}

export interface EngineOptions {
  debug: boolean;
  /** Dispatches per submitted command buffer. */
  batchSize?: number;
  /** Bytes of freed buffers the pool keeps at least (it keeps up to the peak live bytes if larger). */
  maxPooledBytes?: number;
}

interface PipelineEntry {
  pipeline: GPUComputePipeline;
  name: string;
  error: FoxgateError | null;
}

/** Cached bind groups before the cache is reset. */
const MAX_BIND_GROUPS = 4096;

/** Bytes of the uniform arena: one buffer holding every dispatch's parameters of a batch. */
const ARENA_BYTES = 256 * 1024;

/**
 * The execution engine: buffer pool, pipeline cache, uniform arena and command batching.
 *
 * - Every dispatch is encoded into one shared command encoder (consecutive dispatches share a
 *   compute pass) and submitted every `batchSize` dispatches, when the uniform arena is full,
 *   and before a readback; only `read`/`sync` wait for the GPU. After such a wait the GPU is
 *   idle, so the batches ramp up again: 1, 2, 4, … dispatches up to `batchSize` (a training step
 *   that starts after reading the last loss gets its first kernel running at once, not after the
 *   host has built 64 of them).
 * - Uniform parameters are packed into a CPU mirror of one arena buffer at 256-byte aligned
 *   offsets and written with one `writeBuffer` right before the batch is submitted. The queue
 *   orders that write after earlier submissions, so the arena is reused by every batch and a
 *   steady-state loop allocates no buffers at all.
 * - Errors: pipeline creation runs inside a validation error scope (a WGSL error becomes a
 *   FoxgateError naming the kernel); uncaptured errors and device loss are stored and thrown by
 *   the next op or readback, naming the last dispatched kernel. With `debug`, each dispatch is
 *   submitted on its own inside validation/out-of-memory error scopes, so reports are exact.
 */
export class Engine {
  readonly pool: BufferPool;
  private readonly staging: BufferPool;
  private readonly pipelines = new Map<string, PipelineEntry>();
  private readonly layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private readonly arena: GPUBuffer;
  private readonly mirror = new ArrayBuffer(ARENA_BYTES);
  private readonly mirrorU32 = new Uint32Array(this.mirror);
  private readonly mirrorF32 = new Float32Array(this.mirror);
  private readonly mirrorI32 = new Int32Array(this.mirror);
  private arenaUsed = 0;
  private readonly uniformAlign: number;
  /** Dispatches per submitted command buffer at most. */
  readonly batchSize: number;
  /** Dispatches of the current batch before it is submitted: ramps from 1 to `batchSize` after each wait. */
  private rampBatch = 1;
  /** Command buffers submitted so far. */
  submits = 0;
  private readonly checks = new Set<Promise<void>>();
  private error: FoxgateError | null = null;
  private stickyError: FoxgateError | null = null;
  private lastKernel = '(none)';
  destroyed = false;
  /** Live storages and their bytes. */
  storages = 0;
  bytesInUse = 0;
  /** The most bytes live at once so far (the pool's budget follows it). */
  peakBytes = 0;
  /** The most bytes live at once since `resetPeak()` (for `memoryStats()`). */
  peakSinceReset = 0;
  /** Set while a timestamp profile runs (profiler.ts); null otherwise. */
  profiler: DispatchProfiler | null = null;
  /** Dispatches encoded so far (for tests and benchmarks). */
  dispatches = 0;
  /** Device-side checks read with the next readback (`checks.ts`). */
  readonly deviceChecks = new DeviceChecks(this);

  constructor(
    readonly device: GPUDevice,
    readonly opts: EngineOptions,
  ) {
    const limits = device.limits;
    this.uniformAlign = limits.minUniformBufferOffsetAlignment;
    this.batchSize = opts.debug ? 1 : (opts.batchSize ?? 64);
    const usage = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
    this.pool = new BufferPool(
      device,
      usage,
      limits.maxBufferSize,
      opts.maxPooledBytes ?? 2 ** 31,
      'foxgate',
      (b) => this.forgetBuffer(b),
      () => this.peakBytes,
    );
    this.staging = new BufferPool(device, BufferUsage.MAP_READ | BufferUsage.COPY_DST, limits.maxBufferSize, 2 ** 28, 'foxgate-staging');
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, label: 'foxgate-uniforms' });
    const onError = (ev: Event) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.setError(`${err?.message ?? String(err)}`);
    };
    const d = device as GPUDevice & { onuncapturederror?: unknown };
    if (typeof d.addEventListener === 'function') d.addEventListener('uncapturederror', onError);
    else d.onuncapturederror = onError;
    device.lost.then((info) => {
      if (this.destroyed) return;
      this.stickyError = new FoxgateError(
        `webgpu: the device was lost (${info.reason}: ${info.message.trim()}); last kernel dispatched: '${this.lastKernel}'`,
      );
    });
  }

  private setError(message: string, kernel = this.lastKernel): void {
    this.error ??= new FoxgateError(`webgpu: kernel '${kernel}' failed: ${message.trim()}`);
  }

  /** Throws (once) a stored error; the current batch is dropped since it may be invalid. */
  checkError(): void {
    if (this.destroyed) throw new FoxgateError('webgpu: the device was destroyed (destroyWebGPU); initialise a new one');
    if (this.stickyError) throw this.stickyError;
    const e = this.error;
    if (e) {
      this.error = null;
      this.pass = null;
      this.encoder = null;
      this.pendingDispatches = 0;
      this.arenaUsed = 0;
      throw e;
    }
  }

  /** Waits for pending pipeline/debug error checks, then throws what they found. */
  async settle(): Promise<void> {
    while (this.checks.size) await Promise.all([...this.checks]);
    this.checkError();
  }

  private track(p: Promise<void>): void {
    const q = p.finally(() => this.checks.delete(q));
    this.checks.add(q);
  }

  // ---- memory -------------------------------------------------------------------------------
  alloc(bytes: number): GpuStorage {
    this.checkError();
    const max = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > max) {
      throw new FoxgateError(
        `webgpu: a tensor of ${bytes} bytes exceeds this device's maxStorageBufferBindingSize (${max} bytes); split the work or use the cpu backend`,
      );
    }
    const s = new GpuStorage(this.pool.acquire(bytes), bytes);
    this.storages++;
    this.bytesInUse += s.byteLength;
    if (this.bytesInUse > this.peakBytes) this.peakBytes = this.bytesInUse;
    if (this.bytesInUse > this.peakSinceReset) this.peakSinceReset = this.bytesInUse;
    return s;
  }

  /** Starts a new peak: `peakSinceReset` becomes the bytes live now. */
  resetPeak(): void {
    this.peakSinceReset = this.bytesInUse;
  }

  free(s: GpuStorage): void {
    if (s.freed) return;
    s.freed = true;
    this.storages--;
    this.bytesInUse -= s.byteLength;
    if (!this.destroyed) this.pool.release(s.buffer);
  }

  /** Copies host bytes into the start of `buffer` (submits pending work first: see `Dispatch`). */
  write(buffer: GPUBuffer, data: ArrayBufferView): void {
    this.checkError();
    // writeBuffer is ordered before any not-yet-submitted commands, which may still read the
    // previous contents of a recycled buffer: submit them first.
    if (this.pendingDispatches || this.encoder) this.flush();
    if (data.byteLength) this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Reads `bytes` from the start of `buffer`; the only place (with `sync`) that waits. */
  async read(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    // settle first: a failed pipeline's own error (which its cache entry keeps) wins over the
    // uncaptured error its dispatch raised on submit
    await this.settle();
    const checks = this.deviceChecks.size;
    if (bytes === 0 && checks === 0) return new ArrayBuffer(0);
    // the pending device checks' words follow the data (a mapped range starts at a multiple of 8)
    const at = Math.ceil(bytes / 8) * 8;
    const staging = this.staging.acquire(at + 4 * checks);
    this.endPass();
    if (bytes) this.commandEncoder().copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    const taken = this.deviceChecks.take(this.commandEncoder(), staging, at);
    this.flush();
    try {
      await staging.mapAsync(MAP_READ_MODE, 0, at + 4 * checks);
      this.rampBatch = 1;
    } catch (e) {
      if (this.stickyError) throw this.stickyError;
      throw new FoxgateError(
        `webgpu: reading back a result failed (${(e as Error).message}); last kernel dispatched: '${this.lastKernel}'`,
      );
    }
    const out = bytes ? staging.getMappedRange(0, bytes).slice(0) : new ArrayBuffer(0);
    const words = new Uint32Array(checks ? staging.getMappedRange(at, 4 * checks).slice(0) : new ArrayBuffer(0));
    staging.unmap();
    this.staging.release(staging);
    await this.settle();
    this.deviceChecks.verify(taken, words);
    return out;
  }

  /** Submits pending work and waits until the GPU has finished it (reading pending device checks). */
  async sync(): Promise<void> {
    if (this.deviceChecks.size) {
      await this.read(this.arena, 0);
      return;
    }
    this.checkError();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.rampBatch = 1;
    await this.settle();
  }

  // ---- pipelines ----------------------------------------------------------------------------
  private layout(bindings: readonly Binding[], hasParams: boolean): { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout } {
    const key = bindings.map((b) => (b.access === 'read' ? 'r' : 'w')).join('') + (hasParams ? 'u' : '');
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = bindings.map((b, i) => ({
        binding: i,
        visibility: 0x4, // GPUShaderStage.COMPUTE
        buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
      }));
      if (hasParams) entries.push({ binding: bindings.length, visibility: 0x4, buffer: { type: 'uniform', hasDynamicOffset: true } });
      const bgl = this.device.createBindGroupLayout({ entries, label: `foxgate-layout-${key}` });
      l = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
      this.layouts.set(key, l);
    }
    return l;
  }

  private pipeline(d: Dispatch, layout: GPUPipelineLayout, layoutKey: string): PipelineEntry {
    const key = `${layoutKey}|${d.key ?? d.code()}`;
    let entry = this.pipelines.get(key);
    if (entry) {
      if (entry.error) throw entry.error;
      return entry;
    }
    // `enable`/`requires`/`diagnostic` directives must precede every declaration
    const src = d.code();
    const header = /^(?:\s*(?:enable|requires|diagnostic)\b[^;]*;)*/.exec(src)?.[0] ?? '';
    const code = `${header}\n${PRELUDE}${src.slice(header.length)}`;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: d.name });
    const pipeline = this.device.createComputePipeline({ layout, compute: { module, entryPoint: 'main' }, label: d.name });
    const created: PipelineEntry = { pipeline, name: d.name, error: null };
    entry = created;
    this.pipelines.set(key, entry);
    this.track(
      this.device.popErrorScope().then(async (err) => {
        if (!err) return;
        let detail = err.message;
        try {
          const info = await module.getCompilationInfo();
          const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `line ${m.lineNum}: ${m.message}`);
          if (msgs.length) detail = msgs.join('; ');
        } catch {
          // keep the scope's message
        }
        created.error = new FoxgateError(`webgpu: kernel '${d.name}' is invalid WGSL or does not match its bindings: ${detail.trim()}`);
        this.error ??= created.error;
      }),
    );
    return entry;
  }

  /** Number of cached pipelines. */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // ---- dispatch -----------------------------------------------------------------------------
  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder({ label: 'foxgate-batch' });
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Encodes one dispatch (skipped when the grid is empty). */
  dispatch(d: Dispatch): void {
    this.checkError();
    const [x, y, z] = d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const hasParams = d.params !== undefined;
    const layoutKey = d.bindings.map((b) => (b.access === 'read' ? 'r' : 'w')).join('') + (hasParams ? 'u' : '');
    const layout = this.layout(d.bindings, hasParams);
    const entry = this.pipeline(d, layout.pl, layoutKey);
    let paramOffset = 0;
    let paramSize = 0;
    if (d.params) {
      paramSize = d.params.byteLength;
      if (this.arenaUsed + paramSize > ARENA_BYTES) this.flush();
      paramOffset = this.arenaUsed;
      d.params.write(this.mirrorU32, this.mirrorF32, this.mirrorI32, paramOffset / 4);
      this.arenaUsed = Math.ceil((paramOffset + paramSize) / this.uniformAlign) * this.uniformAlign;
    }
    if (this.opts.debug) {
      this.device.pushErrorScope('out-of-memory');
      this.device.pushErrorScope('validation');
    }
    const group = this.bindGroup(layoutKey, layout.bgl, d, paramSize);
    // profiling: each dispatch in its own pass, stamped at its beginning and end
    const timestampWrites = this.profiler?.writes(d.name, d.detail);
    if (timestampWrites) this.endPass();
    this.pass ??= this.commandEncoder().beginComputePass({ label: 'foxgate', timestampWrites });
    this.pass.setPipeline(entry.pipeline);
    if (d.params) this.pass.setBindGroup(0, group, [paramOffset]);
    else this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(x, y, z);
    if (timestampWrites) this.endPass();
    this.lastKernel = d.name;
    this.dispatches++;
    this.pendingDispatches++;
    if (this.opts.debug) {
      this.flush();
      const name = d.name;
      const report = (err: GPUError | null) => {
        if (err) this.setError(err.message, name);
      };
      this.track(this.device.popErrorScope().then(report));
      this.track(this.device.popErrorScope().then(report));
    } else if (this.pendingDispatches >= this.rampBatch) {
      this.flush();
      this.rampBatch = Math.min(this.batchSize, 2 * this.rampBatch);
    }
  }

  /**
   * Bind groups are cached by layout, buffers and uniform size (the uniform binding uses a
   * dynamic offset), so a loop that reuses pooled buffers creates none in steady state.
   */
  private bindGroup(layoutKey: string, bgl: GPUBindGroupLayout, d: Dispatch, paramSize: number): GPUBindGroup {
    let key = `${layoutKey}:${paramSize}`;
    for (const b of d.bindings) key += `:${this.bufferId(b.buffer)}`;
    let group = this.groups.get(key);
    if (!group) {
      const maxBind = this.device.limits.maxStorageBufferBindingSize;
      const entries: GPUBindGroupEntry[] = d.bindings.map((b, i) => ({
        binding: i,
        resource: { buffer: b.buffer, size: Math.min(b.buffer.size, maxBind - (maxBind % 16)) },
      }));
      if (d.params) entries.push({ binding: d.bindings.length, resource: { buffer: this.arena, offset: 0, size: paramSize } });
      group = this.device.createBindGroup({ layout: bgl, entries, label: d.name });
      if (this.groups.size >= MAX_BIND_GROUPS) this.groups.clear();
      this.groups.set(key, group);
    }
    return group;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.ids.get(b);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(b, id);
    }
    return id;
  }

  /** Forgets cached bind groups that use `b` (called before a buffer is destroyed). */
  forgetBuffer(b: GPUBuffer): void {
    const id = this.ids.get(b);
    if (id === undefined) return;
    const tag = `:${id}`;
    for (const k of this.groups.keys()) if (k.endsWith(tag) || k.includes(`${tag}:`)) this.groups.delete(k);
  }

  /** Records a buffer copy in the shared encoder (ordered with the dispatches). */
  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.checkError();
    if (bytes === 0) return;
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.pendingDispatches++;
  }

  /**
   * Releases the pooled (free) buffers to the device and lowers the pool's budget to the bytes
   * live now, so that a large earlier phase (say, a materialised [T,T] reference) does not keep
   * its buffers cached for the rest of the program. Queued work is submitted first.
   */
  emptyCache(): void {
    this.pool.trim();
    this.staging.trim();
    this.peakBytes = this.bytesInUse;
    this.flush();
  }

  /** Submits everything encoded so far. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.submits++;
      if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.mirror, 0, this.arenaUsed);
      this.profiler?.resolve(this.encoder);
      this.device.queue.submit([this.encoder.finish()]);
      this.profiler?.submitted();
      this.encoder = null;
      this.pendingDispatches = 0;
      this.arenaUsed = 0;
    }
    // no encoded command names them any more (submitted work may still run: destroy waits for it)
    this.pool.destroyDoomed();
    this.staging.destroyDoomed();
  }

  /** Waits for queued work, then destroys the device and drops every GPU object. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    try {
      this.flush();
      await this.device.queue.onSubmittedWorkDone();
    } catch {
      // a lost device has nothing left to wait for
    }
    this.destroyed = true;
    this.pool.clear();
    this.staging.clear();
    this.pipelines.clear();
    this.layouts.clear();
    this.groups.clear();
    this.arena.destroy();
    this.device.destroy();
  }
}
