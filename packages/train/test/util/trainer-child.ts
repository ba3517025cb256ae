/**
 * A training run in its own process, for the kill-and-resume tests (run with
 * `node --conditions=source --import tsx trainer-child.ts '<json>'`). The JSON argument holds
 * `{ config, out, blockAtStep? }`. Every step prints `step <n> <loss as JSON>` and every
 * checkpoint `checkpoint <n>` (stdout is a pipe: synchronous on Linux, so a line is out before
 * the next step). At `blockAtStep` the process prints `blocked <n>` and then waits forever
 * without returning to the loop, so the parent can SIGKILL it at a known point.
 */
import { train } from '../../src/index.js';

const { config, out, blockAtStep } = JSON.parse(process.argv[2] ?? '{}') as {
  config: Record<string, unknown>;
  out: string;
  blockAtStep?: number;
};

const line = (s: string) => process.stdout.write(`${s}\n`);

await train(config, {
  out,
  skipFinalEval: true,
  hooks: {
    onStep: (m) => {
      line(`step ${m.step} ${JSON.stringify(m.loss)}`);
      if (m.step === blockAtStep) {
        line(`blocked ${m.step}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      }
    },
    onCheckpoint: (_dir, step) => line(`checkpoint ${step}`),
  },
});
line('done');
