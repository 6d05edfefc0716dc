/**
 * `onnx-fit sensitivity` (per-layer Fisher traces over calibration data: a table sorted by
 * sensitivity on stdout, progress on stderr, the version-1 JSON with --json) and `onnx-fit score`
 * (the FIT of a configuration from a sensitivity JSON).
 */
import type { Command } from 'commander';
import { basename } from 'node:path';
import { AbortError, InvalidInputError, InvalidOptionError } from '../errors.js';
import type { DataSpec } from '../data/source.js';
import type { OnnxModel } from '../onnx/read.js';
import type { Estimator, SensitivityOptions, SensitivityProgress } from '../fisher/sensitivity.js';
import { SensitivityReport, type SensitivityJson } from '../fisher/report.js';
import type { LikelihoodOption } from '../fisher/head.js';
import {
  addDataOptions,
  addRunOptions,
  dataSpec,
  nonNegativeInt,
  nonNegativeNumber,
  oneOf,
  parseShapes,
  positiveInt,
  readConfigFile,
  readJsonFile,
  runOptions,
  writeJsonAtomic,
  type RunCliOptions,
} from './options.js';
import { compact } from './format.js';
import { table } from './inspect.js';
import { ProgressBar, samplesProgress, sensitivityState } from './progress.js';

// ---------------------------------------------------------------------------------------------
// option parsers (InvalidOptionError, so main() prints one line and exits 1)

const ESTIMATORS = ['empirical', 'sampled', 'batch'] as const;
const LIKELIHOODS = ['auto', 'categorical', 'bernoulli', 'gaussian'] as const;

// ---------------------------------------------------------------------------------------------
// formatting

const withError = (trace: number, se: number | null) => `${compact(trace)} ± ${compact(se)}`;
const range = (min: number, max: number) => `[${compact(min)}, ${compact(max)}]`;

export interface SensitivityView {
  model: string;
  estimator: string;
  likelihood: string;
  samples: number;
  foldBatchNorm: boolean;
  layers: SensitivityJson['layers'];
}

/** The readable report: a header line and one row per layer, most sensitive (largest weight trace) first. */
export function formatSensitivity(r: SensitivityView): string {
  const out: string[] = [];
  out.push(
    `Model ${r.model}: estimator ${r.estimator}, likelihood ${r.likelihood}, ${r.samples} ${r.samples === 1 ? 'sample' : 'samples'}, foldBatchNorm ${r.foldBatchNorm}`,
  );
  out.push('');
  if (r.layers.length === 0) {
    out.push('No quantizable layers (Conv, ConvTranspose, Gemm or MatMul with a constant weight).');
    return out.join('\n');
  }
  const ranked = [...r.layers].sort((a, b) => b.weight.fisherTrace - a.weight.fisherTrace);
  const rows = ranked.map((l, i) => [
    String(i + 1),
    l.name,
    l.op,
    String(l.weight.count),
    withError(l.weight.fisherTrace, l.weight.stdError),
    withError(l.activation.fisherTrace, l.activation.stdError),
    range(l.weight.min, l.weight.max),
    range(l.activation.min, l.activation.max),
  ]);
  out.push(table(rows, ['rank', 'layer', 'op', 'weights', 'weight trace ± s.e.', 'activation trace ± s.e.', 'weight range', 'activation range']));
  out.push('');
  out.push(`${r.layers.length} quantizable ${r.layers.length === 1 ? 'layer' : 'layers'}, sorted by weight Fisher trace (most sensitive first); ± is one standard error (n/a: too few batches to estimate it).`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// sensitivity

export interface SensitivityCliOptions extends RunCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  estimator?: Estimator;
  likelihood?: LikelihoodOption;
  minSamples?: number;
  tolerance?: number;
  mcSamples?: number;
  seed?: number;
  json?: string;
}

export async function runSensitivity(model: string, o: SensitivityCliOptions): Promise<void> {
  const data = dataSpec(o.input, o.inputName, o.labels);
  if ((o.estimator === 'empirical' || o.estimator === 'batch') && o.labels === undefined)
    throw new InvalidOptionError(`The '${o.estimator}' estimator needs labels: pass --labels FILE.npy, or use --estimator sampled (label-free)`);
  if (o.maxSamples !== undefined && o.minSamples !== undefined && o.minSamples > o.maxSamples)
    throw new InvalidOptionError(`Expected --min-samples (${o.minSamples}) to be at most --max-samples (${o.maxSamples})`);
  const inputShapes = parseShapes(o.shape);
  const { sensitivity } = await import('../fisher/sensitivity.js');

  const bar = new ProgressBar({ label: 'sensitivity', quiet: o.quiet });
  const controller = new AbortController();
  // Ctrl-C: stop after the current batch with ERR_ABORTED; a second one exits at once
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let lastProgress: SensitivityProgress | undefined;
  const options: SensitivityOptions = {
    data,
    ...(o.estimator !== undefined && { estimator: o.estimator }),
    ...(o.likelihood !== undefined && { likelihood: o.likelihood }),
    ...(o.minSamples !== undefined && { minSamples: o.minSamples }),
    ...(o.tolerance !== undefined && { tolerance: o.tolerance }),
    ...(o.mcSamples !== undefined && { mcSamples: o.mcSamples }),
    ...(o.seed !== undefined && { seed: o.seed }),
    // batch size, sample cap, workers: sensitivity()'s own defaults unless given
    ...runOptions(o),
    ...(Object.keys(inputShapes).length > 0 && { inputShapes }),
    signal: controller.signal,
    onProgress: (p) => {
      lastProgress = p;
      bar.update(sensitivityState(p, o.tolerance));
    },
  };
  let report: SensitivityReport;
  try {
    report = await sensitivity(model, options);
    const p = lastProgress;
    const stoppedEarly = p !== undefined && p.total !== undefined && p.samples < p.total;
    const target = o.tolerance ?? 0.05;
    const missed = p !== undefined && target > 0 && !(p.maxRelStdError < target);
    bar.finish(stoppedEarly ? 'converged' : missed ? 'done (all data used; the target was not reached)' : 'done');
  } catch (e) {
    bar.finish(controller.signal.aborted ? 'aborted' : 'failed');
    if (controller.signal.aborted) {
      const at = lastProgress ? ` after ${lastProgress.samples} samples` : '';
      throw new AbortError(`Interrupted${at}; nothing was written`, { cause: e });
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
  const json = report.toJSON();
  if (o.json) writeJsonAtomic(o.json, json);
  process.stdout.write(formatSensitivity(json) + '\n');
}

// ---------------------------------------------------------------------------------------------
// reading a sensitivity JSON (score, search, validate, layers); score

/** Throws InvalidInputError unless every weight the sensitivity JSON names is a tensor of the model. */
export function checkReportDescribesModel(file: string, modelPath: string, model: OnnxModel, layers: readonly { name: string; weight: { name: string } }[]): void {
  const g = model.proto.graph;
  const tensors = new Set<string>();
  for (const t of g?.initializer ?? []) if (t.name) tensors.add(t.name);
  for (const n of g?.node ?? []) for (const o of n.output ?? []) tensors.add(o);
  const missing = layers.filter((l) => !tensors.has(l.weight.name));
  if (missing.length)
    throw new InvalidInputError(
      `${file} does not describe ${modelPath}: the weight${missing.length > 1 ? 's' : ''} ${missing
        .slice(0, 4)
        .map((l) => `'${l.weight.name}' (layer '${l.name}')`)
        .join(', ')}${missing.length > 4 ? ', ...' : ''} ${missing.length > 1 ? 'are' : 'is'} not in the model; run onnx-fit sensitivity on this model`,
    );
}

/**
 * The sensitivity report in `file` (the JSON of onnx-fit sensitivity --json), checked against the
 * model at `modelPath` (read unless `onnx` is that model, already read).
 */
export async function loadReport(file: string, modelPath: string, onnx?: OnnxModel): Promise<SensitivityReport> {
  const report = SensitivityReport.fromJSON(readJsonFile(file, 'sensitivity JSON'), file);
  const m = onnx ?? (await import('../onnx/read.js')).readModel(modelPath);
  checkReportDescribesModel(file, modelPath, m, report.layers);
  return report;
}

export async function runScore(model: string, opts: { sensitivity?: string; config?: string; json?: string }): Promise<void> {
  if (opts.sensitivity === undefined) throw new InvalidOptionError('Expected --sensitivity FILE.json, the JSON written by onnx-fit sensitivity --json');
  if (opts.config === undefined) throw new InvalidOptionError('Expected --config FILE.json, a configuration { "weights": { layer: bits }, "activations": { layer: bits } }');
  const o = { sensitivity: opts.sensitivity, config: opts.config, json: opts.json };
  const report = await loadReport(o.sensitivity, model);
  const config = readConfigFile(o.config);
  let fit: number;
  try {
    fit = report.fit(config);
  } catch (e) {
    // unknown layers and bad bit widths: fit()'s InvalidOptionError, naming the file
    if (e instanceof InvalidOptionError) throw new InvalidOptionError(`${o.config}: ${e.message}`, { cause: e });
    throw e;
  }
  const parts = report.layers
    .filter((l) => config.weights[l.name] !== undefined || config.activations[l.name] !== undefined)
    .map((l) => {
      const wb = config.weights[l.name];
      const ab = config.activations[l.name];
      const w = wb === undefined ? 0 : report.fit({ weights: { [l.name]: wb } });
      const a = ab === undefined ? 0 : report.fit({ activations: { [l.name]: ab } });
      return { l, wb, ab, w, a };
    })
    .sort((x, y) => y.w + y.a - (x.w + x.a));
  const rows = parts.map(({ l, wb, ab, w, a }) => [
    l.name,
    wb === undefined ? 'float' : String(wb),
    wb === undefined ? '-' : compact(w),
    ab === undefined ? 'float' : String(ab),
    ab === undefined ? '-' : compact(a),
    compact(w + a),
  ]);
  const out: string[] = [];
  out.push(`Model ${basename(model)}, sensitivity ${basename(o.sensitivity)} (${report.estimator || '?'} estimator, ${report.samples} samples), configuration ${basename(o.config)}`);
  out.push('');
  if (rows.length) {
    out.push(table(rows, ['layer', 'weight bits', 'weight FIT', 'activation bits', 'activation FIT', 'FIT']));
    const left = report.layers.length - rows.length;
    if (left > 0) out.push('', `${left} other ${left === 1 ? 'layer stays' : 'layers stay'} in float.`);
    out.push('');
  }
  out.push(`FIT = ${compact(fit)}`);
  if (o.json) writeJsonAtomic(o.json, { fit, weights: config.weights, activations: config.activations });
  process.stdout.write(out.join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------
// registration

export function registerSensitivity(p: Command): void {
  const cmd = p
    .command('sensitivity')
    .description('per-layer Fisher traces (FIT sensitivity) over calibration data: a table sorted by sensitivity, --json for the version-1 JSON')
    .argument('<model>', 'model.onnx');
  addDataOptions(cmd, {
    input: 'calibration inputs, .npy with the samples on axis 0 (a single-input model)',
    labels: 'labels .npy: class indices (integers) or regression targets (floats), one per sample',
    shape: true,
  });
  cmd
    .option('--estimator <name>', "Fisher estimator: empirical | sampled | batch (default: empirical with --labels, sampled without)", oneOf('--estimator', ESTIMATORS))
    .option('--likelihood <name>', 'auto | categorical | bernoulli | gaussian (default auto: from the graph)', oneOf('--likelihood', LIKELIHOODS))
    .option('--min-samples <n>', 'never stop before this many samples (default 64)', positiveInt('--min-samples'))
    .option('--tolerance <t>', 'stop when every relative standard error is below this (default 0.05; 0: use all data)', nonNegativeNumber('--tolerance'))
    .option('--mc-samples <n>', 'label draws per input for the sampled estimator (default 1)', positiveInt('--mc-samples'))
    .option('--seed <n>', 'seed of the sampled estimator (default 1)', nonNegativeInt('--seed'))
    .option('--json <file>', 'write the report as JSON (version 1)');
  addRunOptions(cmd, {
    batch: 'samples per batch (default 32)',
    maxSamples: 'use at most this many samples (default: all)',
    workers: 'worker threads (default: one per core; 1 runs on the main thread)',
  });
  cmd.action(runSensitivity);
}

export function registerScore(p: Command): void {
  p.command('score')
    .description('the FIT of a configuration { "weights": { layer: bits }, "activations": { layer: bits } } from a sensitivity JSON')
    .argument('<model>', 'model.onnx')
    .option('--sensitivity <file>', 'sensitivity JSON written by onnx-fit sensitivity --json')
    .option('--config <file>', 'configuration JSON')
    .option('--json <file>', 'write { "fit", "weights", "activations" } as JSON')
    .action(runScore);
}

/**
 * The sensitivity report for a command that measures configurations (validate, layers): read from
 * --sensitivity, or computed first on the same data; its BatchNorm folding must match the command's.
 */
export async function reportForCommand(
  model: string,
  o: { sensitivity?: string; foldBn: boolean; workers?: number; maxSamples?: number; quiet?: boolean },
  data: DataSpec,
  inputShapes: Record<string, number[]>,
  command: string,
): Promise<SensitivityReport> {
  let report: SensitivityReport;
  if (o.sensitivity) report = await loadReport(o.sensitivity, model);
  else {
    const { sensitivity } = await import('../fisher/sensitivity.js');
    const bar = new ProgressBar({ label: 'sensitivity', quiet: o.quiet });
    report = await sensitivity(model, {
      data,
      // the command's --batch is for its evaluations; the sensitivity keeps its own default
      ...runOptions({ foldBn: o.foldBn, workers: o.workers, maxSamples: o.maxSamples }),
      ...(Object.keys(inputShapes).length > 0 && { inputShapes }),
      onProgress: samplesProgress(bar),
    });
    bar.finish('done');
  }
  if (report.foldBatchNorm !== o.foldBn)
    throw new InvalidOptionError(
      `The sensitivity report was computed with foldBatchNorm ${report.foldBatchNorm} but ${command} runs with ${o.foldBn}; ${report.foldBatchNorm ? 'drop --no-fold-bn' : 'pass --no-fold-bn'} to match`,
    );
  return report;
}
