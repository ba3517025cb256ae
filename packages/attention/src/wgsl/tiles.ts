import type { RowLayout } from './rows.js';
import { dv } from './util.js';

/**
 * Cooperative tile loads of `[B,T,H,D]` rows into workgroup memory, plain or register-pipelined.
 * The generated loops use the kernel's `lid` (thread index), `NT` (threads), `DV` / `DVP` (vec4
 * groups of D, and that plus one for padded rows), `b`, `h` and the row accessors (`rowAccessor`).
 */

export interface TileLoad {
  /** Local variable, workgroup array, accessor, and whether the value is pre-scaled by scale·log2 e. */
  v: string;
  dst: string;
  ld: string;
  scaled?: boolean;
}

/**
 * Cooperative load of a tile of rows `origin + r` (r < `rows`, zero past `T`) of one or more
 * `[B,T,H,D]` inputs into workgroup arrays, as vec4 groups; `padded` rows are DVP long (the
 * arrays read across rows), others DV.
 */
export function loadTile(
  indent: string,
  rows: 'BQ' | 'BK',
  t: 'i' | 'j',
  origin: string,
  T: string,
  padded: boolean,
  loads: TileLoad[],
): string {
  const read = (l: TileLoad) => `${l.ld}(b, ${t}, h, x % DV)${l.scaled ? ' * P.scale2' : ''}`;
  const cond =
    loads.length === 1
      ? [`if (${t} < ${T}) { ${loads[0].v} = ${read(loads[0])}; }`]
      : [`if (${t} < ${T}) {`, ...loads.map((l) => `  ${l.v} = ${read(l)};`), '}'];
  const body = [
    ...(padded ? ['let r = x / DV;', `let ${t} = ${origin} + r;`] : [`let ${t} = ${origin} + x / DV;`]),
    ...loads.map((l) => `var ${l.v} = vec4<f32>(0.0);`),
    ...cond,
    ...loads.map((l) => `${l.dst}[${padded ? 'r * DVP + x % DV' : 'x'}] = ${l.v};`),
  ];
  return [`${indent}for (var x = lid; x < ${rows} * DV; x += NT) {`, ...body.map((l) => `${indent}  ${l}`), `${indent}}`].join('\n');
}

/** Register prefetch of a streamed tile (see `FoxTileConfig.pf`). */
export interface Prefetch {
  /** Register declarations (once, before the loop). */
  decl: string;
  /** Issues the global reads of the tile whose first row is `origin` into the registers. */
  load: (origin: string) => string;
  /** Writes the registers to workgroup memory (between barriers). */
  store: string;
}

export function joinPrefetch(ps: Prefetch[]): Prefetch {
  return {
    decl: ps.map((p) => p.decl).join(''),
    load: (origin) => ps.map((p) => p.load(origin)).join(''),
    store: ps.map((p) => p.store).join(''),
  };
}

/**
 * `loadTile` split for pipelining: each thread owns vec4 units `x = lid + u·NT` of the
 * `rows × DV` tile (rows past `T` read as zero) and keeps them in registers `<v><u>`.
 */
export function prefetchTile(spec: RowLayout, rows: number, nt: number, T: string, padded: boolean, loads: TileLoad[]): Prefetch {
  const units = rows * dv(spec.D);
  const per = Math.ceil(units / nt);
  const guard = spec.dynamic === true || units % nt !== 0;
  const inTile = `x < ${rows}u * DV`;
  let decl = '';
  let load = '';
  let store = '';
  for (let u = 0; u < per; u++) {
    const x = `      let x = lid + ${u * nt}u;\n`;
    decl += loads.map((l) => `  var ${l.v}${u} = vec4<f32>(0.0);\n`).join('');
    load += `    {\n${x}      let t = ORIGIN + x / DV;\n${loads.map((l) => `      ${l.v}${u} = vec4<f32>(0.0);\n`).join('')}`;
    load += `      if (${guard ? `${inTile} && ` : ''}t < ${T}) {\n`;
    load += loads.map((l) => `        ${l.v}${u} = ${l.ld}(b, t, h, x % DV)${l.scaled ? ' * P.scale2' : ''};\n`).join('');
    load += '      }\n    }\n';
    const dst = padded ? '(x / DV) * DVP + x % DV' : 'x';
    const body = loads.map((l) => `${l.dst}[${dst}] = ${l.v}${u};`).join(' ');
    store += `    {\n${x}      ${guard ? `if (${inTile}) { ${body} }` : body}\n    }\n`;
  }
  return { decl, load: (origin) => load.replaceAll('ORIGIN', `(${origin})`), store };
}

/** One value per tile row (Λ, lse, δ) prefetched like `prefetchTile`: `read(t)` at row t = origin + x. */
export function prefetchRows(
  rows: number,
  nt: number,
  items: { v: string; dst: string; read: (t: string) => string; store?: (v: string) => string }[],
): Prefetch {
  const per = Math.ceil(rows / nt);
  let decl = '';
  let load = '';
  let store = '';
  for (let u = 0; u < per; u++) {
    const head = `    {\n      let x = lid + ${u * nt}u;\n      if (x < ${rows}u) {`;
    decl += items.map((it) => `  var ${it.v}${u} = 0.0;\n`).join('');
    load += `${head} ${items.map((it) => `${it.v}${u} = ${it.read('ORIGIN + x')};`).join(' ')} }\n    }\n`;
    store += `${head} ${items.map((it) => `${it.dst}[x] = ${it.store ? it.store(`${it.v}${u}`) : `${it.v}${u}`};`).join(' ')} }\n    }\n`;
  }
  return { decl, load: (origin) => load.replaceAll('ORIGIN', `(${origin})`), store };
}
