// A custom language model composed from the published parts, as a user would write it after
// `npm i @foxgate/tensor @foxgate/autograd @foxgate/attention @foxgate/models @foxgate/train`:
// an embedding, two pre-norm blocks whose attention is forgetting attention with ACP (called
// directly from @foxgate/attention) and whose MLP is the SwiGLU layer of @foxgate/models, a final
// RMSNorm and an LM head; trained a few dozen AdamW steps on the CPU on a small built-in text.
// Fails (exit 1) unless the eval loss falls well below its starting value (ln 261 ≈ 5.56).
// Run by scripts/custom-model-check.mjs inside a temp folder holding the installed tarballs.
import assert from 'node:assert/strict';
import { forgettingAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { embedding, initEmbedding, initLinear, initRMSNorm, initSwiGLU, linear, rmsNormLayer, swiglu } from '@foxgate/models';
import { add, argmax, crossEntropy, dispose, logsigmoid, reshape, rngKey, split, tensor, tidy } from '@foxgate/tensor';
import { adamw, byteTokenizer, clipFactor, globalNorm } from '@foxgate/train';

const TEXT = `The fox jumps over the gate. The gate is old and the fox is quick.
A quick fox forgets what it does not need and keeps what it does.
The old gate keeps the garden; the quick fox keeps the road.
`.repeat(8);
const STEPS = 40;
const [B, T, DIM, HEADS, MLP] = [4, 128, 32, 2, 64];
const HD = DIM / HEADS;

const tok = byteTokenizer();
const ids = tok.encode(TEXT);
const V = tok.vocabSize;

// ---- the model: parameters are a plain tree of tensors, the forward pass a function of it
function initBlock(key) {
  const [kq, kk, kv, ko, kf, km] = split(key, 6);
  return {
    attn_norm: initRMSNorm(DIM),
    q: initLinear(kq, DIM, DIM),
    k: initLinear(kk, DIM, DIM),
    v: initLinear(kv, DIM, DIM),
    o: initLinear(ko, DIM, DIM),
    fgate: initLinear(kf, DIM, HEADS, { bias: true }), // one forget gate per head
    mlp_norm: initRMSNorm(DIM),
    mlp: initSwiGLU(km, DIM, MLP),
  };
}

function initModel(key) {
  const [ke, k1, k2, kh] = split(key, 4);
  return { embed: initEmbedding(ke, V, DIM), blocks: [initBlock(k1), initBlock(k2)], norm: initRMSNorm(DIM), head: initLinear(kh, DIM, V) };
}

function block(p, x, stats) {
  const [b, t] = x.shape;
  const h = rmsNormLayer(p.attn_norm, x);
  const heads = (lin) => reshape(linear(lin, h), [b, t, HEADS, HD]);
  const logF = logsigmoid(linear(p.fgate, h)); // [B,T,H], log forget gates ≤ 0
  const r = forgettingAttention(heads(p.q), heads(p.k), heads(p.v), logF, { acp: true, stats: stats !== undefined });
  const o = stats ? r.out : r;
  if (stats) stats.push(r.stats.fraction);
  const x1 = add(x, linear(p.o, reshape(o, [b, t, DIM])));
  return add(x1, swiglu(p.mlp, rmsNormLayer(p.mlp_norm, x1)));
}

function forward(p, tokens, stats) {
  let x = embedding(p.embed, tokens);
  for (const bp of p.blocks) x = block(bp, x, stats);
  return linear(p.head, rmsNormLayer(p.norm, x)); // [B,T,V] logits
}

const loss = (p, inputs, targets) => crossEntropy(forward(p, inputs), targets);

// ---- data: B windows of T+1 bytes from the text (a deterministic LCG picks the offsets);
// the eval batch comes from the last quarter of the text, never trained on
const cut = Math.floor(ids.length * 0.75);
let seed = 12345;
function batch(from, to) {
  const inp = new Int32Array(B * T);
  const tgt = new Int32Array(B * T);
  for (let r = 0; r < B; r++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const off = from + (seed % (to - from - T - 1));
    for (let i = 0; i < T; i++) {
      inp[r * T + i] = ids[off + i];
      tgt[r * T + i] = ids[off + i + 1];
    }
  }
  return [tensor(inp, [B, T], { dtype: 'int32' }), tensor(tgt, [B, T], { dtype: 'int32' })];
}
const held = batch(cut, ids.length);
const heldLoss = async (p) => {
  const l = loss(p, ...held);
  const v = await l.item();
  l.dispose();
  return v;
};

// ---- training with AdamW from @foxgate/train, clipped at global norm 1
const t0 = performance.now();
let params = initModel(rngKey(0));
const opt = adamw({ lr: 1e-2, weightDecay: 0.1 });
let state = opt.init(params);
const step = valueAndGrad(loss);
const before = await heldLoss(params);
const losses = [];
for (let i = 0; i < STEPS; i++) {
  const [inp, tgt] = batch(0, cut);
  const { value, grads } = step(params, inp, tgt);
  losses.push(await value.item());
  const norm = globalNorm(grads);
  const gradScale = clipFactor(norm, 1);
  ({ params, state } = opt.updateAndDispose(params, grads, state, { gradScale }));
  dispose([value, grads, norm, gradScale, inp, tgt]);
}
const after = await heldLoss(params);

// ACP statistics of one forward pass, and a short greedy continuation
const stats = [];
forward(params, held[0], stats).dispose();
const computed = await Promise.all(stats.map((s) => s.item()));
const prompt = tok.encode('The quick ');
const out = [...prompt];
for (let i = 0; i < 24; i++) {
  const next = tidy(() => {
    const ctx = out.slice(-T);
    const logits = forward(params, tensor(Int32Array.from(ctx), [1, ctx.length], { dtype: 'int32' }));
    return argmax(logits, -1);
  });
  const arr = await next.data();
  out.push(arr[arr.length - 1]);
  next.dispose();
}

const fmt = (x) => x.toFixed(3);
console.log(`custom model: 2 blocks, dim ${DIM}, ${HEADS} heads, vocab ${V}, B ${B} T ${T}, ${STEPS} AdamW steps on the CPU`);
console.log(`train loss ${fmt(losses[0])} → ${fmt(losses.at(-1))}; eval loss ${fmt(before)} → ${fmt(after)}`);
console.log(`ACP: share of 64×64 tiles computed per block ${computed.map(fmt).join(', ')}`);
console.log(`greedy: ${JSON.stringify(tok.decode(out))}`);
console.log(`in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

assert.ok(losses.every(Number.isFinite), `a training loss is not finite: ${losses}`);
assert.ok(Math.abs(before - Math.log(V)) < 0.5, `the untrained eval loss ${before} should be near ln ${V} = ${Math.log(V)}`);
assert.ok(after < before - 1.5, `the eval loss fell only from ${before} to ${after} (want a drop of more than 1.5 nats)`);
const firstFive = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
const lastFive = losses.slice(-5).reduce((a, b) => a + b) / 5;
assert.ok(lastFive < firstFive - 1.5, `the training loss fell only from ${firstFive} to ${lastFive} (mean of the first / last 5 steps)`);
