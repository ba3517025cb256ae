import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FoxgateError } from '../src/errors.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/io/files.js';
import { bf16BitsToF32Bits, decodeHalves, f16BitsToF32Bits, f16ToNumber } from '../src/io/half.js';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors.js';
import { loadSafetensors, safetensorsBytes, saveSafetensors } from '../src/io/tensors.js';
import { tensor } from '../src/ops/creation.js';
import { transpose } from '../src/ops/views.js';

const FIXTURES = '/work/shared/fixtures';
const GOLDEN = join(FIXTURES, 'golden_public.safetensors');

/** A raw file: 8-byte LE header length, the header text as given, then the buffer. */
function rawFile(header: unknown, buffer: Uint8Array = new Uint8Array(0), lengthOverride?: number): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + buffer.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, lengthOverride ?? text.length, true);
  out.set(text, 8);
  out.set(buffer, 8 + text.length);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

function err(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FoxgateError);
    return (e as Error).message;
  }
  throw new Error('expected a FoxgateError');
}

function f32Of(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}

describe('f16 / bf16 decoding', () => {
  it('hand-built f16 values', () => {
    expect(f16ToNumber(0x3c00)).toBe(1);
    expect(f16ToNumber(0xc100)).toBe(-2.5);
    expect(f16ToNumber(0x7bff)).toBe(65504);
    expect(f16ToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16ToNumber(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16ToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16ToNumber(0x8001)).toBe(-(2 ** -24));
    expect(f16ToNumber(0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(f16ToNumber(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(f16ToNumber(0x7c01)).toBeNaN();
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(Object.is(f16ToNumber(0x0000), 0)).toBe(true);
    expect(f16ToNumber(0x3555)).toBeCloseTo(1 / 3, 3);
    // NaN payload kept: quiet bit + payload move to the top of the float32 mantissa
    expect(f16BitsToF32Bits(0x7e01)).toBe(0x7fc02000);
  });

  it('every f16 bit pattern matches the arithmetic definition', () => {
    const words = new Uint16Array(65536);
    for (let h = 0; h < 65536; h++) words[h] = h;
    const dec = decodeHalves(words, 'F16');
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 31;
      const m = h & 1023;
      const ref =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Number.POSITIVE_INFINITY) : s * (1 + m / 1024) * 2 ** (e - 15);
      const ok = Number.isNaN(ref) ? Number.isNaN(dec[h]) : Object.is(dec[h], ref);
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('bf16 values', () => {
    const dec = decodeHalves(new Uint16Array([0x3f80, 0xc020, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8000, 0x4049]), 'BF16');
    expect(dec[0]).toBe(1);
    expect(dec[1]).toBe(-2.5);
    expect(dec[2]).toBe(Number.POSITIVE_INFINITY);
    expect(dec[3]).toBe(Number.NEGATIVE_INFINITY);
    expect(dec[4]).toBeNaN();
    expect(dec[5]).toBe(2 ** -133);
    expect(Object.is(dec[6], -0)).toBe(true);
    expect(dec[7]).toBe(3.140625);
    expect(bf16BitsToF32Bits(0x3f80)).toBe(0x3f800000);
    expect(f32Of(bf16BitsToF32Bits(0x3f80))).toBe(1);
  });
});

describe('round trip', () => {
  it('every writable dtype, metadata, scalars and empty tensors', () => {
    const entries = {
      'w.f64': { dtype: 'F64' as const, shape: [2, 2], data: new Float64Array([1.5, -0, Number.NaN, 1e300]) },
      'a.f32': { dtype: 'F32' as const, shape: [3], data: new Float32Array([0.1, Number.POSITIVE_INFINITY, -3]) },
      i32: { dtype: 'I32' as const, shape: [2, 1], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) },
      u32: { dtype: 'U32' as const, shape: [], data: new Uint32Array([0xffffffff]) },
      u8: { dtype: 'U8' as const, shape: [4], data: new Uint8Array([0, 1, 128, 255]) },
      mask: { dtype: 'BOOL' as const, shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
      empty: { dtype: 'F32' as const, shape: [0, 3], data: new Float32Array(0) },
    };
    const meta = { format: 'pt', note: 'ünïcode ✓', '': 'empty key' };
    const bytes = serializeSafetensors(entries, meta);
    // header: length multiple of 8, space padded, sorted contiguous offsets
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const byOffset = [...names].sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
    expect(byOffset).toEqual(Object.keys(entries).sort());
    let pos = 0;
    for (const k of byOffset) {
      expect(header[k].data_offsets[0]).toBe(pos);
      pos = header[k].data_offsets[1];
    }
    expect(bytes.length).toBe(8 + n + pos);
    expect(header.__metadata__).toEqual(meta);

    const back = parseSafetensors(bytes);
    expect(back.metadata).toEqual(meta);
    expect([...back.tensors.keys()]).toEqual(Object.keys(entries).sort());
    for (const [name, e] of Object.entries(entries)) {
      const t = back.tensors.get(name);
      expect(t?.dtype).toBe(e.dtype);
      expect(t?.shape).toEqual(e.shape);
      expect(t?.data.constructor).toBe(e.data.constructor);
      expect(bytesOf(t?.data as ArrayBufferView)).toEqual(bytesOf(e.data)); // bit-exact (NaN, -0)
    }
    // the same bytes again (deterministic)
    expect(serializeSafetensors(entries, meta)).toEqual(bytes);
  });

  it('no metadata, and reading from an unaligned view of a larger buffer', () => {
    const bytes = serializeSafetensors({ x: { dtype: 'F64', shape: [2], data: new Float64Array([1, 2]) } });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const back = parseSafetensors(big.subarray(3));
    expect(back.metadata).toEqual({});
    expect(Array.from(back.tensors.get('x')?.data ?? [])).toEqual([1, 2]);
  });

  it('reads F16, BF16, I8, I16, U16, I64 and normalises BOOL', () => {
    const buf = new Uint8Array([
      ...bytesOf(new Uint16Array([0x3c00, 0xc100])), // F16 [0,4)
      ...bytesOf(new Uint16Array([0x3f80])), // BF16 [4,6)
      ...bytesOf(new Int8Array([-128, 127])), // I8 [6,8)
      ...bytesOf(new Int16Array([-32768, 7])), // I16 [8,12)
      ...bytesOf(new Uint16Array([65535])), // U16 [12,14)
      ...bytesOf(new BigInt64Array([-5n, 2147483647n, -2147483648n])), // I64 [14,38)
      2,
      0, // BOOL [38,40)
    ]);
    const file = rawFile(
      {
        h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
        b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
        i8: { dtype: 'I8', shape: [2], data_offsets: [6, 8] },
        i16: { dtype: 'I16', shape: [2], data_offsets: [8, 12] },
        u16: { dtype: 'U16', shape: [1], data_offsets: [12, 14] },
        i64: { dtype: 'I64', shape: [3], data_offsets: [14, 38] },
        flag: { dtype: 'BOOL', shape: [2], data_offsets: [38, 40] },
      },
      buf,
    );
    const t = parseSafetensors(file).tensors;
    expect(t.get('h')?.data).toEqual(new Float32Array([1, -2.5]));
    expect(t.get('h')?.dtype).toBe('F16');
    expect(t.get('b')?.data).toEqual(new Float32Array([1]));
    expect(t.get('i8')?.data).toEqual(new Int32Array([-128, 127]));
    expect(t.get('i16')?.data).toEqual(new Int32Array([-32768, 7]));
    expect(t.get('u16')?.data).toEqual(new Int32Array([65535]));
    expect(t.get('i64')?.data).toEqual(new Int32Array([-5, 2147483647, -2147483648]));
    expect(t.get('flag')?.data).toEqual(new Uint8Array([1, 0]));
    expect([...t.keys()]).toEqual(['h', 'b', 'i8', 'i16', 'u16', 'i64', 'flag']);
  });
});

describe('golden fixture', () => {
  it('reads golden_public.safetensors: names and shapes match the manifest', async () => {
    const { tensors, metadata } = await readSafetensorsFile(GOLDEN);
    const manifest = JSON.parse(readFileSync(join(FIXTURES, 'golden_public.json'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(JSON.parse(metadata.manifest)).toEqual(manifest);
    const expected = new Map<string, number[]>();
    for (const [name, c] of Object.entries(manifest)) {
      if (c.kind === 'forgetting_attention') {
        const [B, T, H, D] = [c.B, c.T, c.H, c.D] as number[];
        for (const x of ['q', 'k', 'v', 'o', 'do', 'dq', 'dk', 'dv']) expected.set(`${name}/${x}`, [B, T, H, D]);
        for (const x of ['logf', 'dlogf']) expected.set(`${name}/${x}`, [B, T, H]);
        if (c.acp) expected.set(`${name}/acp_delta`, [B, H]);
      } else {
        expect(c.kind).toBe('sparsek');
        for (const x of ['z', 'p', 'g', 'dz']) expected.set(`${name}/${x}`, [c.R as number, c.m as number]);
      }
    }
    expect(tensors.size).toBe(81);
    expect([...tensors.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) {
      const t = tensors.get(name);
      expect(t?.shape, name).toEqual(shape);
      expect(t?.data).toBeInstanceOf(Float32Array);
      expect(t?.data.length).toBe(shape.reduce((a, b) => a * b, 1));
    }
    // the values mean what the manifest says: logf = logsigmoid(·) ≤ 0; sparsek rows of p sum to k in [0,1]
    for (const v of tensors.get('fox_tiny/logf')?.data ?? []) expect(v).toBeLessThanOrEqual(0);
    const p = tensors.get('sk_small/p')?.data as Float32Array;
    for (let r = 0; r < 4; r++) {
      const row = Array.from(p.subarray(r * 10, r * 10 + 10));
      expect(row.every((v) => v >= -1e-6 && v <= 1 + 1e-6)).toBe(true);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 4);
    }
    // acp_delta equals the manifest's delta
    const delta = (manifest.fox_acp.acp as { delta: number[][] }).delta[0];
    expect(Array.from(tensors.get('fox_acp/acp_delta')?.data ?? [])).toEqual(delta.map((d) => Math.fround(d)));
  });
});

describe('malformed files: one clear error each', () => {
  const f32 = (shape: number[], offs: [number, number]) => ({ dtype: 'F32', shape, data_offsets: offs });
  const eight = new Uint8Array(8);

  it('shorter than 8 bytes', () => {
    expect(err(() => parseSafetensors(new Uint8Array(5), 'x.safetensors'))).toBe(
      'safetensors: x.safetensors: file is 5 bytes, too short for the 8-byte header length',
    );
  });
  it('header length beyond the file', () => {
    expect(err(() => parseSafetensors(rawFile({}, eight, 1000), 'm.st'))).toBe(
      'safetensors: m.st: header length 1000 runs past the end of the file (10 bytes follow the length field)',
    );
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(4, 1, true); // 2^32
    expect(err(() => parseSafetensors(huge))).toMatch(/^safetensors: <bytes>: header length 4294967296 runs past the end/);
  });
  it('malformed JSON (no eval)', () => {
    expect(err(() => parseSafetensors(rawFile('{"a": ', eight), 'j.st'))).toMatch(/^safetensors: j\.st: header is not valid JSON \(/);
    expect(err(() => parseSafetensors(rawFile("{'a': 1}")))).toMatch(/header is not valid JSON/);
    expect(err(() => parseSafetensors(rawFile('(()=>{throw 1})()')))).toMatch(/header is not valid JSON/);
  });
  it('invalid UTF-8', () => {
    const f = rawFile('{"a":1}');
    f[10] = 0xff;
    expect(err(() => parseSafetensors(f, 'u.st'))).toBe('safetensors: u.st: header is not valid UTF-8');
  });
  it('header not an object', () => {
    expect(err(() => parseSafetensors(rawFile([1, 2]), 'a.st'))).toBe('safetensors: a.st: header must be a JSON object, got an array');
    expect(err(() => parseSafetensors(rawFile('null')))).toBe('safetensors: <bytes>: header must be a JSON object, got null');
    expect(err(() => parseSafetensors(rawFile({ w: 3 }), 'e.st'))).toBe(
      'safetensors: e.st: tensor "w": entry must be an object {dtype, shape, data_offsets}, got number 3',
    );
  });
  it('unknown dtype', () => {
    expect(err(() => parseSafetensors(rawFile({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, eight), 'd.st'))).toBe(
      'safetensors: d.st: tensor "w": unknown or unsupported dtype string "Q4" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U32, U16, U8, BOOL)',
    );
  });
  it('bad shape', () => {
    expect(err(() => parseSafetensors(rawFile({ w: f32([2, -1], [0, 8]) }, eight), 's.st'))).toBe(
      'safetensors: s.st: tensor "w": shape must be an array of non-negative integers, got [2,-1]',
    );
    expect(err(() => parseSafetensors(rawFile({ w: f32([1.5] as number[], [0, 8]) }, eight)))).toMatch(/tensor "w": shape must be/);
    expect(err(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, eight)))).toMatch(/shape must be/);
  });
  it('data_offsets out of range or malformed', () => {
    expect(err(() => parseSafetensors(rawFile({ w: f32([4], [0, 16]) }, eight), 'o.st'))).toBe(
      'safetensors: o.st: tensor "w": data_offsets [0,16] out of range (data buffer holds 8 bytes)',
    );
    expect(err(() => parseSafetensors(rawFile({ w: f32([0], [8, 0]) }, eight)))).toMatch(/tensor "w": data_offsets \[8,0\] out of range/);
    expect(err(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, eight)))).toBe(
      'safetensors: <bytes>: tensor "w": data_offsets must be [begin, end] with non-negative integers, got [0]',
    );
  });
  it('overlapping tensors', () => {
    const h = { a: f32([2], [0, 8]), b: f32([2], [4, 12]) };
    expect(err(() => parseSafetensors(rawFile(h, new Uint8Array(12)), 'ov.st'))).toBe(
      'safetensors: ov.st: tensor "b" (data_offsets [4,12]) overlaps tensor "a" ([0,8])',
    );
  });
  it('gap between tensors / buffer not covered', () => {
    const h = { a: f32([1], [0, 4]), b: f32([1], [8, 12]) };
    expect(err(() => parseSafetensors(rawFile(h, new Uint8Array(12)), 'g.st'))).toBe(
      'safetensors: g.st: bytes [4,8) of the data buffer belong to no tensor (gap before tensor "b")',
    );
    expect(err(() => parseSafetensors(rawFile({ a: f32([1], [0, 4]) }, eight), 't.st'))).toBe(
      'safetensors: t.st: the data buffer has 8 bytes but the tensors cover only 4 (4 bytes belong to no tensor)',
    );
  });
  it('shape × itemsize ≠ byte count', () => {
    expect(err(() => parseSafetensors(rawFile({ w: f32([3], [0, 8]) }, eight), 'n.st'))).toBe(
      'safetensors: n.st: tensor "w": shape [3] of F32 needs 12 bytes but data_offsets [0,8] hold 8',
    );
  });
  it('metadata values not strings', () => {
    expect(err(() => parseSafetensors(rawFile({ __metadata__: { step: 3 } }), 'md.st'))).toBe(
      'safetensors: md.st: __metadata__ value of "step" must be a string, got number 3',
    );
    expect(err(() => parseSafetensors(rawFile({ __metadata__: ['x'] })))).toMatch(
      /__metadata__ must be an object of strings, got an array/,
    );
  });
  it('I64 values beyond int32', () => {
    const buf = bytesOf(new BigInt64Array([1n, 5000000000n]));
    expect(err(() => parseSafetensors(rawFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, buf), 'i.st'))).toBe(
      'safetensors: i.st: tensor "ids": I64 value 5000000000 at index 1 does not fit in int32',
    );
  });
  it('serialize rejects bad entries', () => {
    expect(err(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }))).toBe(
      'safetensors: cannot write tensor "w": dtype F32 needs a Float32Array, got Float64Array',
    );
    expect(err(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }))).toBe(
      'safetensors: cannot write tensor "w": shape [2,2] has 4 elements but the data has 3',
    );
    expect(err(() => serializeSafetensors({ w: { dtype: 'F16' as 'F32', shape: [1], data: new Float32Array(1) } }))).toMatch(
      /dtype must be one of F64, F32, I32, U32, U8, BOOL/,
    );
    expect(err(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } }))).toMatch(/reserved/);
    expect(err(() => serializeSafetensors({}, { n: 1 as unknown as string }))).toBe(
      'safetensors: metadata value of "n" must be a string, got number 1',
    );
    // a Node Buffer is a Uint8Array
    expect(() => serializeSafetensors({ b: { dtype: 'U8', shape: [2], data: Buffer.from([1, 2]) } })).not.toThrow();
  });
});

describe('files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('writes atomically and reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'foxgate-st-'));
    dirs.push(dir);
    const path = join(dir, 'a.safetensors');
    await writeFile(path, 'old contents');
    await writeSafetensorsFile(path, { x: { dtype: 'I32', shape: [3], data: new Int32Array([1, -2, 3]) } }, { k: 'v' });
    expect(await readdir(dir)).toEqual(['a.safetensors']); // no temp file left
    const back = await readSafetensorsFile(path);
    expect(back.tensors.get('x')?.data).toEqual(new Int32Array([1, -2, 3]));
    expect(back.metadata).toEqual({ k: 'v' });
  });

  it('errors name the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'foxgate-st-'));
    dirs.push(dir);
    const missing = join(dir, 'nope.safetensors');
    await expect(readSafetensorsFile(missing)).rejects.toThrow(`safetensors: ${missing}: cannot read file (ENOENT)`);
    const bad = join(dir, 'no-such-dir', 'x.safetensors');
    await expect(writeSafetensorsFile(bad, {})).rejects.toThrow(`safetensors: ${bad}: cannot write file (ENOENT)`);
    await writeFile(join(dir, 'short.safetensors'), new Uint8Array(3));
    await expect(readSafetensorsFile(join(dir, 'short.safetensors'))).rejects.toThrow(
      `safetensors: ${join(dir, 'short.safetensors')}: file is 3 bytes`,
    );
    expect(existsSync(`${bad}.tmp-${process.pid}`)).toBe(false);
  });
});

describe('tensor wrappers (CPU backend)', () => {
  it('loadSafetensors gives tensors equal to the parsed data', async () => {
    const tensors = await loadSafetensors(GOLDEN, { backend: 'cpu' });
    const { tensors: raw } = parseSafetensors(readFileSync(GOLDEN), GOLDEN);
    expect(Object.keys(tensors).sort()).toEqual([...raw.keys()].sort());
    const q = tensors['fox_small/q'];
    expect(q.dtype).toBe('float32');
    expect(q.shape).toEqual([1, 64, 2, 16]);
    expect(await q.data()).toEqual(raw.get('fox_small/q')?.data);
  });

  it('saveSafetensors / loadSafetensors round trip of every tensor dtype, views included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'foxgate-st-'));
    try {
      const m = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      const src = {
        f32: m,
        mT: transpose(m), // a strided view: saved in logical (row-major) order
        f64: tensor(new Float64Array([Math.PI, -1e-300]), [2], { dtype: 'float64' }),
        i32: tensor(new Int32Array([-7, 0, 7]), [3, 1], { dtype: 'int32' }),
        u32: tensor(new Uint32Array([4294967295]), [], { dtype: 'uint32' }),
        mask: tensor([true, false, true]),
      };
      const path = join(dir, 'm.safetensors');
      await saveSafetensors(path, src, { epoch: '3' });
      const back = await loadSafetensors(path);
      expect(Object.keys(back).sort()).toEqual(Object.keys(src).sort());
      for (const [name, t] of Object.entries(src)) {
        expect(back[name].dtype, name).toBe(t.dtype);
        expect(back[name].shape, name).toEqual(t.shape);
        expect(Array.from(await back[name].data()), name).toEqual(Array.from(await t.data()));
      }
      expect(Array.from(await back.mT.data())).toEqual([1, 4, 2, 5, 3, 6]);
      expect((await readSafetensorsFile(path)).metadata).toEqual({ epoch: '3' });
      // bytes API and U8 → int32
      const bytes = serializeSafetensors({ b: { dtype: 'U8', shape: [2], data: new Uint8Array([200, 3]) } });
      const u8 = (await loadSafetensors(bytes)).b;
      expect(u8.dtype).toBe('int32');
      expect(Array.from(await u8.data())).toEqual([200, 3]);
      expect(parseSafetensors(await safetensorsBytes({ x: src.f64 })).tensors.get('x')?.dtype).toBe('F64');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
