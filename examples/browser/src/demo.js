// Forgetting attention in the browser: WebGPU through navigator.gpu (the CPU kernels when the
// browser has no WebGPU, or with ?cpu in the URL), checked against the CPU kernel on the same
// inputs; with ?acp also with Adaptive Computation Pruning, with ?grad also ∂/∂q through
// @foxgate/autograd on the same device. (On Chromium's software adapter, SwiftShader, the ACP
// kernels hang the GPU process and the backward kernels take minutes to compile; the test runs
// ACP and the gradient on the ?cpu path only. Dawn on lavapipe runs both: scripts/consumer/.)
// index.html runs it and writes the result into the page; test/page.test.mjs reads it from
// there in headless Chromium.
import { forgettingAttention } from '@foxgate/attention';
import { valueAndGrad } from '@foxgate/autograd';
import { abs, initWebGPU, logsigmoid, max, mul, randomNormal, sub, sum, tensor } from '@foxgate/tensor';

const [B, T, H, D] = [1, 256, 2, 16];

/** Max |a − b| of a tensor on any backend against a CPU tensor. */
async function maxDiff(a, want) {
  const host = tensor(await a.data(), a.shape);
  return max(abs(sub(host, want))).item();
}

export async function runDemo({ cpuOnly = false, acp = false, grad = false } = {}) {
  const t0 = performance.now();
  const result = { backend: 'cpu', adapter: null, why: null, shape: [B, T, H, D] };
  let device = 'cpu';
  if (cpuOnly) result.why = 'asked for the CPU (?cpu)';
  else {
    try {
      const gpu = await initWebGPU();
      device = gpu;
      result.backend = 'webgpu';
      result.adapter = [gpu.info.vendor, gpu.info.architecture, gpu.info.description].filter(Boolean).join(' / ');
    } catch (e) {
      result.why = e.message;
    }
  }
  // inputs made on the CPU, then the same values on the device
  const cpu = {
    q: randomNormal([1, 0], [B, T, H, D]),
    k: randomNormal([2, 0], [B, T, H, D]),
    v: randomNormal([3, 0], [B, T, H, D]),
    logF: logsigmoid(randomNormal([4, 0], [B, T, H])),
  };
  const dev = {};
  for (const [name, t] of Object.entries(cpu)) dev[name] = tensor(await t.data(), t.shape, { backend: device });

  const want = forgettingAttention(cpu.q, cpu.k, cpu.v, cpu.logF);
  const full = forgettingAttention(dev.q, dev.k, dev.v, dev.logF);
  result.maxAbsDiff = await maxDiff(full, want);
  result.outMaxAbs = await max(abs(want)).item();
  if (acp) {
    const r = forgettingAttention(dev.q, dev.k, dev.v, dev.logF, { acp: true, stats: true });
    result.maxAbsDiffAcp = await maxDiff(r.out, want);
    result.tilesComputed = await r.stats.fraction.item();
  }

  if (grad) {
    // ∂/∂q of Σ o·v on the device against the CPU
    const f = (p, x) => sum(mul(forgettingAttention(p.q, x.k, x.v, x.logF), x.v));
    const gDev = valueAndGrad(f)({ q: dev.q }, dev).grads.q;
    const gCpu = valueAndGrad(f)({ q: cpu.q }, cpu).grads.q;
    result.gradMaxAbsDiff = await maxDiff(gDev, gCpu);
    result.gradMaxAbs = await max(abs(gCpu)).item();
  }
  result.ms = Math.round(performance.now() - t0);
  return result;
}
