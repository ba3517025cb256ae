import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenTree } from '@foxgate/autograd';
import { dispose, readSafetensorsFile, rngKey, serializeSafetensors, tensor } from '@foxgate/tensor';
import { describe, expect, it } from 'vitest';
import { createModel, loadCheckpoint, saveCheckpoint } from '../src/index.js';
import { modelFixtureFiles, modelFixturesDir, rejectsNaming, relMaxError } from './util.js';

const fixtures = modelFixturesDir();
const tmp = () => mkdtempSync(join(tmpdir(), 'foxgate-ckpt-'));

describe('saveCheckpoint → loadCheckpoint', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`is bit-exact (${dtype}), with the config and extra JSON`, async () => {
      const m = createModel({ model: 'foxPro', preset: 'tiny', vocab_size: 37 });
      const p = m.init(rngKey(5), { backend: 'cpu', dtype });
      const dir = join(tmp(), 'ckpt');
      await saveCheckpoint(dir, p, m.config, { step: 12, note: 'hi' });
      expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      expect(cfg.model_type).toBe('forgetting_transformer-project_fox');
      expect(cfg.hidden_size).toBe(64);
      const back = await loadCheckpoint(dir, { backend: 'cpu', dtype });
      expect(back.config).toEqual(m.config);
      expect(back.extra).toEqual({ step: 12, note: 'hi' });
      const a = flattenTree(p);
      const b = flattenTree(back.params);
      expect([...b.keys()]).toEqual([...a.keys()]);
      for (const [n, t] of a) {
        const got = b.get(n)?.dataSync() as Float32Array;
        expect(Buffer.from(got.buffer).equals(Buffer.from((t.dataSync() as Float32Array).buffer)), n).toBe(true);
      }
      dispose([p, back.params]);
    });
  }

  it('replaces an existing checkpoint and leaves no temporary folder', async () => {
    const root = tmp();
    const dir = join(root, 'ckpt');
    const m = createModel({ model: 'fox', preset: 'tiny' });
    const p1 = m.init(rngKey(1), { backend: 'cpu' });
    const p2 = m.init(rngKey(2), { backend: 'cpu' });
    await saveCheckpoint(dir, p1, m.config);
    await saveCheckpoint(dir, p2, m.config);
    expect(readdirSync(root)).toEqual(['ckpt']);
    const back = await loadCheckpoint(dir, { backend: 'cpu' });
    expect([...back.params.model.norm.weight.dataSync()]).toEqual([...p2.model.norm.weight.dataSync()]);
    expect([...(back.params.lm_head?.weight.dataSync() ?? [])].slice(0, 5)).toEqual([...(p2.lm_head?.weight.dataSync() ?? [])].slice(0, 5));
    dispose([p1, p2, back.params]);
  });
});

/** An official-style Hugging Face folder from a model fixture: config.json with model_type, weights in `shards` files. */
async function hfFolder(file: string, shards: number, bf16 = false) {
  const c = await readSafetensorsFile(join(fixtures, file));
  const manifest = JSON.parse(c.metadata.manifest);
  const dir = tmp();
  const gated = manifest.config.fgate_type !== 'none';
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      ...manifest.config,
      model_type: gated ? 'forgetting_transformer-project_fox' : 'transformer-project_fox',
      architectures: ['X'],
    }),
  );
  const names = [...c.tensors.keys()].filter((n) => n.startsWith('param/'));
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const fname = shards === 1 ? 'model.safetensors' : `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = names.filter((_, i) => i % shards === s);
    if (bf16) {
      writeFileSync(
        join(dir, fname),
        bf16File(part.map((n) => [n.slice(6), c.tensors.get(n)?.data as Float32Array, c.tensors.get(n)?.shape as number[]])),
      );
    } else {
      const entries = Object.fromEntries(
        part.map((n) => [
          n.slice(6),
          { dtype: 'F32' as const, shape: c.tensors.get(n)?.shape ?? [], data: c.tensors.get(n)?.data as Float32Array },
        ]),
      );
      writeFileSync(join(dir, fname), serializeSafetensors(entries));
    }
    for (const n of part) weightMap[n.slice(6)] = fname;
  }
  if (shards > 1)
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return { dir, c };
}

/** A safetensors file of BF16 tensors (the top 16 bits of each float32), written by hand. */
function bf16File(entries: [string, Float32Array, number[]][]): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [n, d, shape] of entries) {
    header[n] = { dtype: 'BF16', shape, data_offsets: [off, off + 2 * d.length] };
    off += 2 * d.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const [, d] of entries) {
    const u = new Uint32Array(Float32Array.from(d).buffer);
    for (let i = 0; i < u.length; i++, p += 2) {
      out[p] = (u[i] >>> 16) & 0xff;
      out[p + 1] = u[i] >>> 24;
    }
  }
  return out;
}

describe('official Hugging Face folders load as they are', () => {
  const files = modelFixtureFiles();
  for (const file of files) {
    for (const shards of [1, 3]) {
      it(`${file}, ${shards === 1 ? 'one file' : 'sharded in 3'}: the fixture's logits`, async () => {
        const { dir, c } = await hfFolder(file, shards);
        const { model, params } = await loadCheckpoint(dir, { backend: 'cpu' });
        const ids = c.tensors.get('input_ids') as { data: Int32Array; shape: number[] };
        const logits = model.forward(params, tensor(Int32Array.from(ids.data), ids.shape, { dtype: 'int32', backend: 'cpu' }));
        expect(relMaxError(logits.dataSync(), c.tensors.get('logits')?.data as Float32Array)).toBeLessThan(1e-4);
        dispose([params, logits]);
      });
    }
  }

  it('bf16 weights become float32 (the truncated values exactly)', async () => {
    const { dir, c } = await hfFolder(files[0], 2, true);
    const { params } = await loadCheckpoint(dir, { backend: 'cpu' });
    const flat = flattenTree(params);
    for (const [n, t] of flat) {
      const want = new Uint32Array(Float32Array.from(c.tensors.get(`param/${n}`)?.data as Float32Array).buffer).map((u) => u & 0xffff0000);
      expect([...new Uint32Array((t.dataSync() as Float32Array).slice().buffer)], n).toEqual([...want]);
    }
    dispose(params);
  });
});

describe('bad checkpoints: one line naming the file and what is wrong', () => {
  const good = async () => {
    const m = createModel({ model: 'fox', preset: 'tiny', vocab_size: 20 });
    const p = m.init(rngKey(1), { backend: 'cpu' });
    const dir = join(tmp(), 'c');
    await saveCheckpoint(dir, p, m.config);
    dispose(p);
    return dir;
  };
  const rejects = (dir: string, re: RegExp) => rejectsNaming(loadCheckpoint(dir, { backend: 'cpu' }), re);

  it('missing folder, missing weights, a pickle file', async () => {
    await rejects('/nonexistent/ckpt', /^checkpoint: \/nonexistent\/ckpt: no such checkpoint folder$/);
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox' }));
    await rejects(dir, /no model.safetensors and no model.safetensors.index.json$/);
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    await rejects(dir, /pytorch_model.bin, a pickle file; foxgate never executes files/);
  });

  it('corrupt config.json, unknown config field, bad value', async () => {
    const dir = await good();
    writeFileSync(join(dir, 'config.json'), '{"model": "fox",');
    await rejects(dir, /config.json: not valid JSON/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox', hiden_size: 3 }));
    await rejects(dir, /config.json: unknown field 'hiden_size'/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox', num_heads: 3 }));
    await rejects(dir, /config.json: num_heads 3 must divide hidden_size 64/);
  });

  it('weights that do not match the config: missing, unexpected, wrong shape', async () => {
    const dir = await good();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox', vocab_size: 20, num_hidden_layers: 3 }));
    await rejects(dir, /weights do not match config.json \(model 'fox'\): missing model.layers.2.attn_norm.weight, /);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox', vocab_size: 20, num_hidden_layers: 1 }));
    await rejects(dir, /: unexpected model\.layers\.1\.[a-z_.]+, /);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'fox', vocab_size: 21 }));
    await rejects(dir, /model.embeddings.weight is \[20,64\], expected \[21,64\]/);
  });

  it('a truncated weights file and a missing shard', async () => {
    const dir = await good();
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    await rejects(dir, /^safetensors: .*model.safetensors/);
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { 'a.weight': 'model-00001-of-00002.safetensors' } }),
    );
    await rejects(dir, /shard model-00001-of-00002.safetensors is missing/);
    expect(existsSync(join(dir, 'config.json'))).toBe(true);
  });
});
