/**
 * `onnx-fit search model.onnx --sensitivity s.json (--avg-bits B | --bytes N | --bops N)`: the
 * per-layer bit widths with the least FIT under the budget (exact), a table on stdout, and with
 * --json { config, fit, bytes, averageBits, bops, budget, layers, frontier }.
 */
import type { Command } from 'commander';
import { writeFileAtomic } from '../atomic.js';
import { basename } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { SensitivityReport } from '../fisher/report.js';
import type { Budget, SearchResult } from '../search/mixed-precision.js';
import { bitList, collect, parseShapes, positiveInt, positiveNumber, readJsonFile } from './options.js';
export { bitList } from './options.js';
import { table } from './inspect.js';
import { checkReportDescribesModel, compact } from './sensitivity.js';

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
  const n = Number(pct ? v.trim().slice(0, -1) : v);
  const f = pct ? n / 100 : n;
  if (v.trim() === '' || !Number.isFinite(f) || f < 0 || f >= 1)
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

export async function runSearch(model: string, o: SearchCliOptions): Promise<void> {
  if (o.sensitivity === undefined) throw new InvalidOptionError('Expected --sensitivity FILE.json, the JSON written by onnx-fit sensitivity --json');
  if (o.maxDrop !== undefined) return runBounded(model, o);
  const given = (['avgBits', 'bytes', 'bops'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1)
    throw new InvalidOptionError(
      `Expected exactly one budget, --avg-bits B, --bytes N or --bops N, but received ${given.length === 0 ? 'none' : given.map((k) => (k === 'avgBits' ? '--avg-bits' : `--${k}`)).join(' and ')}`,
    );
  const budget: Budget = o.avgBits !== undefined ? { averageBits: o.avgBits } : o.bytes !== undefined ? { bytes: o.bytes } : { bops: o.bops! };
  const report = SensitivityReport.fromJSON(readJsonFile(o.sensitivity, 'sensitivity JSON'), o.sensitivity);

  // the sensitivity JSON must describe this model
  const { readModel } = await import('../onnx/read.js');
  const m = readModel(model);
  checkReportDescribesModel(o.sensitivity, model, m, report.layers);

  let macs: Record<string, number> | undefined;
  if ('bops' in budget) {
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
async function runBounded(model: string, o: SearchCliOptions): Promise<void> {
  const { dataSpec } = await import('./sensitivity.js');
  const { ProgressBar } = await import('./progress.js');
  const { searchWithinDrop } = await import('../search/bounded.js');
  if (o.bops !== undefined) throw new InvalidOptionError('--max-drop orders the frontier by weight bytes; drop --bops');
  const data = dataSpec(o.input ?? [], o.inputName ?? [], o.labels);
  const report = SensitivityReport.fromJSON(readJsonFile(o.sensitivity!, 'sensitivity JSON'), o.sensitivity);
  const { readModel } = await import('../onnx/read.js');
  checkReportDescribesModel(o.sensitivity!, model, readModel(model), report.layers);
  const bar = new ProgressBar({ label: 'evaluate', quiet: o.quiet });
  const r = await searchWithinDrop(model, report, {
    data,
    maxDrop: o.maxDrop!,
    foldBatchNorm: report.foldBatchNorm,
    ...(o.weightBits && { weightBits: o.weightBits }),
    ...(o.activationBits && { activationBits: o.activationBits }),
    ...(o.workers !== undefined && { workers: o.workers }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    onProgress: (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' }),
  });
  bar.finish('done');
  const pctOf = (v: number) => (r.metric === 'output MSE' ? compact(v) : `${(100 * v).toFixed(2)}%`);
  const rows = r.evaluations.map((e, i) => [String(i + 1), `${e.index + 1}/${r.frontier.length}`, e.point.averageBits.toFixed(3), int(e.point.bytes), compact(e.point.fit), pctOf(e.value), pctOf(e.damage), e.withinBound ? 'yes' : 'no']);
  const out = [
    `Model ${basename(model)}: the smallest frontier configuration whose ${r.metric} drop is at most ${pctOf(r.maxDrop)} (float ${pctOf(r.float)}), by bisection`,
    '',
    table(rows, ['#', 'frontier point', 'avg bits', 'bytes', 'FIT', r.metric, 'drop', 'within']),
    '',
    r.point
      ? `chosen: ${r.point.averageBits.toFixed(3)} average bits, ${int(r.point.bytes)} bytes, FIT ${compact(r.point.fit)}, after ${r.evaluations.length} evaluations`
      : `no frontier configuration stays within the bound (even the largest drops ${pctOf(r.evaluations[0]!.damage)})`,
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
  p.command('search')
    .description('per-layer bit widths with the least FIT under a budget (exact), from a sensitivity JSON')
    .argument('<model>', 'model.onnx')
    .option('--sensitivity <file>', 'sensitivity JSON written by onnx-fit sensitivity --json')
    .option('--avg-bits <b>', 'budget: average weight bits (weighted by weight count)', positiveNumber('--avg-bits'))
    .option('--bytes <n>', 'budget: total weight bytes', positiveNumber('--bytes'))
    .option('--bops <n>', 'budget: bit-operations per sample, sum of MACs x weight bits x activation bits', positiveNumber('--bops'))
    .option('--weight-bits <list>', 'candidate weight bit widths (default 2,3,4,5,6,8)', bitList('--weight-bits'))
    .option('--activation-bits <list>', 'candidate activation bit widths (default 8)', bitList('--activation-bits'))
    .option('--shape <spec>', 'concrete input shape for counting MACs (--bops) when dims are dynamic: NAME=1x3x48x192', collect, [])
    .option('--max-drop <d>', 'instead of a budget: the smallest configuration whose measured accuracy drop (1 - agreement without labels) is at most this, e.g. 1% (needs --input)', parseDrop)
    .option('--input <file>', 'with --max-drop: evaluation inputs .npy', collect, [])
    .option('--input-name <spec>', 'with --max-drop: NAME=FILE.npy for each input of a model with several', collect, [])
    .option('--labels <file>', 'with --max-drop: labels .npy (accuracy; without: agreement with the float model)')
    .option('--workers <n>', 'with --max-drop: evaluation worker threads', positiveInt('--workers'))
    .option('--quiet', 'no progress on stderr')
    .option('--json <file>', 'write { config, fit, bytes, averageBits, bops, budget, layers, frontier } as JSON (with --max-drop also every evaluation)')
    .action(runSearch);
}
