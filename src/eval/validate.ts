/**
 * validate(): the FIT paper's protocol. Random mixed-precision configurations are scored by FIT
 * (predicted) and measured with onnxruntime-node (evaluate); the rank correlation between the
 * prediction and the measured damage says how far the sensitivity report can be trusted.
 *
 * Damage: with class labels, the accuracy drop from the float model; without labels, the share of
 * decisions that differ from the float model's (1 - agreement); for a gaussian head, the output MSE
 * against the float model. The correlations are taken between FIT and damage, so a good predictor
 * has Spearman and Kendall near +1.
 */
import { InvalidOptionError } from '../errors.js';
import type { FitConfig, SensitivityReport } from '../fisher/report.js';
import { createEvaluator, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
import { kendall, spearman } from './rank.js';
import { xorshift32 } from '../random.js';
import { bitList } from '../search/options.js';

export interface ValidateOptions extends EvaluateOptions {
  /** random configurations to measure (default 20) */
  configs?: number;
  /** weight bit widths drawn from (default [3, 4, 5, 6, 8]: 2-bit symmetric weights keep only three levels and wipe most models out, which says little about ranking) */
  weightBits?: number[];
  /** activation bit widths drawn from (default [8]); [] keeps activations in float */
  activationBits?: number[];
  seed?: number;
}

export interface ValidatedConfig {
  config: FitConfig;
  /** predicted FIT */
  fit: number;
  /** the measured metric (accuracy, agreement or output MSE) */
  value: number;
  /** measured damage: accuracy drop, 1 - agreement, or output MSE */
  damage: number;
  /** weight-count-weighted average weight bits */
  averageBits: number;
  kl: number | null;
}

export interface ValidationResult {
  model: string;
  samples: number;
  /** 'accuracy' (labels), 'agreement' (label-free classifiers) or 'output MSE' */
  metric: string;
  /** the float model's metric (accuracy; 1 for agreement; 0 for output MSE) */
  float: number;
  /** Spearman's rho and Kendall's tau-b between FIT and damage */
  spearman: number;
  kendall: number;
  /** the same against the KL divergence from the float model, where defined */
  klSpearman: number | null;
  configs: ValidatedConfig[];
}


/** `n` random configurations over the report's layers (each layer's bits drawn uniformly). */
export function randomConfigs(report: SensitivityReport, n: number, weightBits: number[], activationBits: number[], seed: number): FitConfig[] {
  const r = xorshift32(seed);
  const pick = (list: number[]) => list[Math.floor(r() * list.length)]!;
  return Array.from({ length: n }, () => {
    const c: FitConfig = { weights: {} };
    if (activationBits.length) c.activations = {};
    for (const l of report.layers) {
      c.weights![l.name] = pick(weightBits);
      if (activationBits.length) c.activations![l.name] = pick(activationBits);
    }
    return c;
  });
}

export function averageBits(report: SensitivityReport, config: FitConfig): number {
  let bits = 0;
  let count = 0;
  for (const l of report.layers) {
    bits += (config.weights?.[l.name] ?? 32) * l.weight.count;
    count += l.weight.count;
  }
  return count ? bits / count : 0;
}

/** The value and damage of an evaluation, by its natural metric (see the module comment). */
export function scoreOf(r: EvaluationResult): { metric: string; value: number; damage: number; float: number } {
  if (r.accuracy !== null && r.floatAccuracy !== null) return { metric: 'accuracy', value: r.accuracy, damage: r.floatAccuracy - r.accuracy, float: r.floatAccuracy };
  if (r.agreement !== null) return { metric: 'agreement', value: r.agreement, damage: 1 - r.agreement, float: 1 };
  return { metric: 'output MSE', value: r.outputMse, damage: r.outputMse, float: 0 };
}

export async function validate(model: string | Uint8Array, report: SensitivityReport, opts: ValidateOptions): Promise<ValidationResult> {
  const n = opts.configs ?? 20;
  if (!Number.isInteger(n) || n < 2) throw new InvalidOptionError(`Expected an integer >= 2 for option configs but received ${String(opts.configs)}`);
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0) throw new InvalidOptionError(`Expected a non-negative integer for option seed but received ${String(opts.seed)}`);
  const wb = bitList(opts.weightBits, 'weightBits', [3, 4, 5, 6, 8]);
  const ab = bitList(opts.activationBits, 'activationBits', [8], true);
  const configs = randomConfigs(report, n, wb, ab, seed);
  const fits = configs.map((c) => report.fit(c));
  const evaluator = await createEvaluator(model, opts);
  let results: EvaluationResult[];
  try {
    results = await evaluator.evaluateMany(configs);
  } finally {
    await evaluator.close();
  }
  const scored = results.map(scoreOf);
  const out: ValidatedConfig[] = configs.map((config, i) => ({
    config,
    fit: fits[i]!,
    value: scored[i]!.value,
    damage: scored[i]!.damage,
    averageBits: averageBits(report, config),
    kl: results[i]!.kl,
  }));
  const damages = out.map((c) => c.damage);
  const kls = out.map((c) => c.kl);
  return {
    model: evaluator.model,
    samples: results[0]?.samples ?? 0,
    metric: scored[0]!.metric,
    float: scored[0]!.float,
    spearman: spearman(fits, damages),
    kendall: kendall(fits, damages),
    klSpearman: kls.every((k) => k !== null) ? spearman(fits, kls as number[]) : null,
    configs: out,
  };
}
