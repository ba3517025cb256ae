import { forgettingAttention, softmaxAttention } from '@foxgate/attention';
import {
  type Backend,
  concat,
  contiguous,
  type DType,
  keep,
  narrow,
  ones,
  reshape,
  type Tensor,
  tensor,
  unsqueeze,
  where,
  zeros,
} from '@foxgate/tensor';
import type { AttentionCacheHook } from '../attention-layer.js';
import { setElements, writeRows } from './write.js';

/** Cache buffers grow by at least this many positions (and double the live part). */
export const CACHE_CHUNK = 64;

/**
 * The score a masked key gets (pads of a ragged batch, entries evicted for one head): its
 * softmax weight e^(−30000 − max) is exactly 0 in float32 and float64, so masking is exact.
 */
export const MASKED_SCORE = -30000;

/** What every layer's cache shares: sizes, the masking mode and the current call's pads. */
export interface CacheShape {
  B: number;
  H: number;
  /** Head dim. */
  D: number;
  dtype: DType;
  backend: Backend;
  impl: 'fused' | 'reference';
  /**
   * Masked mode: keys carry one extra column (and queries a 1 there) whose product with the
   * query adds `MASKED_SCORE` to a masked key's score and 0 to the others'; values carry a 0
   * column. Needed for ragged batches (left pads) and per-head eviction.
   */
  masked: boolean;
  /** FoX model: the cache keeps logF. */
  fox: boolean;
  /** Read back each call's logF (the host tracks Λ for eviction). */
  trackLogF: boolean;
}

/** Per-call inputs the decoder sets before each forward. */
export interface CallState {
  /** bool `[B,n,1]`: true at pad positions of this call (prefill of a ragged batch), else null. */
  pad: Tensor | null;
  /** `[B,n,H,1]` of the dtype: the masked key column of this call's tokens (masked mode). */
  keyColumn: Tensor | null;
}

/** The KV cache of one attention layer: keys, values, logF, token-shift rows. */
export class LayerCache implements AttentionCacheHook {
  k: Tensor | null = null;
  v: Tensor | null = null;
  logF: Tensor | null = null;
  /** Allocated positions. */
  cap = 0;
  /** Absolute position of buffer row 0. */
  base = 0;
  /** First live absolute position (earlier rows are masked for every sequence and head). */
  start = 0;
  /** Positions written so far. */
  len = 0;
  /** This call's logF `[B,n,H]` (pads zeroed), for the host's Λ (when tracking). */
  lastLogF: Tensor | null = null;
  private prev: { k: Tensor | null; v: Tensor | null } = { k: null, v: null };

  constructor(
    readonly s: CacheShape,
    readonly call: CallState,
  ) {}

  get columns(): number {
    return this.s.masked ? this.s.D + 1 : this.s.D;
  }

  shiftPrev(which: 'k' | 'v'): Tensor | null {
    return this.prev[which];
  }

  shiftRaw(which: 'k' | 'v', raw: Tensor): void {
    const [B, T, h] = raw.shape;
    const last = narrow(raw, 1, T - 1, 1);
    const row = reshape(last, [B, h]);
    const copy = keep(contiguous(row));
    if (row !== copy) row.dispose();
    last.dispose();
    this.prev[which]?.dispose();
    this.prev[which] = copy;
  }

  attend(q: Tensor, k: Tensor, v: Tensor, logF: Tensor | null): Tensor {
    const { B, H, D, masked } = this.s;
    const n = q.shape[1];
    const create = { dtype: q.dtype, backend: q.backend };
    let lf = logF;
    // pads add nothing to Λ, so the real tokens' Λ is the unpadded sequence's
    if (lf && this.call.pad) lf = where(this.call.pad, 0, lf);
    let qq = q;
    let kk = k;
    let vv = v;
    if (masked) {
      qq = concat([q, ones([B, n, H, 1], create)], -1);
      kk = concat([k, this.call.keyColumn ?? zeros([B, n, H, 1], create)], -1);
      vv = concat([v, zeros([B, n, H, 1], create)], -1);
    }
    this.append(kk, vv, lf);
    const off = this.start - this.base;
    const live = this.len - this.start;
    const kView = narrow(this.k as Tensor, 1, off, live);
    const vView = narrow(this.v as Tensor, 1, off, live);
    const opts = { scale: 1 / Math.sqrt(D), impl: this.s.impl };
    const o = lf
      ? forgettingAttention(qq, kView, vView, narrow(this.logF as Tensor, 1, off, live), opts)
      : softmaxAttention(qq, kView, vView, opts);
    if (this.s.trackLogF && lf) {
      this.lastLogF?.dispose();
      this.lastLogF = keep(lf);
    }
    return masked ? narrow(o, -1, 0, D) : o;
  }

  /** Writes this call's rows, growing the buffers (live part doubled, at least one chunk more) when full. */
  private append(k: Tensor, v: Tensor, logF: Tensor | null): void {
    const n = k.shape[1];
    if (!this.k || this.len + n > this.base + this.cap) this.grow(n);
    const at = this.len - this.base;
    writeRows(this.k as Tensor, k, at);
    writeRows(this.v as Tensor, v, at);
    if (logF) writeRows(this.logF as Tensor, logF, at);
    this.len += n;
  }

  private grow(n: number): void {
    const { B, H, dtype, backend } = this.s;
    const live = this.len - this.start;
    const cap = CACHE_CHUNK * Math.ceil(Math.max(2 * live, live + n + CACHE_CHUNK) / CACHE_CHUNK);
    const create = { dtype, backend };
    const fox = this.s.fox;
    const next = {
      k: keep(zeros([B, cap, H, this.columns], create)),
      v: keep(zeros([B, cap, H, this.columns], create)),
      logF: fox ? keep(zeros([B, cap, H], create)) : null,
    };
    if (this.k && live > 0) {
      const off = this.start - this.base;
      for (const [name, old] of [
        ['k', this.k],
        ['v', this.v],
        ['logF', this.logF],
      ] as const) {
        if (!old) continue;
        const part = narrow(old, 1, off, live);
        writeRows(next[name] as Tensor, part, 0);
        part.dispose();
      }
    }
    this.k?.dispose();
    this.v?.dispose();
    this.logF?.dispose();
    Object.assign(this, next);
    this.cap = cap;
    this.base = this.start;
  }

  /** Masks the key of (b, position, h) for every later query (masked mode). */
  mask(entries: readonly (readonly [number, number, number])[]): void {
    const { H, D } = this.s;
    const C = this.columns;
    const idx: number[] = [];
    for (const [b, pos, h] of entries) {
      if (pos < this.start) continue;
      idx.push(((b * this.cap + (pos - this.base)) * H + h) * C + D);
    }
    setElements(this.k as Tensor, idx, MASKED_SCORE * Math.sqrt(D));
  }

  /** Drops the rows before `position` from attention (all of them masked already). */
  dropBefore(position: number): void {
    this.start = Math.max(this.start, Math.min(position, this.len));
  }

  /** Bytes held by this layer's buffers (allocated capacity). */
  bytes(): number {
    let b = 0;
    for (const t of [this.k, this.v, this.logF, this.prev.k, this.prev.v]) if (t) b += t.size * (t.dtype === 'float64' ? 8 : 4);
    return b;
  }

  dispose(): void {
    for (const t of [this.k, this.v, this.logF, this.prev.k, this.prev.v, this.lastLogF]) t?.dispose();
    this.k = this.v = this.logF = this.lastLogF = null;
    this.prev = { k: null, v: null };
  }
}

/** The masked key column `[B,n,H,1]` for pads: MASKED_SCORE·√D where `pad[b][t]`, else 0. */
export function keyColumnFor(pad: boolean[][], H: number, D: number, create: { dtype: DType; backend: Backend }): Tensor {
  const B = pad.length;
  const n = pad[0].length;
  const data = new Float64Array(B * n * H);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < n; t++) if (pad[b][t]) data.fill(MASKED_SCORE * Math.sqrt(D), (b * n + t) * H, (b * n + t + 1) * H);
  const flat = tensor(create.dtype === 'float64' ? data : Float32Array.from(data), [B, n, H], create);
  const out = unsqueeze(flat, -1);
  flat.dispose();
  return out;
}
