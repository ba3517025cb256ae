import { getBackend, probeWebGPU } from '@foxgate/tensor';
import { defineCommand, flag } from '../args.js';
import { VERSION } from '../version.js';

/** `foxgate info`: version, CPU backend, WebGPU adapter or the exact reason there is none. */
export const infoCommand = defineCommand(
  {
    name: 'info',
    summary: 'version, CPU backend and WebGPU adapter (or why none was found)',
    flags: { json: flag.bool({ help: 'print one JSON object instead of text' }) },
    notes: 'FOXGATE_ADAPTER=<substring> picks an adapter; FOXGATE_DAWN_FLAGS passes Dawn toggles.',
  },
  async ({ flags }) => {
    const cpu = getBackend('cpu');
    const gpu = await probeWebGPU();
    if (flags.json) {
      console.log(JSON.stringify({ version: VERSION, node: process.version, cpu: { backend: cpu.name }, webgpu: gpu }, null, 2));
      return 0;
    }
    console.log(`foxgate ${VERSION} (node ${process.version}, ${process.platform}-${process.arch})`);
    console.log(`CPU backend: ${cpu.name} (float32, float64, int32, uint32, bool)`);
    if (!gpu.available) {
      console.log(`WebGPU: not available — ${gpu.reason}`);
      return 0;
    }
    const a = gpu.adapter;
    console.log(`WebGPU adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`);
    console.log(`  features: ${a.features.length ? a.features.join(', ') : '(none)'}`);
    if (a.subgroupMatrixConfigs?.length) console.log(`  subgroup matrices: ${a.subgroupMatrixConfigs.join(', ')}`);
    if (a.tensorCores)
      console.log(
        `  matmul precision 'high': ${a.tensorCores.available ? 'f16 tensor cores' : `f32 (no tensor cores: ${a.tensorCores.reason}; initWebGPU({ precision: 'high' }) asks Dawn for them)`}`,
      );
    console.log('  limits:');
    for (const [k, v] of Object.entries(a.limits)) console.log(`    ${k}: ${v}`);
    return 0;
  },
);
