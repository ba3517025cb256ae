/**
 * Size-bucketed reuse of GPU buffers. Requests are rounded up to a bucket (powers of two split
 * into quarters above 4 KiB: 4, 5, 6, 7 · 2^k, so at most 25% is wasted; 256-byte steps below),
 * and freed buffers wait in a per-bucket free list for the next request of that bucket. Reusing a
 * buffer right after freeing it is safe: the queue orders every later use after earlier ones.
 * Beyond its budget (`maxPooledBytes` or twice the peak live bytes, the larger), freed buffers are destroyed instead of kept — but only once the
 * commands encoded so far are submitted (`destroyDoomed`, called by the engine after each
 * submit): commands still in the shared encoder may use the buffer, and a submit that names a
 * destroyed buffer is a validation error.
 */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Freed buffers beyond the pool's budget, destroyed after the next submit. */
  private doomed: GPUBuffer[] = [];
  /** Let the budget follow the peak live bytes (tests switch it off to force destruction). */
  followPeak = true;
  /** Bytes and buffers waiting in the pool. */
  pooledBytes = 0;
  pooledBuffers = 0;
  /** Buffers alive on the device (pooled or in use), and their bytes. */
  deviceBuffers = 0;
  deviceBytes = 0;
  /** Buffers created in total (a steady-state loop keeps this flat). */
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly maxBufferSize: number,
    /** Bytes of freed buffers kept for reuse (beyond: destroyed after the next submit). */
    public maxPooledBytes: number,
    private readonly label: string,
    /** Called before a buffer is destroyed (drops cached bind groups that use it). */
    private readonly onDestroy: (b: GPUBuffer) => void = () => {},
    /**
     * The most bytes the program has held live at once: the pool keeps up to twice that much (or
     * `maxPooledBytes`, whichever is larger), so a loop whose working set exceeds the fixed
     * budget does not create and destroy its largest buffers every iteration (allocating a
     * 1 GiB buffer costs tens of milliseconds). Twice: a loop's buffers fall into size buckets,
     * and the buckets its steps use over time can add up to more than its peak live bytes (a
     * 125M-parameter training step on an H200 created ≈ 240 buffers every step with a budget of
     * one peak). Device memory stays ≤ live + 2 · peak; in a repeating loop it is the loop's
     * working set.
     */
    private readonly peakBytes: () => number = () => 0,
  ) {}

  /** The bucket (actual buffer size in bytes) that serves a request of `bytes`. */
  bucket(bytes: number): number {
    const b = Math.max(bytes, 16);
    let size: number;
    if (b <= 4096) size = Math.ceil(b / 256) * 256;
    else {
      const k = 2 ** Math.floor(Math.log2(b));
      const quarter = k / 4;
      size = Math.ceil(b / quarter) * quarter;
    }
    return Math.min(size, Math.max(this.maxBufferSize - (this.maxBufferSize % 16), b));
  }

  acquire(bytes: number): GPUBuffer {
    const size = this.bucket(bytes);
    const list = this.free.get(size);
    const hit = list?.pop();
    if (hit) {
      this.pooledBytes -= size;
      this.pooledBuffers--;
      return hit;
    }
    const buf = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}:${size}` });
    this.deviceBuffers++;
    this.deviceBytes += size;
    this.created++;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = buf.size;
    if (this.pooledBytes + size > Math.max(this.maxPooledBytes, this.followPeak ? 2 * this.peakBytes() : 0)) {
      this.onDestroy(buf);
      this.doomed.push(buf);
      return;
    }
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(buf);
    this.pooledBytes += size;
    this.pooledBuffers++;
  }

  /** Destroys the buffers released beyond the budget; call once their commands are submitted. */
  destroyDoomed(): void {
    for (const b of this.doomed) {
      this.deviceBytes -= b.size;
      b.destroy();
    }
    this.deviceBuffers -= this.doomed.length;
    this.doomed = [];
  }

  /**
   * Hands every pooled buffer to the doomed list (destroyed after the next submit, see
   * `destroyDoomed`), so that device memory drops to the live buffers.
   */
  trim(): void {
    for (const list of this.free.values())
      for (const b of list) {
        this.onDestroy(b);
        this.doomed.push(b);
      }
    this.free.clear();
    this.pooledBytes = 0;
    this.pooledBuffers = 0;
  }

  /** Destroys every pooled buffer (and the doomed ones) now. */
  clear(): void {
    this.trim();
    this.destroyDoomed();
  }
}
