// Child process for interrupt.test.ts: installs onInterrupt, then waits. argv[2]: 'save' (the
// handler writes argv[3] after 200 ms) or 'hang' (the handler never finishes).
import { writeFileSync } from 'node:fs';
import { onInterrupt } from '../../src/interrupt.js';

const [mode, file] = process.argv.slice(2);
onInterrupt(async () => {
  console.log('saving');
  if (mode === 'hang') await new Promise(() => setInterval(() => {}, 1000));
  await new Promise((r) => setTimeout(r, 200));
  writeFileSync(file, 'checkpoint');
  console.log('saved; resume with: foxgate train --resume runs/x');
});
setInterval(() => {}, 1000);
console.log('ready');
