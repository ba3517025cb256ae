/**
 * A WebAssembly SIMD micro-kernel for the blocked matmul, assembled here byte by byte (no
 * toolchain, nothing fetched). The module imports its memory (`env.mem`) and exports
 *
 *   gemm_f32(mc, nc, kc, a, b, c, ldc)   MR=4 × NR=8 tiles, f32x4 lanes
 *   gemm_f64(mc, nc, kc, a, b, c, ldc)   MR=4 × NR=4 tiles, f64x2 lanes
 *
 * Both compute `C += A·B` for a packed `A` block (mc × kc, stored as MR-row panels, k-major:
 * panel p holds `A[p·MR + i, k]` at `(p·kc + k)·MR + i`), a packed `B` block (kc × nc, NR-column
 * panels: `B[k, q·NR + j]` at `(q·kc + k)·NR + j`) and a C block of row stride `ldc`; `a`, `b`,
 * `c` and `ldc` are in bytes, `mc` is a multiple of MR, `nc` of NR, and all counts are ≥ 1.
 * Each tile keeps MR × NR/lanes accumulator vectors in locals for the whole k loop: per k it
 * loads the NR values of B as vectors, splats each of the MR values of A and does a
 * multiply-add per accumulator.
 */

export const GEMM_MR = 4;
export const GEMM_NR_F32 = 8;
export const GEMM_NR_F64 = 4;

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

// Opcodes (WebAssembly core spec 2.0, SIMD proposal numbering).
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_CONST = 0x41;
const I32_LT_S = 0x48;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_MUL = 0x6c;
const LOOP = 0x03;
const BR_IF = 0x0d;
const END = 0x0b;
const VOID = 0x40;
const SIMD = 0xfd;
const V128_LOAD = 0x00;
const V128_LOAD32_SPLAT = 0x09;
const V128_LOAD64_SPLAT = 0x0a;
const V128_STORE = 0x0b;
const F32X4_ADD = 0xe4;
const F32X4_MUL = 0xe6;
const F64X2_ADD = 0xf0;
const F64X2_MUL = 0xf2;
const T_I32 = 0x7f;
const T_V128 = 0x7b;

/** The body (locals + code) of one gemm function. */
function gemmBody(f64: boolean): number[] {
  const es = f64 ? 8 : 4;
  const lanes = 16 / es;
  const mr = GEMM_MR;
  const nr = f64 ? GEMM_NR_F64 : GEMM_NR_F32;
  const nv = nr / lanes;
  // Parameters 0..6: mc, nc, kc, a, b, c, ldc. i32 locals 7..13, v128 locals from 14.
  const MC = 0;
  const NC = 1;
  const KC = 2;
  const A = 3;
  const B = 4;
  const C = 5;
  const LDC = 6;
  const J = 7;
  const I = 8;
  const PA = 9;
  const PB = 10;
  const PC = 11;
  const K = 12;
  const ROW = 13;
  const ACC = 14;
  const BV = ACC + mr * nv;
  const AV = BV + nv;
  const vectors = mr * nv + nv + 1;

  const code: number[] = [];
  const emit = (...xs: number[]) => {
    for (const x of xs) code.push(x);
  };
  const get = (l: number) => emit(LOCAL_GET, ...uleb(l));
  const set = (l: number) => emit(LOCAL_SET, ...uleb(l));
  const tee = (l: number) => emit(LOCAL_TEE, ...uleb(l));
  const i32 = (v: number) => emit(I32_CONST, ...sleb(v));
  const simd = (op: number) => emit(SIMD, ...uleb(op));
  const memarg = (alignLog2: number, offset: number) => emit(alignLog2, ...uleb(offset));
  const vadd = () => simd(f64 ? F64X2_ADD : F32X4_ADD);
  const vmul = () => simd(f64 ? F64X2_MUL : F32X4_MUL);

  i32(0);
  set(J);
  emit(LOOP, VOID); // for j in 0..nc step nr
  i32(0);
  set(I);
  emit(LOOP, VOID); // for i in 0..mc step mr
  // pa = a + i·kc·es; pb = b + j·kc·es; pc = c + i·ldc + j·es
  get(A);
  get(I);
  get(KC);
  emit(I32_MUL);
  i32(es);
  emit(I32_MUL, I32_ADD);
  set(PA);
  get(B);
  get(J);
  get(KC);
  emit(I32_MUL);
  i32(es);
  emit(I32_MUL, I32_ADD);
  set(PB);
  get(C);
  get(I);
  get(LDC);
  emit(I32_MUL, I32_ADD);
  get(J);
  i32(es);
  emit(I32_MUL, I32_ADD);
  set(PC);
  // Load the C tile into the accumulators.
  get(PC);
  set(ROW);
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) {
      get(ROW);
      simd(V128_LOAD);
      memarg(4, 16 * v);
      set(ACC + r * nv + v);
    }
    if (r < mr - 1) {
      get(ROW);
      get(LDC);
      emit(I32_ADD);
      set(ROW);
    }
  }
  get(KC);
  set(K);
  emit(LOOP, VOID); // for k in kc..1
  for (let v = 0; v < nv; v++) {
    get(PB);
    simd(V128_LOAD);
    memarg(4, 16 * v);
    set(BV + v);
  }
  for (let r = 0; r < mr; r++) {
    get(PA);
    simd(f64 ? V128_LOAD64_SPLAT : V128_LOAD32_SPLAT);
    memarg(f64 ? 3 : 2, es * r);
    set(AV);
    for (let v = 0; v < nv; v++) {
      get(ACC + r * nv + v);
      get(AV);
      get(BV + v);
      vmul();
      vadd();
      set(ACC + r * nv + v);
    }
  }
  get(PA);
  i32(mr * es);
  emit(I32_ADD);
  set(PA);
  get(PB);
  i32(nr * es);
  emit(I32_ADD);
  set(PB);
  get(K);
  i32(1);
  emit(I32_SUB);
  tee(K);
  emit(BR_IF, 0);
  emit(END);
  // Store the accumulators back.
  get(PC);
  set(ROW);
  for (let r = 0; r < mr; r++) {
    for (let v = 0; v < nv; v++) {
      get(ROW);
      get(ACC + r * nv + v);
      simd(V128_STORE);
      memarg(4, 16 * v);
    }
    if (r < mr - 1) {
      get(ROW);
      get(LDC);
      emit(I32_ADD);
      set(ROW);
    }
  }
  get(I);
  i32(mr);
  emit(I32_ADD);
  tee(I);
  get(MC);
  emit(I32_LT_S, BR_IF, 0);
  emit(END);
  get(J);
  i32(nr);
  emit(I32_ADD);
  tee(J);
  get(NC);
  emit(I32_LT_S, BR_IF, 0);
  emit(END);
  emit(END);
  const locals = [...uleb(2), ...uleb(7), T_I32, ...uleb(vectors), T_V128];
  const body = [...locals, ...code];
  return [...uleb(body.length), ...body];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function name(s: string): number[] {
  const bytes = [...s].map((ch) => ch.charCodeAt(0));
  return [...uleb(bytes.length), ...bytes];
}

/** The module's bytes. */
export function gemmModuleBytes(): Uint8Array<ArrayBuffer> {
  const funcType = [0x60, ...uleb(7), ...new Array<number>(7).fill(T_I32), ...uleb(0)];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [...uleb(1), ...funcType]),
    ...section(2, [...uleb(1), ...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]),
    ...section(3, [...uleb(2), 0, 0]),
    ...section(7, [...uleb(2), ...name('gemm_f32'), 0x00, ...uleb(0), ...name('gemm_f64'), 0x00, ...uleb(1)]),
    ...section(10, [...uleb(2), ...gemmBody(false), ...gemmBody(true)]),
  ];
  return new Uint8Array(bytes);
}

export type WasmGemm = (mc: number, nc: number, kc: number, a: number, b: number, c: number, ldc: number) => void;

export interface WasmGemmInstance {
  memory: WebAssembly.Memory;
  f32: WasmGemm;
  f64: WasmGemm;
}

/**
 * Compiles the module with a memory of `bytes` bytes, or returns null where WebAssembly SIMD
 * is unavailable (old engines, pages whose CSP forbids compiling WebAssembly).
 */
export function createWasmGemm(bytes: number): WasmGemmInstance | null {
  try {
    if (typeof WebAssembly !== 'object') return null;
    const code = gemmModuleBytes();
    if (!WebAssembly.validate(code)) return null;
    const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(code), { env: { mem: memory } });
    const ex = instance.exports as unknown as { gemm_f32: WasmGemm; gemm_f64: WasmGemm };
    return { memory, f32: ex.gemm_f32, f64: ex.gemm_f64 };
  } catch {
    return null;
  }
}
