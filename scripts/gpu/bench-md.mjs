// `node bench-md.mjs FILE [TITLE] [--keys k1,k2,…] [--prefix KEY=TEXT]`: one markdown table of
// the rows in FILE, on stdout (--keys: only these columns; --prefix: only rows whose KEY starts
// with TEXT).
// FILE is what the device steps of bench-all.sh write: `foxgate bench --json` output
// ({ date, rows: [{ bench, case, impl, value, unit, note, failed? }] }), a JSON array of row
// objects (check-matmul-high.mjs), or JSON lines (torch_ref.py, fox_triton_ref.py). Plain Node,
// no dependencies: it runs on the GPU machine next to the bundle (copied by scripts/gpu/build.sh).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const onlyKeys = opt('--keys')?.split(',');
const prefix = opt('--prefix')?.split('=');
const [file, title] = args;
if (!file || (prefix && prefix.length !== 2)) {
  console.error('usage: node bench-md.mjs FILE [TITLE] [--keys k1,k2,…] [--prefix KEY=TEXT]');
  process.exit(2);
}
const text = readFileSync(file, 'utf8');
let date;
let rows;
try {
  const parsed = JSON.parse(text);
  if (Array.isArray(parsed)) rows = parsed;
  else if (parsed && Array.isArray(parsed.rows)) {
    rows = parsed.rows;
    date = parsed.date;
  } else rows = [parsed];
} catch {
  // JSON lines; a line that is not JSON is kept as a note row
  rows = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { line: l };
      }
    });
}

const cell = (v) => {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    return a === 0 || (a >= 1e-3 && a < 1e7) ? String(Number(v.toPrecision(5))) : v.toExponential(3);
  }
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.replaceAll('|', '\\|').replaceAll('\n', ' ');
};

if (prefix) rows = rows.filter((r) => String(r[prefix[0]] ?? '').startsWith(prefix[1]));

// the bench-row layout first, then every other key in order of first appearance
const preferred = ['bench', 'variant', 'case', 'name', 'impl', 'value', 'unit', 'tflops', 'ms', 'ok', 'failed', 'note'];
const seen = new Set();
for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
const keys = onlyKeys ?? [...preferred.filter((k) => seen.has(k)), ...[...seen].filter((k) => !preferred.includes(k))];

const out = [];
if (title) out.push(`### ${title}`, '');
out.push(`Source: \`${file}\`${date ? `, written ${date}` : ''}; ${rows.length} rows.`, '');
out.push(`| ${keys.join(' | ')} |`, `| ${keys.map(() => '---').join(' | ')} |`);
for (const r of rows) out.push(`| ${keys.map((k) => cell(r[k])).join(' | ')} |`);
const failed = rows.filter((r) => r.failed === true || r.ok === false);
if (failed.length) out.push('', `**${failed.length} row(s) FAILED or not ok.**`);
console.log(out.join('\n'));
