import { type SparsekAttentionOptions, type SparsekGate, sparsekAttention } from '@foxgate/attention';
import { PrefixSelector } from '@foxgate/attention/dev';
import {
  add,
  type Backend,
  concat,
  contiguous,
  type DType,
  fail,
  keep,
  matmul,
  mul,
  narrow,
  reshape,
  softmax,
  type Tensor,
  tensor,
  transpose,
  zeros,
} from '@foxgate/tensor';
import type { AttentionCacheHook } from '../attention-layer.js';
import { copyRows, writeRows } from './write.js';

const OP = 'generate';

/** A tensor of the cache's own over `t`'s storage (a view: the caller may dispose `t`). */
const own = (t: Tensor): Tensor => keep(contiguous(t));

/** What the SPARSEK caches of one decoder share. */
export interface SparsekCacheShape {
  /** Sequences. */
  B: number;
  H: number;
  /** Head dim. */
  D: number;
  dtype: DType;
  backend: Backend;
  /** The layer's `sparsek_k`, `sparsek_window`, `sparsek_gate`. */
  k: number;
  window: number;
  gate: SparsekGate;
}

/**
 * One (sequence, head) of the cache: the prefix selector and the slots of the entries it keeps.
 * Window position p lives in slot `winSlot[p % window]`; the candidates (positions older than the
 * window that the threshold has not evicted: the support of the current query) in `candSlot`,
 * in the selector's order.
 */
class HeadState {
  readonly sel: PrefixSelector;
  readonly winSlot: Int32Array;
  candPos: number[] = [];
  candSlot: number[] = [];
  free: number[] = [];
  /** Slots handed out so far: slot indices are < next. */
  next = 0;

  constructor(ring: Float64Array, at: (e: number) => number, k: number, window: number) {
    this.sel = new PrefixSelector(ring, at, k, 2 * Math.ceil(k) + 8);
    this.winSlot = new Int32Array(Math.max(window, 1)).fill(-1);
  }

  alloc(): number {
    return this.free.length ? (this.free.pop() as number) : this.next++;
  }

  /** Entries held (window + candidates). */
  get live(): number {
    return this.next - this.free.length;
  }

  /** Adds prefix entry `e` (held in `slot`, or −1 when not stored yet) and projects; evicted entries free their slots. */
  join(e: number, slot: number): void {
    this.candPos.push(e);
    this.candSlot.push(slot);
    this.sel.step(e);
    // the selector keeps the survivors in order: its active set is a subsequence of candPos
    const { active, size } = this.sel;
    let w = 0;
    for (let j = 0; j < this.candPos.length; j++) {
      if (w < size && active[w] === this.candPos[j]) {
        this.candPos[w] = this.candPos[j];
        this.candSlot[w] = this.candSlot[j];
        w++;
      } else if (this.candSlot[j] >= 0) this.free.push(this.candSlot[j]);
    }
    if (w !== size) fail(OP, `internal: the SPARSEK cache lost track of the selector (${w} of ${size} entries)`);
    this.candPos.length = w;
    this.candSlot.length = w;
  }
}

/**
 * The bounded decoding cache of one SPARSEK layer. Per (sequence, head) it holds the keys and
 * values of the last `window` positions and of the candidates older than the window whose score
 * is still above the threshold; the scores of those candidates live in the host-side
 * `PrefixSelector` (the same incremental active-set projection as the fused CPU kernel). At each
 * new position t, entry t − window leaves the window and joins the candidates, τ_t is the
 * threshold of the prefix projection (budget k), and entries with u ≤ τ_t are evicted for good
 * (τ never decreases, so they can never be selected again). The new query attends to the window
 * and the selected entries with the gates of `sparsekAttention`.
 *
 * Storage: keys and values `[B·H, cap, D]` in slots (freed slots are reused), so each head holds
 * window + |support| entries; `cap` is the largest count any head has needed. The host reads the
 * H scores of each layer and sequence per step (after the step when window ≥ 1; before the layer
 * when window = 0, where the new entry joins at once) and uploads the gates `[B·H, cap]`.
 */
export class SparsekLayerCache implements AttentionCacheHook {
  k: Tensor | null = null;
  v: Tensor | null = null;
  /** Slots per (sequence, head). */
  cap = 0;
  /** Tokens per sequence so far (the next token's absolute position). */
  readonly len: number[];
  private readonly ring: Float64Array;
  private readonly R: number;
  private readonly heads: HeadState[];
  /** The sequence a prefill call runs (one prompt at a time), else null. */
  private prefillOf: number | null = null;
  private pending: ({ k: Tensor; v: Tensor; u: Tensor } | null)[];
  /** This step's scores `[B,1,H]` (read after the step when window ≥ 1). */
  private lastU: Tensor | null = null;
  /** Scores of the current step already pushed (window = 0). */
  private pushed = false;
  private prev: { k: Tensor | null; v: Tensor | null } = { k: null, v: null };
  private prevRows: { k: (Tensor | null)[]; v: (Tensor | null)[] };

  constructor(readonly s: SparsekCacheShape) {
    const { B, H, window, k } = s;
    this.len = new Array<number>(B).fill(0);
    this.R = window + 1;
    this.ring = new Float64Array(this.R * B * H);
    this.heads = Array.from({ length: B * H }, (_, bh) => {
      const b = Math.floor(bh / H);
      const h = bh % H;
      return new HeadState(this.ring, (e) => ((e % this.R) * B + b) * H + h, k, window);
    });
    this.pending = new Array(B).fill(null);
    this.prevRows = { k: new Array(B).fill(null), v: new Array(B).fill(null) };
  }

  /** The next forward runs the prompt of sequence `b` alone (`[1,T]`). */
  beginPrefill(b: number): void {
    this.prefillOf = b;
  }

  shiftPrev(which: 'k' | 'v'): Tensor | null {
    return this.prefillOf !== null ? null : this.prev[which];
  }

  shiftRaw(which: 'k' | 'v', raw: Tensor): void {
    const [B, T, h] = raw.shape;
    const row = keep(contiguous(reshape(narrow(raw, 1, T - 1, 1), [B, h])));
    if (this.prefillOf !== null) {
      this.prevRows[which][this.prefillOf]?.dispose();
      this.prevRows[which][this.prefillOf] = row;
    } else {
      this.prev[which]?.dispose();
      this.prev[which] = row;
    }
  }

  attend(): Tensor {
    return fail(OP, 'internal: a SPARSEK cache only serves SPARSEK layers (attendSparsek)');
  }

  attendSparsek(q: Tensor, k: Tensor, v: Tensor, u: Tensor, opts: SparsekAttentionOptions): Tensor {
    const s = this.s;
    if (opts.k !== s.k || opts.window !== s.window || (opts.gate ?? 'kv') !== s.gate) {
      fail(OP, `internal: the layer's SPARSEK options (k ${opts.k}, window ${opts.window}) differ from its cache's`);
    }
    if (this.prefillOf !== null) {
      // the prompt: the full kernel; its keys, values and scores fill the cache afterwards
      const o = sparsekAttention(q, k, v, u, opts);
      this.pending[this.prefillOf] = { k: own(k), v: own(v), u: own(u) };
      return o;
    }
    if (q.shape[1] !== 1) fail(OP, `internal: a SPARSEK decode step takes one token per sequence, got ${q.shape[1]}`);
    const { B, H, D, window: W } = s;
    const writes: number[] = [];
    for (let b = 0; b < B; b++) {
      const t = this.len[b];
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        const hs = this.heads[bh];
        const e = t - W;
        if (e >= 0) {
          if (W === 0 && !this.pushed) fail(OP, 'internal: window 0 needs the scores of the step before the layer (pushScores)');
          hs.join(e, W > 0 ? hs.winSlot[e % W] : -1);
        }
        if (W > 0) {
          const slot = hs.alloc();
          hs.winSlot[t % W] = slot;
          writes.push(bh, slot);
        } else {
          const a = hs.candPos.length - 1;
          if (a >= 0 && hs.candPos[a] === t) {
            hs.candSlot[a] = hs.alloc();
            writes.push(bh, hs.candSlot[a]);
          }
        }
      }
    }
    this.reserve();
    const cap = this.cap;
    const dst: number[] = [];
    const src: number[] = [];
    for (let i = 0; i < writes.length; i += 2) {
      dst.push(writes[i] * cap + writes[i + 1]);
      src.push(writes[i]); // k, v [B,1,H,D]: row b·H + h
    }
    copyRows(this.k as Tensor, dst, k, src, D);
    copyRows(this.v as Tensor, dst, v, src, D);
    if (W > 0) {
      this.lastU?.dispose();
      this.lastU = own(u);
    }
    return this.attendStep(q);
  }

  /** Attention of the step's queries `[B,1,H,D]` over the held slots with their gates. */
  private attendStep(q: Tensor): Tensor {
    const { B, H, D, window: W, gate, dtype, backend } = this.s;
    const cap = this.cap;
    const g = new Float64Array(B * H * cap);
    const bias = new Float64Array(B * H * cap).fill(Number.NEGATIVE_INFINITY);
    for (let b = 0; b < B; b++) {
      const t = this.len[b];
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        const hs = this.heads[bh];
        for (let p = Math.max(0, t - W + 1); p <= t && W > 0; p++) {
          const slot = hs.winSlot[p % W];
          g[bh * cap + slot] = 1;
          bias[bh * cap + slot] = 0;
        }
        for (let a = 0; a < hs.candSlot.length; a++) {
          const m = hs.sel.gateAt(a);
          const at = bh * cap + hs.candSlot[a];
          g[at] = m;
          bias[at] = gate === 'logit' ? Math.log(m) : 0;
        }
      }
    }
    const create = { dtype, backend };
    const cast = (x: Float64Array) => (dtype === 'float64' ? x : Float32Array.from(x));
    const G = tensor(cast(g), [B * H, 1, cap], create);
    const Bi = tensor(cast(bias), [B * H, 1, cap], create);
    const q3 = reshape(q, [B * H, 1, D]);
    let sc = mul(matmul(q3, transpose(this.k as Tensor)), 1 / Math.sqrt(D)); // [B·H, 1, cap]
    if (gate === 'kv') sc = mul(sc, G);
    const p = softmax(add(sc, Bi), -1);
    const o = matmul(gate === 'logit' ? p : mul(p, G), this.v as Tensor); // [B·H, 1, D]
    return reshape(o, [B, 1, H, D]);
  }

  /** Window 0: this step's scores `[B·H]` (row-major `[B,1,H]`) before the layer runs. */
  pushScores(u: ArrayLike<number>): void {
    const { B, H } = this.s;
    for (let b = 0; b < B; b++) {
      const r = this.len[b] % this.R;
      for (let h = 0; h < H; h++) this.ring[(r * B + b) * H + h] = u[b * H + h];
    }
    this.pushed = true;
  }

  /** Ends a step: stores its scores (window ≥ 1) and advances every sequence by one token. */
  async commit(): Promise<void> {
    if (this.lastU) {
      const u = await this.lastU.data();
      this.lastU.dispose();
      this.lastU = null;
      this.pushScores(u);
    }
    for (let b = 0; b < this.s.B; b++) this.len[b]++;
    this.pushed = false;
  }

  /**
   * Ends the prefill: reads each prompt's scores, replays the prefix projection over them (the
   * state after the prompt's last query), and copies the held keys and values into slots.
   */
  async finishPrefill(): Promise<void> {
    const { B, H, D, window: W } = this.s;
    this.prefillOf = null;
    const us = await Promise.all(this.pending.map((p) => (p ? p.u.data() : Promise.resolve(null))));
    const copies: { b: number; dst: number[]; src: number[] }[] = [];
    for (let b = 0; b < B; b++) {
      const u = us[b];
      const pend = this.pending[b];
      if (!u || !pend) fail(OP, `internal: no prefill of sequence ${b}`);
      const T = pend.u.shape[1];
      const pairs: number[] = [];
      for (let h = 0; h < H; h++) {
        const bh = b * H + h;
        const hs = this.heads[bh];
        for (let i = 0; i < T; i++) {
          this.ring[((i % this.R) * B + b) * H + h] = u[i * H + h];
          if (i - W >= 0) hs.join(i - W, -1);
        }
        for (let p = Math.max(0, T - W); p < T; p++) {
          const slot = hs.alloc();
          hs.winSlot[p % W] = slot;
          pairs.push(bh, slot, p * H + h);
        }
        for (let a = 0; a < hs.candPos.length; a++) {
          hs.candSlot[a] = hs.alloc();
          pairs.push(bh, hs.candSlot[a], hs.candPos[a] * H + h);
        }
      }
      this.len[b] = T;
      copies.push({ b, dst: pairs, src: [] });
    }
    this.reserve(this.s.window + Math.ceil(this.s.k));
    for (const c of copies) {
      const pend = this.pending[c.b] as { k: Tensor; v: Tensor; u: Tensor };
      const dst: number[] = [];
      const src: number[] = [];
      for (let i = 0; i < c.dst.length; i += 3) {
        dst.push(c.dst[i] * this.cap + c.dst[i + 1]);
        src.push(c.dst[i + 2]);
      }
      copyRows(this.k as Tensor, dst, pend.k, src, D);
      copyRows(this.v as Tensor, dst, pend.v, src, D);
    }
    for (const p of this.pending) if (p) for (const t of [p.k, p.v, p.u]) t.dispose();
    this.pending.fill(null);
    for (const which of ['k', 'v'] as const) {
      const rows = this.prevRows[which];
      if (rows.every((r) => r)) {
        this.prev[which] = keep(concat(rows as Tensor[], 0));
        for (const r of rows) r?.dispose();
      }
      rows.fill(null);
    }
  }

  /** Grows the slot buffers (to 1.25× the need, at least `atLeast`) when a head needs more slots than they hold. */
  private reserve(atLeast = 0): void {
    let need = atLeast;
    for (const hs of this.heads) need = Math.max(need, hs.next);
    if (this.k && need <= this.cap) return;
    const { B, H, D, dtype, backend } = this.s;
    const cap = this.k ? Math.max(need, Math.ceil(1.25 * this.cap)) : Math.max(need, 1);
    const create = { dtype, backend };
    const k = keep(zeros([B * H, cap, D], create));
    const v = keep(zeros([B * H, cap, D], create));
    if (this.k && this.v) {
      writeRows(k, this.k, 0);
      writeRows(v, this.v, 0);
      this.k.dispose();
      this.v.dispose();
    }
    this.k = k;
    this.v = v;
    this.cap = cap;
  }

  /** Entries held per head (summed over the sequences), and of those the selected older ones (the support). */
  counts(): { kept: number[]; selected: number[] } {
    const { B, H } = this.s;
    const kept = new Array<number>(H).fill(0);
    const selected = new Array<number>(H).fill(0);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const hs = this.heads[b * H + h];
        kept[h] += hs.live;
        selected[h] += hs.candPos.length;
      }
    return { kept, selected };
  }

  /** Per (sequence, head): entries held and the support size (for tests and stats). */
  headCounts(b: number, h: number): { kept: number; selected: number } {
    const hs = this.heads[b * this.s.H + h];
    return { kept: hs.live, selected: hs.candPos.length };
  }

  /** Bytes of the slot buffers (allocated) and the token-shift rows. */
  bytes(): number {
    let n = 0;
    for (const t of [this.k, this.v, this.prev.k, this.prev.v]) if (t) n += t.size * (t.dtype === 'float64' ? 8 : 4);
    return n;
  }

  dispose(): void {
    for (const t of [this.k, this.v, this.lastU, this.prev.k, this.prev.v]) t?.dispose();
    for (const p of this.pending) if (p) for (const t of [p.k, p.v, p.u]) t.dispose();
    for (const rows of [this.prevRows.k, this.prevRows.v]) for (const r of rows) r?.dispose();
    this.k = this.v = this.lastU = null;
    this.prev = { k: null, v: null };
    this.pending.fill(null);
  }
}
