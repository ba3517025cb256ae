/** The dialog study's report page: results.md's tables as HTML, with the plots inline. */
import type { StudyResults } from '@foxgate/train';
import type { StudyPlot } from './study-plots.js';
import { esc } from './svg.js';

const CSS = `body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:22px}h2{font-size:17px;margin:28px 0 8px}
table{border-collapse:collapse;background:#fff;margin:8px 0}td,th{border:1px solid #dde1e7;padding:3px 8px;text-align:left}
figure{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin:0 0 16px;padding:10px}figure svg{max-width:100%;height:auto;display:block}
svg .t{font-size:14px;font-weight:600;fill:#1d2330}svg .tick{font-size:11px;fill:#4a5160}svg .lab,svg .leg{font-size:12px;fill:#1d2330}
svg .cell{font-size:10px}svg .bg{fill:#fbfcfd}svg .grid{stroke:#e3e6eb}svg .axis{stroke:#6b7280}`;

/** Markdown (as `studyMarkdown` writes it: headings, lists, pipe tables, paragraphs) to HTML. */
export function markdownToHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split('\n');
  const inline = (s: string) => esc(s).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith('# ')) out.push(`<h1>${inline(l.slice(2))}</h1>`);
    else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('- ')) {
      const items: string[] = [];
      for (; i < lines.length && lines[i].startsWith('- '); i++) items.push(`<li>${inline(lines[i].slice(2))}</li>`);
      i--;
      out.push(`<ul>${items.join('')}</ul>`);
    } else if (l.startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].startsWith('|'); i++)
        rows.push(
          lines[i]
            .slice(1, -1)
            .split('|')
            .map((c) => c.trim()),
        );
      i--;
      const [head, , ...body] = rows;
      out.push(
        `<table><tr>${head.map((c) => `<th>${inline(c)}</th>`).join('')}</tr>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</table>`,
      );
    } else if (l.trim()) out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}

/** One self-contained page: the tables, then every plot. */
export function renderStudyReport(r: StudyResults, markdown: string, plots: readonly StudyPlot[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>foxgate dialog study (${esc(r.finished)})</title>
<style>${CSS}</style>
</head>
<body>
<main>
${markdownToHtml(markdown)}
<h2>Plots</h2>
${plots.map((p) => `<figure data-file="${esc(p.file)}">${p.svg}</figure>`).join('\n')}
</main>
</body>
</html>
`;
}
