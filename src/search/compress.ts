/**
 * fit.compress(): FITCompress end to end on a model and data. Runs sensitivity() (or takes a
 * report), plans joint pruning + quantization to the target (planCompression), measures the
 * compressed model beside the float model with onnxruntime-node (accuracy with labels; agreement
 * and KL without), and measures the baselines of src/search/baselines.ts at compressions <= the
 * same target, with the same data and evaluator. compressCurve() does it for several targets with
 * one sensitivity pass and one evaluator; exportCompressed() writes the pruned + quantized model.
 *
 * The compressed model is the planner's: masked weights are exactly 0 and each quantized layer's
 * step is computed over its surviving weights, so the exported and evaluated weights equal
 * plan.weights bit for bit. Activations stay in float (FITCompress plans weights).
 */
import { InvalidOptionError } from '../errors.js';
import type { DataSpec } from '../data/source.js';
import type { SensitivityReport } from '../fisher/report.js';
import { sensitivity, type Estimator, type SensitivityOptions } from '../fisher/sensitivity.js';
import type { LikelihoodOption } from '../fisher/head.js';
import { createEvaluator, type EvaluationResult } from '../eval/evaluate.js';
import type { WeightMasks } from '../onnx/masks.js';
import { exportModel, type ExportFormat, type ExportSummary } from '../onnx/write.js';
import type { CurvesJson } from '../report/html.js';
import { baselines as measureBaselines, MagnitudePruner, type Baseline } from './baselines.js';
import { PLANNER_KEYS, type PlannerOptions } from './compress-options.js';
import { DEFAULT_PRUNING_LEVELS, DEFAULT_SCHEDULE, modelFisher, planCompression, reportWeights, type CompressPlan } from './fitcompress.js';

export type { Baseline, BaselineName } from './baselines.js';

export type CompressModelProgress =
  | { phase: 'sensitivity'; samples: number; total: number | undefined }
  | { phase: 'plan'; target: number; expansions: number; bestCompression: number }
  | { phase: 'evaluate'; samples: number; total: number | undefined };

/** Planner options (PlannerOptions, documented on CompressOptions) plus sensitivity and evaluation. */
export interface CompressCurveOptions extends PlannerOptions {
  data: DataSpec;
  /** a sensitivity report of this model with its Fisher diagonal (default: computed on `data`) */
  report?: SensitivityReport;
  // sensitivity (and the re-estimations) and evaluation
  estimator?: Estimator;
  likelihood?: LikelihoodOption;
  batchSize?: number;
  /** samples used by sensitivity and by every evaluation (default: all) */
  maxSamples?: number;
  tolerance?: number;
  seed?: number;
  foldBatchNorm?: boolean;
  inputShapes?: Record<string, number[]>;
  /** measure the compressed model with onnxruntime-node (default true) */
  evaluate?: boolean;
  /** compute (and, with evaluate, measure) the baselines (default true) */
  baselines?: boolean;
  workers?: number;
  signal?: AbortSignal;
  onProgress?: (p: CompressModelProgress) => void;
}

export interface CompressModelOptions extends CompressCurveOptions {
  /** compression to reach: active bytes / fp32 bytes over quantizable weights, in (0, 1] */
  target: number;
}

export interface MeasuredBaseline extends Baseline {
  measured: EvaluationResult | null;
}

export interface CompressResult {
  model: string;
  target: number;
  plan: CompressPlan;
  /** the configuration: layer -> bits (float layers omitted) */
  config: { weights: Record<string, number> };
  /** weight name -> 1 kept / 0 pruned (BN-folded layout) */
  masks: WeightMasks;
  compression: number;
  /** fraction of all quantizable weights pruned */
  sparsity: number;
  /** the compressed model beside the float model (null with evaluate: false) */
  measured: EvaluationResult | null;
  /** 'accuracy' with class labels, else 'agreement' (with the float model's decisions) */
  metric: 'accuracy' | 'agreement' | null;
  /** the float model's value of the metric (1 for agreement) */
  float: number | null;
  baselines: MeasuredBaseline[];
  report: SensitivityReport;
}

export interface CompressCurve {
  report: SensitivityReport;
  results: CompressResult[];
  metric: 'accuracy' | 'agreement' | null;
  float: number | null;
  /** the accuracy/compression curves onnx-fit report --curves draws (null without evaluation) */
  curves: (CurvesJson & { float: number | null }) | null;
}

const BASELINE_TITLES: Record<string, string> = {
  'uniform+magnitude': 'uniform quantization + magnitude pruning',
  'fit-mixed-precision': 'FIT mixed precision',
  'magnitude-pruning': 'magnitude pruning',
};

/** Readable name of a baseline (as in the curves JSON and the CLI tables). */
export const baselineTitle = (name: string): string => BASELINE_TITLES[name] ?? name;

const KEYS = new Set<string>([
  'data', 'report', ...PLANNER_KEYS,
  'estimator', 'likelihood', 'batchSize', 'maxSamples', 'tolerance', 'seed', 'foldBatchNorm', 'inputShapes', 'evaluate', 'baselines', 'workers',
  'signal', 'onProgress',
]);

function checkTargets(targets: unknown, option: string): number[] {
  const list = Array.isArray(targets) ? targets : [targets];
  if (list.length === 0 || !list.every((t) => typeof t === 'number' && t > 0 && t <= 1))
    throw new InvalidOptionError(`Expected ${Array.isArray(targets) ? 'a non-empty array of numbers' : 'a number'} in (0, 1] for option ${option} but received ${JSON.stringify(targets)}`);
  return list as number[];
}

function checkOptions(o: unknown, extra: string): CompressCurveOptions {
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new InvalidOptionError(`Expected an options object { data, ${extra}, ... } but received ${JSON.stringify(o)}`);
  for (const k of Object.keys(o)) if (!KEYS.has(k) && k !== extra) throw new InvalidOptionError(`Expected options ${[...KEYS, extra].join(', ')} but received an option '${k}'`);
  const c = o as CompressCurveOptions;
  if (c.data === undefined) throw new InvalidOptionError('Expected calibration and evaluation data for option data but received undefined');
  for (const k of ['evaluate', 'baselines'] as const)
    if (c[k] !== undefined && typeof c[k] !== 'boolean') throw new InvalidOptionError(`Expected a boolean for option ${k} but received ${JSON.stringify(c[k])}`);
  if (c.report !== undefined && (typeof c.report !== 'object' || !Array.isArray(c.report?.layers)))
    throw new InvalidOptionError('Expected a SensitivityReport (from sensitivity()) for option report but received something else');
  if (c.report && c.foldBatchNorm !== undefined && c.report.foldBatchNorm !== c.foldBatchNorm)
    throw new InvalidOptionError(`Expected option foldBatchNorm to match the report's (${c.report.foldBatchNorm}) but received ${c.foldBatchNorm}`);
  return c;
}

const metricOf = (m: EvaluationResult): 'accuracy' | 'agreement' => (m.accuracy !== null ? 'accuracy' : 'agreement');
const valueOf = (m: EvaluationResult | null, metric: 'accuracy' | 'agreement' | null): number | null =>
  !m || !metric ? null : metric === 'accuracy' ? m.accuracy : m.agreement;

async function run(model: string | Uint8Array, targets: number[], o: CompressCurveOptions): Promise<CompressCurve> {
  const sensOpts: Omit<SensitivityOptions, 'foldBatchNorm'> = {
    data: o.data,
    ...(o.estimator !== undefined && { estimator: o.estimator }),
    ...(o.likelihood !== undefined && { likelihood: o.likelihood }),
    ...(o.batchSize !== undefined && { batchSize: o.batchSize }),
    ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
    ...(o.tolerance !== undefined && { tolerance: o.tolerance }),
    ...(o.seed !== undefined && { seed: o.seed }),
    ...(o.inputShapes !== undefined && { inputShapes: o.inputShapes }),
    ...(o.workers !== undefined && { workers: o.workers }),
    ...(o.signal !== undefined && { signal: o.signal }),
  };
  const report =
    o.report ??
    (await sensitivity(model, {
      ...sensOpts,
      foldBatchNorm: o.foldBatchNorm ?? true,
      onProgress: (p) => o.onProgress?.({ phase: 'sensitivity', samples: p.samples, total: p.total }),
    }));
  const weights = reportWeights(model, report, { inputShapes: o.inputShapes });
  const fisher = o.reestimate === 'every-k' || o.reestimate === 'each-expansion' ? modelFisher(model, report, sensOpts) : undefined;
  const schedule = o.schedule ?? [...DEFAULT_SCHEDULE];
  const pruningLevels = o.pruningLevels ?? [...DEFAULT_PRUNING_LEVELS];
  const wantBaselines = o.baselines ?? true;
  const planner = Object.fromEntries(PLANNER_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as PlannerOptions;
  const plans: CompressPlan[] = [];
  const lines: Baseline[][] = [];
  const pruner = wantBaselines ? new MagnitudePruner(report, weights) : undefined;
  try {
    for (const target of targets) {
      const plan = await planCompression(report, {
        ...planner,
        target, weights, schedule, pruningLevels,
        ...(fisher && { fisher }),
        ...(o.signal !== undefined && { signal: o.signal }),
        onProgress: (p) => o.onProgress?.({ phase: 'plan', target, expansions: p.expansions, bestCompression: p.bestCompression }),
      });
      plans.push(plan);
      lines.push(pruner ? await measureBaselines(pruner, report, { target, weights, schedule, pruningLevels }) : []);
    }
  } finally {
    pruner?.dispose();
  }

  // every configuration measured with one float run, one pool
  let measured: (EvaluationResult | null)[] = [];
  if (o.evaluate ?? true) {
    const configs: { weights: Record<string, number> }[] = [];
    const masks: (WeightMasks | undefined)[] = [];
    plans.forEach((p, i) => {
      configs.push({ weights: p.final.weights });
      masks.push(p.masks);
      for (const b of lines[i]!.filter((x) => x.reachable)) {
        configs.push({ weights: b.weights });
        masks.push(b.masks);
      }
    });
    const ev = await createEvaluator(model, {
      data: o.data,
      foldBatchNorm: report.foldBatchNorm,
      ...(o.batchSize !== undefined && { batchSize: o.batchSize }),
      ...(o.maxSamples !== undefined && { maxSamples: o.maxSamples }),
      ...(o.workers !== undefined && { workers: o.workers }),
      ...(o.likelihood !== undefined && { likelihood: o.likelihood }),
      ...(o.signal !== undefined && { signal: o.signal }),
      onProgress: (p) => o.onProgress?.({ phase: 'evaluate', samples: p.samples, total: p.total }),
    });
    try {
      measured = await ev.evaluateMany(configs, { masks });
    } finally {
      await ev.close();
    }
  }
  const metric = measured[0] ? metricOf(measured[0]) : null;
  const float = !measured[0] || !metric ? null : metric === 'accuracy' ? measured[0].floatAccuracy : 1;
  const name = typeof model === 'string' ? model : report.model;
  let at = 0;
  const results: CompressResult[] = plans.map((plan, i) => {
    const m = measured.length ? measured[at++]! : null;
    const bl = lines[i]!.map((b) => ({ ...b, measured: b.reachable && measured.length ? measured[at++]! : null }));
    const total = report.layers.reduce((a, l) => a + l.weight.count, 0);
    const pruned = report.layers.reduce((a, l) => a + plan.final.sparsity[l.name]! * l.weight.count, 0);
    return {
      model: name,
      target: targets[i]!,
      plan,
      config: { weights: { ...plan.final.weights } },
      masks: plan.masks,
      compression: plan.final.compression,
      sparsity: total ? pruned / total : 0,
      measured: m,
      metric,
      float,
      baselines: bl,
      report,
    };
  });
  const curves: CompressCurve['curves'] = metric
    ? {
        metric,
        float,
        curves: [
          { name: 'FITCompress', points: results.map((r) => ({ compression: r.compression, value: valueOf(r.measured, metric)! })) },
          ...(['uniform+magnitude', 'fit-mixed-precision', 'magnitude-pruning'] as const).map((n) => ({
            name: baselineTitle(n),
            points: results.flatMap((r) => r.baselines.filter((b) => b.name === n && b.reachable && b.measured).map((b) => ({ compression: b.compression!, value: valueOf(b.measured, metric)! }))),
          })).filter((c) => wantBaselines && c.points.length > 0),
        ],
      }
    : null;
  return { report, results, metric, float, curves };
}

/** FITCompress to one target, measured beside the float model and the baselines (module comment). */
export async function compress(model: string | Uint8Array, options: CompressModelOptions): Promise<CompressResult> {
  const o = checkOptions(options, 'target');
  const [target] = checkTargets(options.target, 'target');
  const { target: _t, ...rest } = options;
  return (await run(model, [target!], { ...rest, data: o.data })).results[0]!;
}

/** FITCompress at several targets with one sensitivity pass and one evaluator: the accuracy/compression curves. */
export async function compressCurve(model: string | Uint8Array, options: CompressCurveOptions & { targets: number[] }): Promise<CompressCurve> {
  checkOptions(options, 'targets');
  const targets = checkTargets(options.targets, 'targets');
  const { targets: _t, ...rest } = options;
  return run(model, targets, rest);
}

export interface ExportCompressedOptions {
  /** default 'qdq' */
  format?: ExportFormat;
  /** must match the report the plan came from (default: the result's report, else true) */
  foldBatchNorm?: boolean;
  /** raise the opset to 21 to store <= 4-bit weights as int4 where safe */
  raiseOpset?: boolean;
}

/**
 * Writes the pruned + quantized model of a plan (compress() result or planCompression() plan)
 * atomically to `out`: per-tensor weights on the plan's grids (Delta over the surviving weights),
 * pruned weights exactly 0, activations in float.
 */
export async function exportCompressed(
  model: string | Uint8Array,
  plan: CompressResult | CompressPlan,
  out: string,
  opts: ExportCompressedOptions = {},
): Promise<ExportSummary> {
  const isResult = (p: CompressResult | CompressPlan): p is CompressResult => 'config' in p && 'report' in p;
  if (!plan || typeof plan !== 'object' || !('masks' in plan))
    throw new InvalidOptionError('Expected a compress() result or a planCompression() plan for option plan but received something else');
  const weights = isResult(plan) ? plan.config.weights : plan.final.weights;
  const fold = opts.foldBatchNorm ?? (isResult(plan) ? plan.report.foldBatchNorm : true);
  if (isResult(plan) && fold !== plan.report.foldBatchNorm)
    throw new InvalidOptionError(`Expected option foldBatchNorm to match the plan's report (${plan.report.foldBatchNorm}) but received ${fold}`);
  return exportModel(model, { weights }, out, {
    format: opts.format ?? 'qdq',
    foldBatchNorm: fold,
    masks: plan.masks,
    ...(opts.raiseOpset !== undefined && { raiseOpset: opts.raiseOpset }),
  });
}
