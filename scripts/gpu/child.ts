/*
 * Runs one part of a GPU check script in a child process with a kill timer (a kernel that hangs
 * the device costs its timeout, not the run). The child prints its rows as `RESULT {json}` lines;
 * everything else it prints is kept as the stderr tail of the closing 'exit' row.
 */
import { spawn } from 'node:child_process';

export type ChildRow = Record<string, unknown> & { name: string; ok: boolean };

/**
 * `node <this script> --child ...args`; resolves with the child's rows plus a 'timeout' row (when
 * killed) and an 'exit' row (code, signal, seconds, stderr tail), each carrying the fields of
 * `tag`; `show` prints each result row as it arrives.
 */
export function runChild<R extends ChildRow>(
  args: string[],
  tag: Record<string, unknown>,
  timeoutMs: number,
  show: (r: R) => void,
): Promise<R[]> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [process.argv[1], '--child', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const rows: R[] = [];
    const label = Object.values(tag).join(' ');
    let err = '';
    let buf = '';
    const t0 = Date.now();
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith('RESULT ')) {
          if (line.trim()) err += `${line}\n`;
          continue;
        }
        const r = JSON.parse(line.slice(7)) as R;
        rows.push(r);
        show(r);
      }
    });
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => {
      rows.push({ ...tag, name: 'timeout', ok: false, msg: `killed after ${timeoutMs} ms` } as unknown as R);
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      const tail = err
        .split('\n')
        .filter((l) => !/artificially reduced/.test(l))
        .slice(-12)
        .join('\n');
      rows.push({ ...tag, name: 'exit', ok: code === 0, code, signal, seconds: (Date.now() - t0) / 1000, stderr: tail } as unknown as R);
      if (code !== 0 || tail.trim()) console.log(`  [${label}] exit ${code ?? signal}: ${tail.slice(-1500)}`);
      resolve(rows);
    });
  });
}
