/**
 * `onnx-fit sensitivity` (per-layer Fisher traces over calibration data: a table sorted by
 * sensitivity on stdout, progress on stderr, the version-1 JSON with --json) and `onnx-fit score`
 * (the FIT of a configuration from a sensitivity JSON).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { AbortError, InvalidInputError, InvalidOptionError } from '../errors.js';
import type { DataSpec } from '../data/source.js';
import type { OnnxModel } from '../onnx/read.js';
import type { Estimator, SensitivityOptions, SensitivityProgress } from '../fisher/sensitivity.js';
import type { FitConfig, LayerSensitivity, SensitivityJson, SensitivityReport } from '../fisher/report.js';
import type { LikelihoodOption } from '../fisher/head.js';
import { collect, nonNegativeInt, nonNegativeNumber, oneOf, parseShapes, positiveInt, readJsonFile, writeJsonAtomic } from './options.js';
import { table } from './inspect.js';
import { ProgressBar, sensitivityState } from './progress.js';

// ---------------------------------------------------------------------------------------------
// option parsers (InvalidOptionError, so main() prints one line and exits 1)

const ESTIMATORS = ['empirical', 'sampled', 'batch'] as const;
const LIKELIHOODS = ['auto', 'categorical', 'bernoulli', 'gaussian'] as const;

/**
 * The data spec from --input / --input-name / --labels. Paths are handed to the library as they are
 * (it reads .npy files lazily, a batch at a time, and names the file in its errors).
 */
export function dataSpec(input: string[], inputName: string[], labels?: string): DataSpec {
  const unnamed: string[] = [];
  const named: Record<string, string> = {};
  const addNamed = (spec: string, option: string) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new InvalidOptionError(`Expected NAME=FILE.npy for option ${option} but received '${spec}'`);
    const name = spec.slice(0, eq);
    if (name in named) throw new InvalidOptionError(`Input '${name}' is given twice; pass one ${option} ${name}=FILE.npy`);
    named[name] = spec.slice(eq + 1);
  };
  for (const s of input) {
    // like inspect: --input NAME=FILE.npy names the input unless a file has that very name
    if (s.indexOf('=') > 0 && !existsSync(s)) addNamed(s, '--input');
    else unnamed.push(s);
  }
  for (const s of inputName) addNamed(s, '--input-name');
  if (unnamed.length === 0 && Object.keys(named).length === 0)
    throw new InvalidOptionError('Expected calibration data: pass --input FILE.npy (a single-input model) or --input-name NAME=FILE.npy for each input');
  if (unnamed.length > 1 || (unnamed.length === 1 && Object.keys(named).length > 0))
    throw new InvalidOptionError('With several inputs, name each one: --input-name NAME=FILE.npy (repeat it for every input)');
  const spec: DataSpec = { input: unnamed.length ? unnamed[0]! : named };
  if (labels !== undefined) spec.labels = labels;
  return spec;
}

// ---------------------------------------------------------------------------------------------
// formatting

/** Three significant digits in exponent form without '+': 1.23e-4, 4.56e2, 0, -7.10e0. */
export function compact(v: number | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return '0';
  return v.toExponential(2).replace('e+', 'e');
}

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

export interface SensitivityCliOptions {
  input: string[];
  inputName: string[];
  labels?: string;
  shape: string[];
  estimator?: Estimator;
  likelihood?: LikelihoodOption;
  batch?: number;
  maxSamples?: number;
  minSamples?: number;
  tolerance?: number;
  mcSamples?: number;
  workers?: number;
  foldBn: boolean;
  seed?: number;
  json?: string;
  quiet?: boolean;
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
    ...(o.batch !== undefined && { batchSize: o.batch }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    ...(o.minSamples !== undefined && { minSamples: o.minSamples }),
    ...(o.tolerance !== undefined && { tolerance: o.tolerance }),
    ...(o.mcSamples !== undefined && { mcSamples: o.mcSamples }),
    ...(o.seed !== undefined && { seed: o.seed }),
    // default: sensitivity()'s own (one worker per core)
    ...(o.workers !== undefined && { workers: o.workers }),
    foldBatchNorm: o.foldBn,
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
// score

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === undefined ? 'missing' : JSON.stringify(v));

/** Numbers as writeJsonAtomic writes them: finite numbers, or "Infinity" / "-Infinity" / "NaN". */
function jsonNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === 'Infinity' || v === '-Infinity' || v === 'NaN') return Number(v);
  return undefined;
}

/** Checks a sensitivity JSON (version 1) and returns it with its numbers restored. */
export function parseSensitivityJson(value: unknown, file: string): SensitivityJson {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new InvalidInputError(`${file}: expected ${field} to be ${expected} but it is ${describe(got)}; pass the JSON written by onnx-fit sensitivity --json`);
  };
  if (!isObject(value)) bad('the top level', 'an object', value);
  const v = value as Record<string, unknown>;
  if (v.version !== 1) bad('"version"', '1 (a sensitivity JSON of version 1)', v.version);
  if (!Array.isArray(v.layers)) bad('"layers"', 'an array', v.layers);
  const str = (x: unknown, field: string): string => (typeof x === 'string' ? x : bad(field, 'a string', x));
  const num = (x: unknown, field: string): number => jsonNumber(x) ?? bad(field, 'a number', x);
  const stats = (s: unknown, field: string) => {
    if (!isObject(s)) bad(field, 'an object', s);
    const o = s as Record<string, unknown>;
    const se = o.stdError;
    return {
      name: typeof o.name === 'string' ? o.name : '',
      count: typeof o.count === 'number' ? o.count : 0,
      min: num(o.min, `${field}.min`),
      max: num(o.max, `${field}.max`),
      fisherTrace: num(o.fisherTrace, `${field}.fisherTrace`),
      stdError: se === null || se === undefined ? null : num(se, `${field}.stdError`),
    };
  };
  const seen = new Set<string>();
  const layers = (v.layers as unknown[]).map((l, i) => {
    const at = `layers[${i}]`;
    if (!isObject(l)) bad(at, 'an object', l);
    const o = l as Record<string, unknown>;
    const name = str(o.name, `${at}.name`);
    if (seen.has(name)) throw new InvalidInputError(`${file}: layer '${name}' appears twice in "layers" (${at}); each layer may be listed once`);
    seen.add(name);
    return { name, op: typeof o.op === 'string' ? o.op : '', weight: stats(o.weight, `${at}.weight`), activation: stats(o.activation, `${at}.activation`) };
  });
  return {
    version: 1,
    model: typeof v.model === 'string' ? v.model : '',
    estimator: typeof v.estimator === 'string' ? v.estimator : '',
    likelihood: typeof v.likelihood === 'string' ? v.likelihood : '',
    samples: typeof v.samples === 'number' ? v.samples : 0,
    foldBatchNorm: typeof v.foldBatchNorm === 'boolean' ? v.foldBatchNorm : true,
    layers,
  };
}

/** Checks a configuration file: { "weights"?: { layer: bits }, "activations"?: { layer: bits } }. */
export function parseConfigJson(value: unknown, file: string): Required<FitConfig> {
  if (!isObject(value)) throw new InvalidInputError(`${file}: expected a configuration object { "weights": { layer: bits }, "activations": { layer: bits } } but it is ${describe(value)}`);
  const part = (key: 'weights' | 'activations'): Record<string, number> => {
    const p = value[key];
    if (p === undefined) return {};
    if (!isObject(p)) throw new InvalidInputError(`${file}: expected "${key}" to be an object of layer name -> bits but it is ${describe(p)}`);
    return p as Record<string, number>;
  };
  const weights = part('weights');
  const activations = part('activations');
  if (value.weights === undefined && value.activations === undefined)
    throw new InvalidInputError(`${file}: the configuration has neither "weights" nor "activations"; expected { "weights": { layer: bits }, "activations": { layer: bits } }`);
  return { weights, activations };
}

/** A report that fit() can use, from the JSON (fit() needs the traces and ranges only). */
export async function reportFromJson(j: SensitivityJson): Promise<SensitivityReport> {
  const { SensitivityReport } = await import('../fisher/report.js');
  const layers: LayerSensitivity[] = j.layers.map((l) => ({
    name: l.name,
    op: l.op,
    weight: { ...l.weight, fisherDiagonal: new Float64Array(0), channelTraces: [], dims: [] },
    activation: { ...l.activation },
  }));
  return new SensitivityReport(j.model, j.estimator, j.likelihood, j.samples, j.foldBatchNorm, layers);
}

/** Every tensor name the model holds (initializers, Constant and other node outputs). */
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

export async function runScore(model: string, opts: { sensitivity?: string; config?: string; json?: string }): Promise<void> {
  if (opts.sensitivity === undefined) throw new InvalidOptionError('Expected --sensitivity FILE.json, the JSON written by onnx-fit sensitivity --json');
  if (opts.config === undefined) throw new InvalidOptionError('Expected --config FILE.json, a configuration { "weights": { layer: bits }, "activations": { layer: bits } }');
  const o = { sensitivity: opts.sensitivity, config: opts.config, json: opts.json };
  const sens = parseSensitivityJson(readJsonFile(o.sensitivity, 'sensitivity JSON'), o.sensitivity);
  const config = parseConfigJson(readJsonFile(o.config, 'configuration'), o.config);
  const { readModel } = await import('../onnx/read.js');
  checkReportDescribesModel(o.sensitivity, model, readModel(model), sens.layers);
  const report = await reportFromJson(sens);
  let fit: number;
  try {
    fit = report.fit(config);
  } catch (e) {
    // unknown layers and bad bit widths: fit()'s InvalidOptionError, naming the file
    if (e instanceof InvalidOptionError) throw new InvalidOptionError(`${o.config}: ${e.message}`, { cause: e });
    throw e;
  }
  const parts = sens.layers
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
  out.push(`Model ${basename(model)}, sensitivity ${basename(o.sensitivity)} (${sens.estimator || '?'} estimator, ${sens.samples} samples), configuration ${basename(o.config)}`);
  out.push('');
  if (rows.length) {
    out.push(table(rows, ['layer', 'weight bits', 'weight FIT', 'activation bits', 'activation FIT', 'FIT']));
    const left = sens.layers.length - rows.length;
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
  p.command('sensitivity')
    .description('per-layer Fisher traces (FIT sensitivity) over calibration data: a table sorted by sensitivity, --json for the version-1 JSON')
    .argument('<model>', 'model.onnx')
    .option('--input <file>', 'calibration inputs, .npy with the samples on axis 0 (a single-input model)', collect, [])
    .option('--input-name <spec>', 'NAME=FILE.npy for each input of a model with several (repeatable)', collect, [])
    .option('--labels <file>', 'labels .npy: class indices (integers) or regression targets (floats), one per sample')
    .option('--shape <spec>', 'concrete shape for an input with dynamic non-batch dims: NAME=1x3x48x192', collect, [])
    .option('--estimator <name>', "Fisher estimator: empirical | sampled | batch (default: empirical with --labels, sampled without)", oneOf('--estimator', ESTIMATORS))
    .option('--likelihood <name>', 'auto | categorical | bernoulli | gaussian (default auto: from the graph)', oneOf('--likelihood', LIKELIHOODS))
    .option('--batch <n>', 'samples per batch (default 32)', positiveInt('--batch'))
    .option('--max-samples <n>', 'use at most this many samples (default: all)', positiveInt('--max-samples'))
    .option('--min-samples <n>', 'never stop before this many samples (default 64)', positiveInt('--min-samples'))
    .option('--tolerance <t>', 'stop when every relative standard error is below this (default 0.05; 0: use all data)', nonNegativeNumber('--tolerance'))
    .option('--mc-samples <n>', 'label draws per input for the sampled estimator (default 1)', positiveInt('--mc-samples'))
    .option('--workers <n>', 'worker threads (default: one per core; 1 runs on the main thread)', positiveInt('--workers'))
    .option('--no-fold-bn', 'do not fold BatchNormalization into the preceding Conv')
    .option('--seed <n>', 'seed of the sampled estimator (default 1)', nonNegativeInt('--seed'))
    .option('--json <file>', 'write the report as JSON (version 1)')
    .option('--quiet', 'no progress on stderr')
    .action(runSensitivity);
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
  const { SensitivityReport: Report } = await import('../fisher/report.js');
  const { sensitivity } = await import('../fisher/sensitivity.js');
  let report: SensitivityReport;
  if (o.sensitivity) report = Report.fromJSON(readJsonFile(o.sensitivity, 'sensitivity JSON'), o.sensitivity);
  else {
    const bar = new ProgressBar({ label: 'sensitivity', quiet: o.quiet });
    report = await sensitivity(model, {
      data,
      foldBatchNorm: o.foldBn,
      ...(o.workers !== undefined && { workers: o.workers }),
      ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
      ...(Object.keys(inputShapes).length > 0 && { inputShapes }),
      onProgress: (p) => bar.update({ done: p.samples, total: p.total, unit: 'samples' }),
    });
    bar.finish('done');
  }
  if (report.foldBatchNorm !== o.foldBn)
    throw new InvalidOptionError(
      `The sensitivity report was computed with foldBatchNorm ${report.foldBatchNorm} but ${command} runs with ${o.foldBn}; ${report.foldBatchNorm ? 'drop --no-fold-bn' : 'pass --no-fold-bn'} to match`,
    );
  return report;
}
