import { parseArgs } from 'node:util';
import { getBackend, probeWebGPU } from '@foxgate/tensor';
import { VERSION } from '../version.js';

/** `foxgate info`: version, CPU backend, WebGPU adapter or the exact reason there is none. */
export async function runInfo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const cpu = getBackend('cpu');
  const gpu = await probeWebGPU();
  if (values.json) {
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
  console.log('  limits:');
  for (const [k, v] of Object.entries(a.limits)) console.log(`    ${k}: ${v}`);
  return 0;
}
