// Forgetting attention on WebGPU from the published @foxgate/attention (installed with the
// @foxgate/tensor it is used with, nothing else): the fused WGSL kernel, with and without ACP,
// against the CPU kernel on the same inputs. Without a WebGPU adapter it prints one `skip:` line
// and exits 0, unless FOXGATE_REQUIRE_WEBGPU=1 (CI), which makes that a failure.
// Run by scripts/custom-model-check.mjs inside a temp folder holding the installed tarballs.
import { forgettingAttention } from '@foxgate/attention';
import { abs, destroyWebGPU, initWebGPU, logsigmoid, max, randomNormal, sub, tensor } from '@foxgate/tensor';

process.env.XDG_RUNTIME_DIR ??= '/tmp'; // lavapipe (software Vulkan) wants it

let gpu;
try {
  gpu = await initWebGPU();
} catch (e) {
  const why = e.message.split('\n')[0];
  if (process.env.FOXGATE_REQUIRE_WEBGPU === '1') {
    console.error(`FOXGATE_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${why}`);
    process.exit(1);
  }
  console.log(`skip: no WebGPU adapter (${why})`);
  process.exit(0);
}

const [B, T, H, D] = [1, 256, 2, 32];
const cpu = {
  q: randomNormal([1, 0], [B, T, H, D]),
  k: randomNormal([2, 0], [B, T, H, D]),
  v: randomNormal([3, 0], [B, T, H, D]),
  logF: logsigmoid(randomNormal([4, 0], [B, T, H])),
};
const on = (t) => tensor(t.dataSync(), t.shape, { backend: gpu }); // the same values on the device
const g = Object.fromEntries(Object.entries(cpu).map(([n, t]) => [n, on(t)]));

const want = forgettingAttention(cpu.q, cpu.k, cpu.v, cpu.logF);
const got = forgettingAttention(g.q, g.k, g.v, g.logF);
const acp = forgettingAttention(g.q, g.k, g.v, g.logF, { acp: true, stats: true });
const err = async (a) => max(abs(sub(tensor(await a.data(), a.shape), want))).item();
const e1 = await err(got);
const e2 = await err(acp.out);
const fraction = await acp.stats.fraction.item();
console.log(
  `attention on WebGPU (${gpu.info.description || gpu.info.device || gpu.info.vendor}): max |webgpu − cpu| ${e1.toExponential(2)}, with ACP ${e2.toExponential(2)} (${(fraction * 100).toFixed(0)}% of tiles computed)`,
);
await destroyWebGPU(gpu);
if (!(e1 < 1e-4 && e2 < 1e-4)) {
  console.error(`WebGPU forgetting attention differs from the CPU kernel: ${e1}, ${e2} (want < 1e-4)`);
  process.exit(1);
}
if (!(fraction > 0 && fraction < 1)) {
  console.error(`ACP computed ${fraction} of the tiles; with these gates it should skip some and keep some`);
  process.exit(1);
}
