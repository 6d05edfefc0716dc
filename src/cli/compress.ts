/**
 * `onnx-fit compress model.onnx --input x.npy [--labels y.npy] (--target T | --targets T1,T2,...)`:
 * FITCompress (joint pruning + quantization) to a compression target, measured with
 * onnxruntime-node beside the float model and three baselines at the same compression (uniform
 * quantization + global magnitude pruning, FIT mixed precision alone, magnitude pruning alone).
 *
 * One target: the plan (step, move, cost, compression, FIT), the final per-layer bits and
 * sparsity, and the measurements. --targets: one line per plan, the per-layer bits / sparsity per
 * target, and the accuracy/compression curve table; --curves writes the curves JSON that
 * `onnx-fit report --curves` draws (the --targets --json document has the same top-level metric and
 * curves, so it can be drawn too). --out writes the compressed model; with --targets, one file per
 * target, the target inserted before the extension (small.onnx -> small-t0.1.onnx).
 */
import type { Command } from 'commander';
import { basename, extname } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import type { CompressCurve, CompressResult, CompressModelProgress, MeasuredBaseline } from '../search/compress.js';
import type { ExportFormat } from '../onnx/write.js';
import { addDataOptions, addRunOptions, dataSpec, nonNegativeInt, numberOption, oneOf, parseShapes, positiveInt, runOptions, writeJsonAtomic, type RunCliOptions } from './options.js';
import { compact, pct } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress } from './progress.js';

interface CompressCliOptions extends RunCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  target?: number;
  targets?: number[];
  algorithm?: 'astar' | 'greedy';
  reestimate?: 'never' | 'every-k' | 'each-expansion';
  reestimateEvery?: number;
  out?: string;
  format: ExportFormat;
  json?: string;
  curves?: string;
  seed?: number;
  baselines: boolean;
}

const fraction = numberOption('a compression in (0, 1] (e.g. 0.1)', (n) => n > 0 && n <= 1);

const fractionList = (v: string): number[] => {
  const parts = v.split(',').map((s) => s.trim());
  const list = parts.map(Number);
  if (parts.some((p) => p === '') || !list.every((n) => n > 0 && n <= 1) || new Set(list).size !== list.length)
    throw new InvalidOptionError(`Expected a comma-separated list of distinct compressions in (0, 1] (e.g. 0.25,0.1,0.05) for option --targets but received '${v}'`);
  return list;
};

const ratio = (v: number | null) => (v === null ? '-' : v.toFixed(4));

/** The file for one target of --targets: small.onnx -> small-t0.1.onnx */
export function targetPath(out: string, target: number): string {
  const ext = extname(out);
  return `${ext ? out.slice(0, -ext.length) : out}-t${target}${ext || '.onnx'}`;
}

function moveText(m: CompressResult['plan']['plan'][number]['move']): string {
  if (m.kind === 'prune') return `prune ${(100 * m.fromLevel).toFixed(1)}% -> ${(100 * m.toLevel).toFixed(1)}%`;
  const b = (x: number) => (x === 32 ? 'float' : `${x}-bit`);
  return `${m.layer} ${b(m.fromBits)} -> ${b(m.toBits)}`;
}

function planTable(r: CompressResult): string {
  const rows = r.plan.plan.map((s, i) => [String(i + 1), moveText(s.move), compact(s.cost), s.compression.toFixed(4), compact(s.fit)]);
  return table(rows, ['step', 'move', 'cost', 'compression', 'FIT']);
}

function layersTable(results: CompressResult[]): string {
  const layers = results[0]!.report.layers;
  const many = results.length > 1;
  const rows = layers.map((l) => [
    l.name,
    l.op,
    String(l.weight.count),
    ...results.flatMap((r) => {
      const bits = r.config.weights[l.name];
      const b = bits === undefined ? 'float' : String(bits);
      const s = `${(100 * r.plan.final.sparsity[l.name]!).toFixed(1)}%`;
      return many ? [`${b} / ${s}`] : [b, s];
    }),
  ]);
  const head = many ? results.map((r) => `t=${r.target}: bits / pruned`) : ['bits', 'pruned'];
  return table(rows, ['layer', 'op', 'weights', ...head]);
}

function measuredTable(r: CompressResult, baselineName: (n: string) => string): string {
  const metric = r.metric ?? 'accuracy';
  const drop = (v: number | null) => (v === null || r.float === null ? '-' : pct(r.float - v));
  const value = (m: CompressResult['measured']) => (!m ? null : metric === 'accuracy' ? m.accuracy : m.agreement);
  const row = (name: string, c: number | null, m: CompressResult['measured']) => [
    name, ratio(c), pct(value(m)), m ? drop(value(m)) : '-', metric === 'accuracy' ? pct(m?.agreement) : compact(m?.outputMse), compact(m?.kl),
  ];
  const rows = [
    ['float32', '1.0000', pct(r.float), '-', '-', '-'],
    row('FITCompress', r.compression, r.measured),
    ...r.baselines.map((b: MeasuredBaseline) =>
      b.reachable ? row(`${baselineName(b.name)} (${b.label})`, b.compression, b.measured) : [`${baselineName(b.name)}`, 'unreachable', '-', '-', '-', '-'],
    ),
  ];
  return table(rows, ['model', 'compression', metric, 'drop', metric === 'accuracy' ? 'agreement' : 'output MSE', 'KL']);
}

function curveTable(c: CompressCurve, baselineName: (n: string) => string): string {
  const metric = c.metric ?? 'accuracy';
  const value = (m: CompressResult['measured']) => (!m ? null : metric === 'accuracy' ? m.accuracy : m.agreement);
  const names = c.results[0]!.baselines.map((b) => b.name);
  const rows = c.results.map((r) => [
    String(r.target),
    `${pct(value(r.measured))} @ ${ratio(r.compression)}`,
    ...names.map((n) => {
      const b = r.baselines.find((x) => x.name === n)!;
      return b.reachable ? `${pct(value(b.measured))} @ ${ratio(b.compression)}` : 'unreachable';
    }),
  ]);
  return table(rows, ['target', 'FITCompress', ...names.map(baselineName)]);
}

/** The --json document of one result (no weight arrays or masks). */
function resultJson(r: CompressResult, out?: string) {
  const { plan } = r;
  return {
    target: r.target,
    compression: r.compression,
    sparsity: r.sparsity,
    config: r.config,
    final: plan.final,
    plan: plan.plan,
    scales: plan.scales,
    algorithm: plan.algorithm,
    fallback: plan.fallback,
    expansions: plan.expansions,
    reestimations: plan.reestimations,
    totalCost: plan.totalCost,
    ms: plan.ms,
    metric: r.metric,
    float: r.float,
    measured: r.measured,
    baselines: r.baselines.map(({ masks: _m, ...b }) => b),
    ...(out && { out }),
  };
}

export async function runCompress(model: string, o: CompressCliOptions): Promise<void> {
  if ((o.target === undefined) === (o.targets === undefined))
    throw new InvalidOptionError(`Expected exactly one of --target T or --targets T1,T2,... but received ${o.target === undefined ? 'neither' : 'both'}`);
  if (o.reestimateEvery !== undefined && o.reestimate !== 'every-k')
    throw new InvalidOptionError(`Expected --reestimate every-k with option --reestimate-every but received --reestimate ${o.reestimate ?? 'never'}`);
  const data = dataSpec(o.input, o.inputName, o.labels);
  const inputShapes = parseShapes(o.shape);
  const { compressCurve, exportCompressed, baselineTitle } = await import('../search/compress.js');
  const targets = o.targets ?? [o.target!];
  const bars = { sensitivity: new ProgressBar({ label: 'sensitivity', quiet: o.quiet }), evaluate: new ProgressBar({ label: 'evaluate', quiet: o.quiet }) };
  const onProgress = (p: CompressModelProgress) => {
    if (p.phase === 'plan') return;
    if (p.phase === 'evaluate') bars.sensitivity.finish('done');
    samplesProgress(bars[p.phase])(p);
  };
  let curve: CompressCurve;
  try {
    curve = await compressCurve(model, {
      data,
      targets,
      baselines: o.baselines,
      ...(o.algorithm && { algorithm: o.algorithm }),
      ...(o.reestimate && { reestimate: o.reestimate }),
      ...(o.reestimateEvery !== undefined && { reestimateEvery: o.reestimateEvery }),
      ...runOptions(o),
      ...(o.seed !== undefined && { seed: o.seed }),
      ...(Object.keys(inputShapes).length > 0 && { inputShapes }),
      onProgress,
    });
  } finally {
    bars.sensitivity.finish('done');
    bars.evaluate.finish('done');
  }
  const outs: (string | undefined)[] = [];
  for (const r of curve.results) {
    const path = o.out === undefined ? undefined : o.targets ? targetPath(o.out, r.target) : o.out;
    if (path) await exportCompressed(model, r, path, { format: o.format });
    outs.push(path);
  }
  const lines: string[] = [];
  const first = curve.results[0]!;
  const samples = first.measured?.samples;
  const alg = first.plan.algorithm === 'astar' ? 'A*' : 'greedy';
  if (!o.targets) {
    const r = first;
    lines.push(`Model ${basename(model)}: FITCompress to compression ${r.target} (${alg}, ${r.plan.plan.length} steps${r.plan.fallback ? ', A* hit its expansion limit and finished greedily' : ''}${r.plan.reestimations ? `, ${r.plan.reestimations} Fisher re-estimations` : ''})`);
    lines.push('', planTable(r), '', layersTable([r]), '');
    lines.push(`compression ${r.compression.toFixed(4)} (target ${r.target}), ${(100 * r.sparsity).toFixed(1)}% of the weights pruned, FIT ${compact(r.plan.final.fit)}`);
    lines.push('', `Measured with onnxruntime-node on ${samples} samples (${r.metric === 'accuracy' ? 'accuracy against the labels' : 'agreement with the float model; no labels'}):`, '', measuredTable(r, baselineTitle));
  } else {
    lines.push(`Model ${basename(model)}: FITCompress at ${targets.length} targets (${alg})`, '');
    lines.push(table(curve.results.map((r) => [String(r.target), String(r.plan.plan.length), r.compression.toFixed(4), `${(100 * r.sparsity).toFixed(1)}%`, compact(r.plan.final.fit)]), ['target', 'steps', 'compression', 'pruned', 'FIT']));
    lines.push('', layersTable(curve.results), '');
    lines.push(`${curve.metric === 'accuracy' ? 'Accuracy' : 'Agreement with the float model'} against compression on ${samples} samples (float32: ${pct(curve.float)}); value @ compression:`, '', curveTable(curve, baselineTitle));
  }
  outs.forEach((p, i) => p && lines.push(`wrote ${p} (${o.format}, compression ${curve.results[i]!.compression.toFixed(4)})`));
  if (o.json) {
    const results = curve.results.map((r, i) => resultJson(r, outs[i]));
    writeJsonAtomic(o.json, o.targets ? { version: 1, model: basename(model), targets, ...curve.curves, metric: curve.metric, float: curve.float, results } : { version: 1, model: basename(model), ...results[0]! });
  }
  if (o.curves) writeJsonAtomic(o.curves, curve.curves);
  process.stdout.write(lines.join('\n') + '\n');
}

export function registerCompress(p: Command): void {
  const cmd = p
    .command('compress')
    .description('FITCompress: plan joint pruning + quantization to a compression target, measure it beside the float model and three baselines')
    .argument('<model>', 'model.onnx');
  addDataOptions(cmd, {
    input: 'calibration and evaluation inputs .npy, samples on axis 0 (a single-input model)',
    labels: 'labels .npy (accuracy); without: agreement with the float model',
    shape: true,
  });
  cmd
    .option('--target <t>', 'compression to reach: active bytes / fp32 bytes of the quantizable weights, e.g. 0.1', fraction('--target'))
    .option('--targets <list>', 'several targets, e.g. 0.25,0.1,0.05,0.02: the accuracy/compression curve', fractionList)
    .option('--algorithm <name>', "planner: 'astar' (default) or 'greedy'", oneOf('--algorithm', ['astar', 'greedy'] as const))
    .option('--reestimate <mode>', "Fisher re-estimation along the plan: 'never' (default), 'every-k' or 'each-expansion' (after every move)", oneOf('--reestimate', ['never', 'every-k', 'each-expansion'] as const))
    .option('--reestimate-every <k>', 'moves between re-estimations with --reestimate every-k (default 10)', positiveInt('--reestimate-every'))
    .option('--out <file>', 'write the compressed model (with --targets: one file per target, FILE-tT.onnx)')
    .option('--format <format>', "'qdq' (integer weights + DequantizeLinear, default) or 'fake-quant'", oneOf('--format', ['qdq', 'fake-quant'] as const), 'qdq')
    .option('--json <file>', 'write the plan(s), final bits and sparsity, measurements and baselines as JSON')
    .option('--curves <file>', 'write the accuracy/compression curves JSON (onnx-fit report --curves draws it)')
    .option('--no-baselines', 'measure the plan only')
    .option('--seed <n>', 'seed of the label draws of the label-free Fisher', nonNegativeInt('--seed'));
  addRunOptions(cmd, { maxSamples: 'use at most this many samples (sensitivity and evaluation)', foldBn: 'do not fold BatchNormalization' });
  cmd.action(runCompress);
}
