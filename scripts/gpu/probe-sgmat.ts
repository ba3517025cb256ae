/*
 * Subgroup-matrix probes on a hardware GPU: `node probe-sgmat.mjs [OUTDIR]` (bundled by
 * scripts/gpu/build.sh). One subgroup computes C = A·Bᵀ (16×16 outputs, K = 16 or 64) with the
 * operations the f16 attention kernel uses, one property varied at a time, against the product
 * of the same f16-rounded operands in float64:
 * - how a product starts: `subgroupMatrixMultiply<f32>(l, r)` or a zeroed accumulator and
 *   `subgroupMatrixMultiplyAccumulate` (the only form the 'high' matmul uses);
 * - operand scale (1, or 2^14 as the kernels' power-of-two scaling makes them);
 * - row strides of the staged operands (halves) and of the f32 result tile in workgroup memory;
 * - `hold`: the left matrices loaded once before a loop of 3 rounds that re-stage B (barriers
 *   between), as the attention kernel holds Q's.
 * Error = max |got − want| / max |want|; a row passes at ≤ 2e-3 (f32 accumulation of f16 products).
 * Rows go to OUTDIR/probe-sgmat.json.
 */
import { writeFileSync } from 'node:fs';
import { initWebGPU } from '../../packages/tensor/src/index.js';

interface Probe {
  init: 'mul' | 'mma';
  scale: number;
  K: number;
  /** staged row stride of A and B (halves) */
  ab: number;
  /** result tile row stride (floats) */
  cs: number;
  hold: boolean;
  /** left matrices as `var`s declared first and assigned later (as the attention kernel's Q) */
  varAssign?: boolean;
  /** subgroups per workgroup, each owning 16 rows of A (64 rows with 4) */
  sg?: number;
  /** a used `var<workgroup> flag: u32` declared before the f16 arrays (as the first attention kernels had) */
  flag?: boolean;
}

function probeWGSL(p: Probe): string {
  const KD = p.K / 16;
  const rounds = p.hold ? 3 : 1;
  const SG = p.sg ?? 1;
  const MR = 16 * SG;
  const lines: string[] = [];
  lines.push('enable f16;\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, subgroup_uniformity);');
  lines.push('@group(0) @binding(0) var<storage, read> a: array<f32>;');
  lines.push('@group(0) @binding(1) var<storage, read> b: array<f32>;');
  lines.push('@group(0) @binding(2) var<storage, read_write> c: array<f32>;');
  if (p.flag) lines.push('var<workgroup> flag: u32;');
  lines.push(`var<workgroup> As: array<f16, ${MR * p.ab}>;`);
  lines.push(`var<workgroup> Bs: array<f16, ${16 * p.ab}>;`);
  lines.push(`var<workgroup> Cs: array<f32, ${MR * p.cs}>;`);
  lines.push(
    `@compute @workgroup_size(${32 * SG}) fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32) {`,
  );
  lines.push('  let sg = sgid;');
  if (p.flag) lines.push('  if (lid == 0u) { flag = 1u; }');
  lines.push(`  let sc = ${p.scale.toFixed(1)};`);
  lines.push(`  for (var i = lid; i < ${MR * p.K}u; i += ${32 * SG}u) { As[(i / ${p.K}u) * ${p.ab}u + i % ${p.K}u] = f16(a[i] * sc); }`);
  if (p.varAssign) for (let kd = 0; kd < KD; kd++) lines.push(`  var l${kd} = subgroup_matrix_left<f16, 16, 16>();`);
  lines.push('  workgroupBarrier();');
  for (let kd = 0; kd < KD; kd++)
    lines.push(
      `  ${p.varAssign ? '' : 'var '}l${kd} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&As, sg * ${16 * p.ab}u + ${16 * kd}u, ${p.ab}u);`,
    );
  lines.push('  var acc: subgroup_matrix_result<f32, 16, 16>;');
  lines.push(`  for (var round = 0u; round < ${rounds}u; round++) {`);
  lines.push('    workgroupBarrier();');
  // round r stages B scaled by (r + 1); the last round's product is the one stored (× 1/rounds)
  lines.push(
    `    for (var i = lid; i < ${16 * p.K}u; i += ${32 * SG}u) { Bs[(i / ${p.K}u) * ${p.ab}u + i % ${p.K}u] = f16(b[i] * sc * f32(round + 1u) / ${rounds}.0); }`,
  );
  if (p.hold) lines.push(`    for (var i = lid; i < ${MR * p.ab}u; i += ${32 * SG}u) { As[i] = f16(0.0); }`);
  lines.push('    workgroupBarrier();');
  for (let kd = 0; kd < KD; kd++) {
    lines.push(`    let r${kd} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&Bs, ${16 * kd}u, ${p.ab}u);`);
    if (kd === 0)
      lines.push(
        p.init === 'mul'
          ? '    acc = subgroupMatrixMultiply<f32>(l0, r0);'
          : '    acc = subgroup_matrix_result<f32, 16, 16>();\n    acc = subgroupMatrixMultiplyAccumulate(l0, r0, acc);',
      );
    else lines.push(`    acc = subgroupMatrixMultiplyAccumulate(l${kd}, r${kd}, acc);`);
  }
  lines.push('  }');
  lines.push(`  subgroupMatrixStore<row_major>(&Cs, sg * ${16 * p.cs}u, acc, ${p.cs}u);`);
  lines.push('  workgroupBarrier();');
  lines.push(
    `  for (var e = lid; e < ${MR * 16}u; e += ${32 * SG}u) { c[e] = Cs[(e / 16u) * ${p.cs}u + e % 16u] / (sc * sc)${p.flag ? ' * f32(flag)' : ''}; }`,
  );
  lines.push('}');
  return lines.join('\n');
}

/** Round to f16: 11 significant bits, subnormals at 2^-24 (operands here stay far below 65504). */
const f16r = (v: number) => {
  if (v === 0) return 0;
  const q = 2 ** Math.max(Math.floor(Math.log2(Math.abs(v))) - 10, -24);
  return Math.round(v / q) * q;
};

async function main(): Promise<void> {
  const outDir = process.argv[2];
  const g = await initWebGPU({ precision: 'high' });
  const dev = g.device;
  const rows: Record<string, unknown>[] = [];
  const emit = (r: Record<string, unknown>) => {
    rows.push(r);
    console.log(
      `  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name} err ${typeof r.err === 'number' ? r.err.toExponential(2) : r.err}${r.msg ? ` ${r.msg}` : ''}`,
    );
  };
  console.log(`adapter: ${g.info.description} tensorCores ${g.tensorCores}`);
  if (!g.tensorCores) {
    await g.destroy();
    return;
  }
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const probes: Probe[] = [];
  for (const init of ['mul', 'mma'] as const)
    for (const scale of [1, 16384])
      for (const K of [16, 64])
        for (const [ab, cs] of [
          [K + 8, 16],
          [K + 8, 20],
          [K + 8, 36],
          [K, 16],
        ])
          probes.push({ init, scale, K, ab, cs, hold: false });
  for (const init of ['mul', 'mma'] as const) probes.push({ init, scale: 16384, K: 64, ab: 72, cs: 20, hold: true });
  // closer to the attention kernel: 4 subgroups, Q-like left matrices declared first and assigned later
  for (const sg of [1, 4])
    for (const varAssign of [false, true])
      for (const hold of [false, true]) probes.push({ init: 'mma', scale: 16384, K: 64, ab: 72, cs: 20, hold, varAssign, sg });
  // a 4-byte workgroup scalar besides the f16 arrays: whether the driver's layout then misaligns them
  for (const sg of [1, 4]) probes.push({ init: 'mma', scale: 16384, K: 64, ab: 72, cs: 20, hold: false, flag: true, sg });
  for (const p of probes) {
    const SG = p.sg ?? 1;
    const MR = 16 * SG;
    const name = `init ${p.init} scale ${p.scale} K ${p.K} stride ${p.ab} result stride ${p.cs}${p.hold ? ' hold' : ''}${p.varAssign ? ' var-assign' : ''}${SG > 1 ? ` sg ${SG}` : ''}${p.flag ? ' u32 flag' : ''}`;
    try {
      const A = Float32Array.from({ length: MR * p.K }, () => rnd());
      const B = Float32Array.from({ length: 16 * p.K }, () => rnd());
      const want = new Float64Array(MR * 16);
      for (let m = 0; m < MR; m++)
        for (let n = 0; n < 16; n++) {
          let s = 0;
          for (let k = 0; k < p.K; k++) s += (f16r(A[m * p.K + k] * p.scale) * f16r(B[n * p.K + k] * p.scale)) / (p.scale * p.scale);
          want[m * 16 + n] = s;
        }
      const buf = (data: Float32Array | null, bytes: number, usage: number) => {
        const x = dev.createBuffer({ size: bytes, usage, mappedAtCreation: data !== null });
        if (data) {
          new Float32Array(x.getMappedRange()).set(data);
          x.unmap();
        }
        return x;
      };
      const ba = buf(A, A.byteLength, 0x80);
      const bb = buf(B, B.byteLength, 0x80);
      const bc = buf(null, MR * 64, 0x80 | 0x04);
      const rd = buf(null, MR * 64, 0x01 | 0x08);
      dev.pushErrorScope('validation');
      const module = dev.createShaderModule({ code: probeWGSL(p) });
      const pipe = dev.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      const bg = dev.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [ba, bb, bc].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(bc, 0, rd, 0, MR * 64);
      dev.queue.submit([enc.finish()]);
      const verr = await dev.popErrorScope();
      if (verr) throw new Error(verr.message.split('\n')[0]);
      await rd.mapAsync(1);
      const got = new Float32Array(rd.getMappedRange().slice(0));
      rd.unmap();
      for (const x of [ba, bb, bc, rd]) x.destroy();
      // hold: the stored product is the last round's, B × rounds/rounds = B
      let e = 0;
      let mag = 0;
      for (let i = 0; i < MR * 16; i++) {
        const d = Math.abs(got[i] - want[i]);
        e = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(e, d);
        mag = Math.max(mag, Math.abs(want[i]));
      }
      const err = e / mag;
      emit({ name, ...p, ok: err <= 2e-3, err, sample: [got[0], want[0], got[17], want[17]] });
    } catch (x) {
      emit({ name, ...p, ok: false, err: 'n/a', msg: (x as Error).message.slice(0, 300) });
    }
  }
  if (outDir) writeFileSync(`${outDir}/probe-sgmat.json`, `${JSON.stringify(rows, null, 1)}\n`);
  const failed = rows.filter((r) => !r.ok).length;
  console.log(`probe-sgmat: ${rows.length - failed}/${rows.length} ok`);
  await g.destroy();
  process.exit(0);
}

await main();
