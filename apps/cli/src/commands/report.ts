import { join } from 'node:path';
import { defineCommand, flag, outputFlags } from '../args.js';
import { checkWritableFile, writeFileAtomic } from '../files.js';
import { renderReport } from '../report/html.js';
import { loadRun } from '../report/run.js';
import { isStudyFolder, reportStudy } from '../report/study-report.js';
import { terminalCharts } from '../report/terminal.js';

/** `foxgate report RUN_DIR`: writes RUN_DIR/report.html and prints terminal charts. */
export const reportCommand = defineCommand(
  {
    name: 'report',
    summary: 'writes RUN_DIR/report.html (self-contained page, inline SVG plots) and prints terminal charts',
    args: { name: 'RUN_DIR', help: 'a run folder made by foxgate train (config.json, metrics.jsonl, eval.json)', min: 1, max: 1 },
    flags: {
      quiet: flag.bool({ help: 'print only the path of the report', short: 'q' }),
      json: outputFlags.json,
    },
    notes:
      'Plots: loss vs tokens (train and validation), loss by position, length extrapolation, forget-gate\ndecay per layer and head, ACP pruned fraction per layer. A plot whose data the run lacks is a note.',
    examples: ['foxgate report runs/demo'],
  },
  async ({ flags, args }) => {
    const dir = args[0];
    if (isStudyFolder(dir)) {
      const s = reportStudy(dir); // a dialog-study folder: its tables and plots
      console.log(
        flags.json
          ? JSON.stringify({ report: s.report, plots: s.plots, notes: [] })
          : flags.quiet
            ? s.report
            : `report: ${s.report} (dialog study, ${s.plots.length} plots)`,
      );
      return 0;
    }
    const run = loadRun(dir);
    const path = join(dir, 'report.html');
    checkWritableFile(path, 'report');
    const r = renderReport(run);
    writeFileAtomic(path, r.html);
    if (flags.json) {
      console.log(JSON.stringify({ report: path, plots: r.plots, notes: r.notes }));
      return 0;
    }
    if (flags.quiet) {
      console.log(path);
      return 0;
    }
    const charts = terminalCharts(run);
    if (charts) console.log(charts);
    for (const n of r.notes) console.log(`note: ${n}`);
    console.log(`report: ${path} (${r.plots.length} of 5 plots)`);
    return 0;
  },
);
