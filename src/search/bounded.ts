/**
 * Accuracy-bounded search ("Augmenting Hessians with Inter-Layer Dependencies"): the smallest
 * configuration on the FIT Pareto frontier whose measured damage stays within the user's bound.
 * The frontier is ordered by cost; measured damage falls (nearly) monotonically along it, so a
 * bisection needs about log2(points) real evaluations. Every evaluation is reported.
 */
import { InvalidOptionError } from '../errors.js';
import type { SensitivityReport } from '../fisher/report.js';
import { createEvaluator, type EvaluateOptions } from '../eval/evaluate.js';
import { scoreOf } from '../eval/validate.js';
import { frontierConfig, searchMixedPrecisionSync, type FrontierPoint, type MixedPrecisionConfig } from './mixed-precision.js';
import { DEFAULT_WEIGHT_BITS, type BudgetKind } from './options.js';

export interface BoundedSearchOptions extends EvaluateOptions {
  /** the largest damage allowed: accuracy drop with labels, 1 - agreement without (e.g. 0.01) */
  maxDrop: number;
  weightBits?: number[];
  activationBits?: number[];
  /** the cost the frontier is ordered by (default 'bytes') */
  cost?: BudgetKind;
  /** per-layer MACs, needed for cost 'bops' */
  macs?: Record<string, number>;
}

export interface BoundedEvaluation {
  /** index into the frontier (cheapest first) */
  index: number;
  point: FrontierPoint;
  metric: string;
  value: number;
  damage: number;
  withinBound: boolean;
}

export interface BoundedSearchResult {
  /** the chosen configuration, or null when even the largest frontier point exceeds the bound */
  config: MixedPrecisionConfig | null;
  point: FrontierPoint | null;
  metric: string;
  /** the float model's metric */
  float: number;
  maxDrop: number;
  frontier: FrontierPoint[];
  /** every evaluation made, in order */
  evaluations: BoundedEvaluation[];
}

export async function searchWithinDrop(model: string | Uint8Array, report: SensitivityReport, opts: BoundedSearchOptions): Promise<BoundedSearchResult> {
  if (typeof opts.maxDrop !== 'number' || !(opts.maxDrop >= 0 && opts.maxDrop < 1))
    throw new InvalidOptionError(`Expected a fraction in [0, 1) for option maxDrop (0.01 = one point of accuracy) but received ${String(opts.maxDrop)}`);
  const cost = opts.cost ?? 'bytes';
  const weightBits = opts.weightBits ?? [...DEFAULT_WEIGHT_BITS];
  // The whole frontier: a budget that admits every configuration.
  const maxBits = Math.max(...weightBits);
  const total = report.layers.reduce((a, l) => a + l.weight.count, 0);
  const budget =
    cost === 'averageBits' ? { averageBits: maxBits } : cost === 'bytes' ? { bytes: (total * maxBits) / 8 } : { bops: Number.MAX_SAFE_INTEGER };
  const search = searchMixedPrecisionSync(report, {
    budget,
    weightBits,
    ...(opts.activationBits && { activationBits: opts.activationBits }),
    ...(opts.macs && { macs: opts.macs }),
  });
  const frontier = search.frontier;
  const evaluator = await createEvaluator(model, opts);
  const evaluations: BoundedEvaluation[] = [];
  let metric = '';
  let float = NaN;
  const measure = async (index: number): Promise<boolean> => {
    const point = frontier[index]!;
    const [r] = await evaluator.evaluateMany([frontierConfig(search, point)]);
    const s = scoreOf(r!);
    metric = s.metric;
    float = s.float;
    const withinBound = s.damage <= opts.maxDrop;
    evaluations.push({ index, point, metric: s.metric, value: s.value, damage: s.damage, withinBound });
    return withinBound;
  };
  try {
    let hi = frontier.length - 1;
    if (!(await measure(hi))) return { config: null, point: null, metric, float, maxDrop: opts.maxDrop, frontier, evaluations };
    let lo = 0;
    if (await measure(lo)) hi = lo;
    // invariant: frontier[hi] is within the bound, frontier[lo] is not (or lo === hi)
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (await measure(mid)) hi = mid;
      else lo = mid;
    }
    const point = frontier[hi]!;
    return { config: frontierConfig(search, point), point, metric, float, maxDrop: opts.maxDrop, frontier, evaluations };
  } finally {
    await evaluator.close();
  }
}
