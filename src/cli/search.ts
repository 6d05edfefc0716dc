/**
 * `onnx-fit search model.onnx --sensitivity s.json (--avg-bits B | --bytes N | --bops N)`: the
 * per-layer bit widths with the least FIT under the budget (exact), a table on stdout, and with
 * --json { config, fit, bytes, averageBits, bops, budget, layers, frontier }.
 */
import type { Command } from 'commander';
import { writeFileAtomic } from '../atomic.js';
import { basename } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { Budget, SearchResult } from '../search/mixed-precision.js';
import { addDataOptions, addRunOptions, bitList, collect, dataSpec, parseShapes, positiveNumber, runOptions } from './options.js';
import { compact, metricValue } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress } from './progress.js';
import { loadReport } from './sensitivity.js';

/**
 * The --json output: pretty, except one line per frontier point (there can be thousands, each
 * with a bit width per layer). Written to a temp file and renamed.
 */
export function writeSearchJson(path: string, value: Record<string, unknown> & { frontier: unknown[] }): void {
  const head = JSON.stringify({ ...value, frontier: [] }, null, 2);
  // a raw newline cannot occur inside a JSON string, so this is the top-level key
  const lines = value.frontier.map((p) => `    ${JSON.stringify(p)}`).join(',\n');
  const text = head.replace('\n  "frontier": []', () => `\n  "frontier": [${lines ? `\n${lines}\n  ` : ''}]`);
  writeFileAtomic(path, text + '\n', '--json');
}

export interface SearchCliOptions {
  sensitivity?: string;
  avgBits?: number;
  bytes?: number;
  bops?: number;
  weightBits?: number[];
  activationBits?: number[];
  shape: string[];
  json?: string;
  /** accuracy-bounded mode: the largest accuracy drop (fraction) */
  maxDrop?: number;
  input?: string[];
  inputName?: string[];
  labels?: string;
  workers?: number;
  maxSamples?: number;
  quiet?: boolean;
}

/** --max-drop 1% or 0.01 */
export function parseDrop(v: string): number {
  const pct = v.trim().endsWith('%');
  const number = pct ? v.trim().slice(0, -1) : v;
  const f = pct ? Number(number) / 100 : Number(number);
  if (number.trim() === '' || !Number.isFinite(f) || f < 0 || f >= 1)
    throw new InvalidOptionError(`Expected a drop like 1% or 0.01 (in [0, 1)) for option --max-drop but received '${v}'`);
  return f;
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');

/** The readable result: per layer (report order) and totals. */
export function formatSearch(model: string, r: SearchResult): string {
  const out: string[] = [];
  const manyAct = new Set(r.layers.map((l) => l.activationBits)).size > 1 || r.budget.kind === 'bops';
  const header = ['layer', 'op', 'weights', 'Tr F_w', 'weight bits', ...(manyAct ? ['activation bits'] : []), 'FIT'];
  const rows = r.layers.map((l) => [
    l.name,
    l.op,
    String(l.weightCount),
    compact(l.weightTrace),
    String(l.weightBits),
    ...(manyAct ? [String(l.activationBits)] : []),
    compact(l.fit),
  ]);
  const budget = r.budget.kind === 'averageBits' ? `${r.budget.value} average bits` : r.budget.kind === 'bytes' ? `${int(r.budget.value)} bytes` : `${int(r.budget.value)} BOPs`;
  out.push(`Model ${basename(model)}: least-FIT bit widths under a budget of ${budget} (exact)`);
  out.push('');
  out.push(table(rows, header));
  out.push('');
  const weights = r.layers.reduce((a, l) => a + l.weightCount, 0);
  const act = manyAct ? '' : `, activations at ${r.layers[0]?.activationBits ?? 8} bits`;
  out.push(`FIT            ${compact(r.fit)}${act}`);
  out.push(`weight bytes   ${int(r.bytes)} (${((100 * r.bytes) / (4 * weights || 1)).toFixed(1)}% of float32)`);
  out.push(`average bits   ${r.averageBits.toFixed(3)}`);
  if (r.bops !== null) out.push(`BOPs           ${int(r.bops)} per sample`);
  out.push(`frontier       ${r.frontier.length} points (--json writes them); searched in ${r.stats.ms.toFixed(1)} ms`);
  return out.join('\n');
}

/** The budget options given: '--avg-bits', '--bytes', '--bops'. */
const budgetsGiven = (o: SearchCliOptions): string[] =>
  (['avgBits', 'bytes', 'bops'] as const).filter((k) => o[k] !== undefined).map((k) => (k === 'avgBits' ? '--avg-bits' : `--${k}`));

export async function runSearch(model: string, o: SearchCliOptions): Promise<void> {
  if (o.sensitivity === undefined) throw new InvalidOptionError('Expected --sensitivity FILE.json, the JSON written by onnx-fit sensitivity --json');
  if (o.maxDrop !== undefined) return runBounded(model, o.sensitivity, o);
  const given = budgetsGiven(o);
  if (given.length !== 1)
    throw new InvalidOptionError(`Expected exactly one budget, --avg-bits B, --bytes N or --bops N, but received ${given.length === 0 ? 'none' : given.join(' and ')}`);
  const budget: Budget = o.avgBits !== undefined ? { averageBits: o.avgBits } : o.bytes !== undefined ? { bytes: o.bytes } : { bops: o.bops! };

  // --bops counts the MACs on the model the report is checked against: read it once
  const m = 'bops' in budget ? (await import('../onnx/read.js')).readModel(model) : undefined;
  const report = await loadReport(o.sensitivity, model, m);
  let macs: Record<string, number> | undefined;
  if (m) {
    const { layerMacs } = await import('../search/macs.js');
    const inputShapes = parseShapes(o.shape);
    macs = layerMacs(m, Object.keys(inputShapes).length ? { inputShapes } : {});
  }
  const { searchMixedPrecision } = await import('../search/mixed-precision.js');
  const result = await searchMixedPrecision(report, {
    budget,
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    ...(macs && { macs }),
  });
  if (o.json)
    writeSearchJson(o.json, {
      config: result.config,
      fit: result.fit,
      bytes: result.bytes,
      averageBits: result.averageBits,
      bops: result.bops,
      budget: result.budget,
      layers: result.layers.map((l) => l.name),
      frontier: result.frontier,
    });
  process.stdout.write(formatSearch(model, result) + '\n');
}

/** --max-drop: bisection over the frontier with real evaluations (src/search/bounded.ts). */
async function runBounded(model: string, sensitivity: string, o: SearchCliOptions): Promise<void> {
  if (o.bops !== undefined) throw new InvalidOptionError('--max-drop orders the frontier by weight bytes; drop --bops');
  const given = budgetsGiven(o);
  if (given.length) throw new InvalidOptionError(`--max-drop is instead of a budget (it picks the smallest frontier configuration within the drop); drop ${given.join(' and ')}`);
  const data = dataSpec(o.input ?? [], o.inputName ?? [], o.labels);
  const report = await loadReport(sensitivity, model);
  const { searchWithinDrop } = await import('../search/bounded.js');
  const bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  const r = await searchWithinDrop(model, report, {
    data,
    maxDrop: o.maxDrop!,
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    // the evaluations fold BatchNorm as the report did
    ...runOptions({ foldBn: report.foldBatchNorm, workers: o.workers, maxSamples: o.maxSamples }),
    onProgress: samplesProgress(bar),
  });
  bar.finish('done');
  const value = (v: number) => metricValue(r.metric, v);
  const rows = r.evaluations.map((e, i) => [String(i + 1), `${e.index + 1}/${r.frontier.length}`, e.point.averageBits.toFixed(3), int(e.point.bytes), compact(e.point.fit), value(e.value), value(e.damage), e.withinBound ? 'yes' : 'no']);
  const out = [
    `Model ${basename(model)}: the smallest frontier configuration whose ${r.metric} drop is at most ${value(r.maxDrop)} (float ${value(r.float)}), by bisection`,
    '',
    table(rows, ['#', 'frontier point', 'avg bits', 'bytes', 'FIT', r.metric, 'drop', 'within']),
    '',
    r.point
      ? `chosen: ${r.point.averageBits.toFixed(3)} average bits, ${int(r.point.bytes)} bytes, FIT ${compact(r.point.fit)}, after ${r.evaluations.length} evaluations`
      : `no frontier configuration stays within the bound (even the largest drops ${value(r.evaluations[0]!.damage)})`,
  ];
  if (o.json)
    writeSearchJson(o.json, {
      config: r.config,
      fit: r.point?.fit ?? null,
      bytes: r.point?.bytes ?? null,
      averageBits: r.point?.averageBits ?? null,
      bops: r.point?.bops ?? null,
      maxDrop: r.maxDrop,
      metric: r.metric,
      float: r.float,
      evaluations: r.evaluations,
      frontier: r.frontier,
    });
  process.stdout.write(out.join('\n') + '\n');
  if (!r.point) process.exitCode = 2;
}

export function registerSearch(p: Command): void {
  const cmd = p
    .command('search')
    .description('per-layer bit widths with the least FIT under a budget (exact), from a sensitivity JSON')
    .argument('<model>', 'model.onnx')
    .option('--sensitivity <file>', 'sensitivity JSON written by onnx-fit sensitivity --json')
    .option('--avg-bits <b>', 'budget: average weight bits (weighted by weight count)', positiveNumber('--avg-bits'))
    .option('--bytes <n>', 'budget: total weight bytes', positiveNumber('--bytes'))
    .option('--bops <n>', 'budget: bit-operations per sample, sum of MACs x weight bits x activation bits', positiveNumber('--bops'))
    .option('--weight-bits <list>', 'candidate weight bit widths (default 2,3,4,5,6,8)', bitList('--weight-bits'))
    .option('--activation-bits <list>', 'candidate activation bit widths (default 8)', bitList('--activation-bits'))
    .option('--shape <spec>', 'concrete input shape for counting MACs (--bops) when dims are dynamic: NAME=1x3x48x192', collect, [])
    .option('--max-drop <d>', 'instead of a budget: the smallest configuration whose measured accuracy drop (1 - agreement without labels) is at most this, e.g. 1% (needs --input)', parseDrop);
  addDataOptions(cmd, {
    input: 'with --max-drop: evaluation inputs .npy',
    inputName: 'with --max-drop: NAME=FILE.npy for each input of a model with several',
    labels: 'with --max-drop: labels .npy (accuracy; without: agreement with the float model)',
  });
  addRunOptions(cmd, { batch: false, maxSamples: false, foldBn: false, workers: 'with --max-drop: evaluation worker threads' });
  cmd
    .option('--json <file>', 'write { config, fit, bytes, averageBits, bops, budget, layers, frontier } as JSON (with --max-drop also every evaluation)')
    .action(runSearch);
}
